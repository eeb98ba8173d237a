"""`POST /api/cases/{id}/parties/{party_id}/reveal-phone/`: a party's full phone number,
logged like an ID-number reveal (DOMAIN.md §5). Elsewhere the API shows phones masked."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from mediation.api.serializers import PhoneRevealResponseSerializer, RevealRequestSerializer
from mediation.api.views import CASE_ID, ApiView, _check_id, _now, _visible_case, errors
from mediation.cases.models import CaseParty, CasePartyRole
from mediation.cases.selectors import identity_hidden_from
from mediation.core.errors import NotFound, PermissionDenied
from mediation.parties.services import party_reveal_phone


class PartyPhoneRevealView(ApiView):
    serializer_class = RevealRequestSerializer

    @extend_schema(
        operation_id="cases_parties_reveal_phone",
        summary="查看当事人完整电话号码（记录查看人、用途和时间）",
        parameters=[
            CASE_ID,
            OpenApiParameter("party_id", int, OpenApiParameter.PATH, description="当事人 id"),
        ],
        request=RevealRequestSerializer,
        responses={200: PhoneRevealResponseSerializer, **errors(400, 401, 403, 404)},
    )
    def post(self, request: Request, pk: int, party_id: int) -> Response:
        case = _visible_case(request, pk)
        roles = set(
            CaseParty.objects.filter(case_id=case.pk, party_id=_check_id(party_id)).values_list(
                "role", flat=True
            )
        )
        if not roles:
            raise NotFound(_("当事人不存在。"))
        if identity_hidden_from(request.user, case) and roles - {CasePartyRole.RESPONDENT}:
            raise PermissionDenied(_("检举控告事项的信访人身份保密，您无权查看。"))
        body = RevealRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        now, _today = _now()
        phone = party_reveal_phone(
            party_id=party_id,
            viewer=request.user,
            purpose=body.validated_data["purpose"],
            context=f"case:{case.pk}",
            now=now,
        )
        return Response(PhoneRevealResponseSerializer({"party": party_id, "phone": phone}).data)
