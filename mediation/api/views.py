"""HTTP entry points. Each reads the clock once, asks the domain selectors for what the user
may see (`mediation.cases.selectors`, `mediation.escalation.selectors`), calls one service
and serializes the result.

Lists are filtered by `cases_visible_to(user)` (DRF applies object permissions to single
objects only, RELIABILITY.md §5.1); single cases come from `case_get_visible`, which answers
404 for a case outside the user's sight so its existence does not leak. Who may act is the
workflow table's (`mediation.cases.workflow`), checked again by the services.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import DatabaseError
from django.db.models import Prefetch, QuerySet
from django.http import FileResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mediation.agencies.models import Agency
from mediation.api import auth_views
from mediation.api.filters import CaseFilterSerializer, apply_case_filters
from mediation.api.parsers import StrictJSONParser
from mediation.api.serializers import (
    MAX_ID,
    PLAUSIBLE_YEARS,
    AgencySerializer,
    AttachmentSerializer,
    CaseActionRequestSerializer,
    CaseDetailSerializer,
    CaseListSerializer,
    CategorySerializer,
    ChannelSerializer,
    ClockSerializer,
    DeadlineQuerySerializer,
    DeadlineSerializer,
    DisputeRegisterSerializer,
    ErrorSerializer,
    EscalationExtensionSerializer,
    EscalationInstructionSerializer,
    EscalationNoteSerializer,
    EscalationQueueFilterSerializer,
    EscalationReassignSerializer,
    EscalationSerializer,
    EventSerializer,
    NotificationFilterSerializer,
    NotificationMarkReadResultSerializer,
    NotificationMarkReadSerializer,
    NotificationSerializer,
    PetitionReceiveSerializer,
    ReferToMediationSerializer,
    RevealRequestSerializer,
    RevealResponseSerializer,
    SessionRecordSerializer,
    StepInputSerializer,
    TransitionRequestSerializer,
    TransitionsSerializer,
    UnreadCountSerializer,
    describe_step_field,
)
from mediation.casefiles import content
from mediation.casefiles.selectors import attachment_get_for, attachments_for, sessions_for
from mediation.casefiles.services import file_access_log
from mediation.cases import workflow
from mediation.cases.labels import state_label, transition_label
from mediation.cases.models import (
    AppliesTo,
    Case,
    CaseEvent,
    CaseParty,
    CasePartyRole,
    Category,
    Channel,
)
from mediation.cases.selectors import (
    case_access,
    case_actions_for,
    case_detail_for,
    case_get_visible,
    cases_visible_to,
    identity_hidden_from,
    protected_texts,
)
from mediation.cases.services import (
    case_service_action,
    case_transition,
    dispute_register,
    petition_receive,
    petition_refer_to_mediation,
)
from mediation.core import clock
from mediation.core.errors import InvalidInput, NotFound, PermissionDenied
from mediation.deadlines.calendar_source import current_calendar
from mediation.deadlines.models import Clock, ClockStatus
from mediation.deadlines.policy import (
    ChineseCalendar,
    ClockKind,
    PolicyError,
    compute_deadline,
    parse_date,
    parse_pause,
)
from mediation.escalation.models import Escalation
from mediation.escalation.selectors import escalation_get_for, escalation_queue_for
from mediation.escalation.services import (
    escalation_acknowledge,
    escalation_approve_extension,
    escalation_issue_note,
    escalation_reassign,
    escalation_resolve,
)
from mediation.notifications.selectors import notification_list_for, notification_unread_count
from mediation.notifications.services import notification_mark_all_read, notification_mark_read
from mediation.parties.services import REVEAL_PERMISSION, party_reveal_id_number

LIVE = [ClockStatus.RUNNING, ClockStatus.PAUSED]
TRANSITION_NAMES = sorted({a.name for a in workflow.actions() if a.transition}, key=lambda n: n)


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    descriptions = {
        400: "invalid / parse_error",
        401: "not_authenticated / authentication_failed",
        403: "permission_denied",
        404: "not_found",
        409: "transition_not_allowed / stale / concurrent",
    }
    return {c: OpenApiResponse(ErrorSerializer, description=descriptions.get(c, "")) for c in codes}


CASE_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="案件 id")


def _now() -> tuple[dt.datetime, dt.date]:
    now = clock.now()
    return now, clock.local_date(now)


def _check_id(value: int) -> int:
    if value > MAX_ID:
        raise NotFound(_("未找到。"))
    return value


def _visible_case(request: Request, pk: int) -> Case:
    return case_get_visible(request.user, _check_id(pk))


def _with_list_relations(qs: QuerySet[Case]) -> QuerySet[Case]:
    return qs.select_related("holder_agency", "category", "channel").prefetch_related(
        Prefetch(
            "clocks",
            queryset=Clock.objects.filter(status__in=LIVE, kind=ClockKind.DUTY.value).order_by(
                "due_at", "pk"
            ),
            to_attr="live_duty_clocks",
        )
    )


def _detail(request: Request, case_id: int, now: dt.datetime) -> dict[str, Any]:
    case = (
        _with_list_relations(Case.objects.filter(pk=case_id))
        .select_related("registering_agency", "assignee", "accused_agency", "confirmation_court")
        .prefetch_related("referrals")
        .get()
        .as_proxy()
    )
    detail = case_detail_for(request.user, case)
    context = {"request": request, "now": now, "detail": detail}
    return CaseDetailSerializer(case, context=context).data


class NoStoreMixin:
    # Case data and tokens must not be kept by browsers or proxies (ASVS 14.3.2).

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any):
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        response["Cache-Control"] = "no-store"
        return response


class ApiView(NoStoreMixin, generics.GenericAPIView):
    """Base of the API views: authentication from settings (token first, then session)."""


# Authentication ---------------------------------------------------------------------------


class TokenView(NoStoreMixin, auth_views.TokenLoginView):
    """Exchange a username and password for a new API token (login throttling: django-axes)."""


class LogoutView(NoStoreMixin, auth_views.TokenLogoutView):
    """Revoke the token this request was sent with."""


class LogoutAllView(NoStoreMixin, auth_views.TokenLogoutAllView):
    """Revoke every token of the user (logout everywhere)."""


# Cases ------------------------------------------------------------------------------------


class CaseListView(ApiView):
    serializer_class = CaseListSerializer

    @extend_schema(
        operation_id="cases_list",
        summary="案件列表（仅本人可见范围）",
        parameters=[CaseFilterSerializer],
        responses={200: CaseListSerializer(many=True), **errors(400, 401)},
    )
    def get(self, request: Request) -> Response:
        filters = CaseFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        now, today = _now()
        qs = apply_case_filters(
            cases_visible_to(request.user),
            filters.validated_data,
            user=request.user,
            now=now,
            today=today,
            calendar_factory=current_calendar,
        )
        qs = _with_list_relations(qs).order_by("-registered_at", "-pk")
        page = self.paginate_queryset(qs)
        data = CaseListSerializer(page, many=True, context={"request": request, "now": now}).data
        return self.get_paginated_response(data)


class _RegisterView(ApiView):
    serializer_class: Any = None
    service: Any = None

    def post(self, request: Request) -> Response:
        body = self.serializer_class(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        now, _today = _now()
        case = type(self).service(actor=request.user, now=now, **body.service_kwargs())
        headers = {"Location": f"/api/cases/{case.pk}/"}
        return Response(
            _detail(request, case.pk, now), status=status.HTTP_201_CREATED, headers=headers
        )


@extend_schema_view(
    post=extend_schema(
        operation_id="disputes_register",
        summary="登记矛盾纠纷",
        request=DisputeRegisterSerializer,
        responses={201: CaseDetailSerializer, **errors(400, 401, 403)},
    )
)
class DisputeRegisterView(_RegisterView):
    serializer_class = DisputeRegisterSerializer
    service = staticmethod(dispute_register)


@extend_schema_view(
    post=extend_schema(
        operation_id="petitions_receive",
        summary="收到信访事项",
        request=PetitionReceiveSerializer,
        responses={201: CaseDetailSerializer, **errors(400, 401, 403)},
    )
)
class PetitionReceiveView(_RegisterView):
    serializer_class = PetitionReceiveSerializer
    service = staticmethod(petition_receive)


class CaseDetailView(ApiView):
    serializer_class = CaseDetailSerializer

    @extend_schema(
        operation_id="cases_retrieve",
        summary="案件详情",
        parameters=[CASE_ID],
        responses={200: CaseDetailSerializer, **errors(401, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        case = _visible_case(request, pk)
        now, _today = _now()
        return Response(_detail(request, case.pk, now))


class CaseTransitionsView(ApiView):
    serializer_class = TransitionsSerializer

    @extend_schema(
        operation_id="cases_transitions_list",
        summary="本人现在可执行的操作及其字段",
        parameters=[CASE_ID],
        responses={200: TransitionsSerializer, **errors(401, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        case = _visible_case(request, pk)
        _now_at, today = _now()
        targets = {t.name: t.target for t in case.get_all_state_transitions()}
        out = []
        for act in case_actions_for(request.user, case):
            form = act.step.form_class(case=case, actor=request.user, today=today)
            target = targets.get(act.name, case.state)
            out.append(
                {
                    "name": act.name,
                    "label": transition_label(case.kind, act.name),
                    "target": target,
                    "target_label": state_label(case.kind, target),
                    "fields": [describe_step_field(n, f, form) for n, f in form.fields.items()],
                }
            )
        data = {"case": case.pk, "state": case.state, "version": case.version, "transitions": out}
        return Response(TransitionsSerializer(data).data)


class CaseTransitionView(ApiView):
    serializer_class = TransitionRequestSerializer

    @extend_schema(
        operation_id="cases_transitions_create",
        summary="执行操作（状态变更）",
        description=(
            "请求体为该操作的字段（见 GET transitions/ 中的 fields），可另加 expected_version："
            "与当前版本不符时返回 409 stale；当前状态不允许时返回 409 transition_not_allowed；"
            "有权查看但角色不允许时返回 403。成功时返回案件的列表摘要（状态、版本、承办机构、"
            "最近到期日）；详情请 GET cases/{id}/。"
        ),
        parameters=[
            CASE_ID,
            OpenApiParameter(
                "name", str, OpenApiParameter.PATH, enum=TRANSITION_NAMES, description="操作名"
            ),
        ],
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: CaseListSerializer, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, pk: int, name: str) -> Response:
        if name not in TRANSITION_NAMES:
            raise NotFound(_("未知的操作：%(name)s") % {"name": name})
        now, _today = _now()

        def step_input(act: workflow.Action) -> dict[str, Any]:
            # JSON types only, from the step form's declared fields (no form instance: its
            # choices, such as the valid hand-off targets, are for the service to compute
            # under the lock). Called by the service once the case (and so its kind) is read.
            body = StepInputSerializer(
                data=request.data, form_fields=act.step.form_class.base_fields
            )
            body.is_valid(raise_exception=True)
            return body.form_data()

        # Compared by the service under the lock, before the body is checked; a value that is
        # not an integer is left to the body's check (400).
        expected = request.data.get("expected_version") if isinstance(request.data, dict) else None
        try:
            updated = case_transition(
                case_id=_check_id(pk),
                transition=name,
                actor=request.user,
                now=now,
                data=step_input,
                expected_version=expected if type(expected) is int else None,
            )
        except InvalidInput as exc:
            if exc.code == "unknown_action":  # a transition of the other kind of case
                raise NotFound(exc.message) from exc
            raise
        # The case as in lists: what changed (state, version, holder, next due), from the rows
        # the transition read and wrote (no second read for the answer).
        updated.live_duty_clocks = sorted(
            (c for c in updated.live_clocks if c.kind == ClockKind.DUTY.value),
            key=lambda c: (c.due_at, c.pk),
        )
        context = {"request": request, "now": now}
        return Response(CaseListSerializer(updated, context=context).data)


class CaseEventsView(ApiView):
    serializer_class = EventSerializer

    @extend_schema(
        operation_id="cases_events_list",
        summary="案件事件（审计记录）",
        parameters=[CASE_ID],
        responses={200: EventSerializer(many=True), **errors(400, 401, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        case = _visible_case(request, pk)
        if not case_access(request.user, case).timeline:
            # The court applied to sees the agreement and the parties, not the file's history.
            raise PermissionDenied(_("您只能查看本案的调解协议和当事人信息。"))
        qs = (
            CaseEvent.objects.filter(case_id=case.pk)
            .select_related("actor", "actor_agency")
            .order_by("version")
        )
        page = self.paginate_queryset(qs)
        hidden = identity_hidden_from(request.user, case)
        context = {
            "request": request,
            "identity_hidden": hidden,
            "secrets": protected_texts([case.pk]).get(case.pk, []) if hidden else [],
        }
        return self.get_paginated_response(EventSerializer(page, many=True, context=context).data)


class CaseClocksView(ApiView):
    serializer_class = ClockSerializer

    @extend_schema(
        operation_id="cases_clocks_list",
        summary="案件期限",
        parameters=[CASE_ID],
        responses={200: ClockSerializer(many=True), **errors(400, 401, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        case = _visible_case(request, pk)
        now, today = _now()
        qs = (
            Clock.objects.filter(case_id=case.pk)
            .prefetch_related("pauses")
            .order_by("-started_at", "-pk")
        )
        page = self.paginate_queryset(qs)
        context = {"request": request, "now": now, "today": today, "calendar": current_calendar()}
        return self.get_paginated_response(ClockSerializer(page, many=True, context=context).data)


class ReferToMediationView(ApiView):
    serializer_class = ReferToMediationSerializer

    @extend_schema(
        operation_id="cases_refer_to_mediation",
        summary="访调对接：将信访事项中的民事纠纷转人民调解委员会（每件限一次）",
        parameters=[CASE_ID],
        request=ReferToMediationSerializer,
        responses={201: CaseDetailSerializer, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, pk: int) -> Response:
        case = _visible_case(request, pk)
        body = ReferToMediationSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        now, _today = _now()
        dispute = petition_refer_to_mediation(
            petition_id=case.pk, actor=request.user, now=now, data=body.form_data()
        )
        headers = {"Location": f"/api/cases/{dispute.pk}/"}
        return Response(
            _detail(request, dispute.pk, now), status=status.HTTP_201_CREATED, headers=headers
        )


class PartyRevealView(ApiView):
    serializer_class = RevealRequestSerializer

    @extend_schema(
        operation_id="cases_parties_reveal",
        summary="查看当事人完整身份证号（记录查看人、用途和时间）",
        parameters=[
            CASE_ID,
            OpenApiParameter("party_id", int, OpenApiParameter.PATH, description="当事人 id"),
        ],
        request=RevealRequestSerializer,
        responses={200: RevealResponseSerializer, **errors(400, 401, 403, 404)},
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
        if not case_access(request.user, case).may_reveal:
            raise PermissionDenied(_("无权查看完整身份证号"))
        if not request.user.has_perm(REVEAL_PERMISSION):
            raise PermissionDenied(_("无权查看完整身份证号"))
        body = RevealRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        now, _today = _now()
        number = party_reveal_id_number(
            party_id=party_id,
            viewer=request.user,
            purpose=body.validated_data["purpose"],
            context=f"case:{case.pk}",
            now=now,
        )
        return Response(RevealResponseSerializer({"party": party_id, "id_number": number}).data)


# Reference data ---------------------------------------------------------------------------


@extend_schema_view(
    get=extend_schema(
        operation_id="agencies_list",
        responses={200: AgencySerializer(many=True), **errors(400, 401)},
    )
)
class AgencyListView(NoStoreMixin, generics.ListAPIView):
    serializer_class = AgencySerializer
    queryset = Agency.objects.order_by("level", "name", "pk")


@extend_schema_view(
    get=extend_schema(
        operation_id="agencies_retrieve", responses={200: AgencySerializer, **errors(401, 404)}
    )
)
class AgencyDetailView(NoStoreMixin, generics.RetrieveAPIView):
    serializer_class = AgencySerializer
    queryset = Agency.objects.all()

    def get_object(self) -> Agency:
        _check_id(self.kwargs["pk"])
        return super().get_object()


class CategoryFilterSerializer(serializers.Serializer):
    applies_to = serializers.ChoiceField(choices=AppliesTo.choices, required=False)


class CategoryListView(NoStoreMixin, generics.ListAPIView):
    serializer_class = CategorySerializer

    @extend_schema(
        operation_id="categories_list",
        parameters=[CategoryFilterSerializer],
        responses={200: CategorySerializer(many=True), **errors(400, 401)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Category]:
        filters = CategoryFilterSerializer(data=self.request.query_params.dict())
        filters.is_valid(raise_exception=True)
        qs = Category.objects.order_by("applies_to", "sort_order", "code", "pk")
        applies_to = filters.validated_data.get("applies_to")
        if applies_to:
            qs = qs.filter(applies_to__in=[applies_to, AppliesTo.BOTH])
        return qs


@extend_schema_view(
    get=extend_schema(
        operation_id="channels_list",
        responses={200: ChannelSerializer(many=True), **errors(400, 401)},
    )
)
class ChannelListView(NoStoreMixin, generics.ListAPIView):
    serializer_class = ChannelSerializer
    queryset = Channel.objects.order_by("sort_order", "code", "pk")


# Deadlines --------------------------------------------------------------------------------


class DeadlineComputeView(NoStoreMixin, APIView):
    """The API twin of `manage.py deadline RULE START [--pause FROM:TO ...] --json`."""

    @extend_schema(
        operation_id="deadlines_compute",
        summary="按规则计算法定期限（与 manage.py deadline --json 相同）",
        parameters=[DeadlineQuerySerializer],
        responses={200: DeadlineSerializer, **errors(400, 401)},
    )
    def get(self, request: Request) -> Response:
        query = DeadlineQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        lo, hi = PLAUSIBLE_YEARS
        try:
            start = parse_date(data["start"])
        except PolicyError as exc:
            raise InvalidInput(str(exc), details={"start": [str(exc)]}) from None
        pauses = []
        for text in data.get("pause", []):
            try:
                pauses.append(parse_pause(text))
            except PolicyError as exc:
                raise InvalidInput(str(exc), details={"pause": [str(exc)]}) from None
        for field, days in (("start", [start]), ("pause", [d for p in pauses for d in p])):
            if any(not lo <= day.year <= hi for day in days):
                message = _("日期须在 %(lo)s 年至 %(hi)s 年之间。") % {"lo": lo, "hi": hi}
                raise InvalidInput(message, details={field: [message]})

        note = None
        try:
            calendar = current_calendar()
        except DatabaseError as exc:
            calendar = ChineseCalendar()
            reason = next(iter(str(exc).strip().splitlines()), "") or type(exc).__name__
            note = f"未能读取数据库中的节假日调整（{reason}），仅使用 chinese_calendar 数据"
        try:
            deadline = compute_deadline(data["rule"], start, calendar=calendar, pauses=pauses)
        except PolicyError as exc:
            raise InvalidInput(str(exc), details={"non_field_errors": [str(exc)]}) from None
        if note:
            deadline = deadline.with_note(note)
        return Response(deadline.as_dict())


# Escalations (超期督办) -------------------------------------------------------------------
#
# The queue and the one rule for who may see and act on an escalation are
# `mediation.escalation.selectors`' (the web pages use them too): an escalation the user may
# neither act on nor see through its case is 404; the services check who may act (403) and
# whether the escalation is still live (409).

ESCALATION_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="督办 id")


def _visible_escalation(request: Request, pk: int) -> Escalation:
    return escalation_get_for(request.user, _check_id(pk))


class EscalationQueueView(ApiView):
    serializer_class = EscalationSerializer

    @extend_schema(
        operation_id="escalations_list",
        summary="本人的督办队列（待签收在前）",
        parameters=[EscalationQueueFilterSerializer],
        responses={200: EscalationSerializer(many=True), **errors(400, 401)},
    )
    def get(self, request: Request) -> Response:
        filters = EscalationQueueFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        qs = escalation_queue_for(
            user=request.user,
            include_acknowledged=not filters.validated_data.get("open_only", False),
        )
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(EscalationSerializer(page, many=True).data)


class EscalationDetailView(ApiView):
    serializer_class = EscalationSerializer

    @extend_schema(
        operation_id="escalations_retrieve",
        summary="督办详情（督办单）",
        parameters=[ESCALATION_ID],
        responses={200: EscalationSerializer, **errors(401, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(EscalationSerializer(_visible_escalation(request, pk)).data)


class _EscalationActionView(ApiView):
    serializer_class: Any = None

    def act(self, request: Request, escalation: Escalation, data: dict, now: dt.datetime) -> Any:
        raise NotImplementedError

    def post(self, request: Request, pk: int) -> Response:
        escalation = _visible_escalation(request, pk)
        body = self.serializer_class(data=request.data)
        body.is_valid(raise_exception=True)
        now, _today = _now()
        self.act(request, escalation, body.validated_data, now)
        return Response(EscalationSerializer(_visible_or_acted(request, escalation.pk)).data)


def _visible_or_acted(request: Request, pk: int) -> Escalation:
    """After 改派 the case may have left the actor's scope; they still get the result."""
    return (
        Escalation.objects.filter(pk=pk)
        .select_related("case__holder_agency", "clock", "agency", "issuer", "acknowledged_by")
        .get()
    )


def _action_schema(operation_id: str, summary: str, request_serializer: Any) -> Any:
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        parameters=[ESCALATION_ID],
        request=request_serializer,
        responses={200: EscalationSerializer, **errors(400, 401, 403, 404, 409)},
    )


class EscalationAcknowledgeView(_EscalationActionView):
    serializer_class = EscalationNoteSerializer

    @_action_schema("escalations_acknowledge", "签收", EscalationNoteSerializer)
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def act(self, request, escalation, data, now):
        return escalation_acknowledge(
            escalation_id=escalation.pk, actor=request.user, now=now, note=data.get("note", "")
        )


class EscalationReassignView(_EscalationActionView):
    serializer_class = EscalationReassignSerializer

    @_action_schema("escalations_reassign", "改派", EscalationReassignSerializer)
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def act(self, request, escalation, data, now):
        return escalation_reassign(
            escalation_id=escalation.pk,
            actor=request.user,
            now=now,
            reason=data["reason"],
            to_agency_id=data.get("to_agency"),
            to_user_id=data.get("to_user"),
        )


class EscalationApproveExtensionView(_EscalationActionView):
    serializer_class = EscalationExtensionSerializer

    @_action_schema("escalations_approve_extension", "批准延期", EscalationExtensionSerializer)
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def act(self, request, escalation, data, now):
        return escalation_approve_extension(
            escalation_id=escalation.pk,
            actor=request.user,
            now=now,
            extra_days=data["extra_days"],
            reason=data["reason"],
        )


class EscalationIssueNoteView(_EscalationActionView):
    serializer_class = EscalationInstructionSerializer

    @_action_schema("escalations_issue_note", "督办意见", EscalationInstructionSerializer)
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def act(self, request, escalation, data, now):
        return escalation_issue_note(
            escalation_id=escalation.pk, actor=request.user, now=now, text=data["text"]
        )


class EscalationResolveView(_EscalationActionView):
    serializer_class = EscalationNoteSerializer

    @_action_schema("escalations_resolve", "办结", EscalationNoteSerializer)
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def act(self, request, escalation, data, now):
        return escalation_resolve(
            escalation_id=escalation.pk, actor=request.user, now=now, note=data.get("note", "")
        )


# Notifications (the in-app inbox) ---------------------------------------------------------


class NotificationListView(ApiView):
    serializer_class = NotificationSerializer

    @extend_schema(
        operation_id="notifications_list",
        summary="本人的通知（最新在前）",
        parameters=[NotificationFilterSerializer],
        responses={200: NotificationSerializer(many=True), **errors(400, 401)},
    )
    def get(self, request: Request) -> Response:
        filters = NotificationFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        qs = notification_list_for(
            user=request.user, unread_only=filters.validated_data.get("unread", False)
        )
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(NotificationSerializer(page, many=True).data)


class NotificationUnreadCountView(ApiView):
    serializer_class = UnreadCountSerializer

    @extend_schema(
        operation_id="notifications_unread_count",
        summary="未读通知数",
        responses={200: UnreadCountSerializer, **errors(401)},
    )
    def get(self, request: Request) -> Response:
        return Response({"unread": notification_unread_count(user=request.user)})


class NotificationMarkReadView(ApiView):
    serializer_class = NotificationMarkReadSerializer

    @extend_schema(
        operation_id="notifications_mark_read",
        summary="标为已读",
        request=NotificationMarkReadSerializer,
        responses={200: NotificationMarkReadResultSerializer, **errors(400, 401)},
    )
    def post(self, request: Request) -> Response:
        body = NotificationMarkReadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        now, _today = _now()
        if body.validated_data["all"]:
            marked = notification_mark_all_read(user=request.user, now=now)
        else:
            marked = notification_mark_read(
                user=request.user, notification_ids=body.validated_data["ids"], now=now
            )
        unread = notification_unread_count(user=request.user)
        return Response({"marked": marked, "unread": unread})


# The case file (卷宗) -------------------------------------------------------------------------

ACTION_NAMES = sorted({a.name for a in workflow.actions() if not a.transition and a.states})


class CaseActionView(ApiView):
    """A service action of the workflow table that keeps the state: upload_attachment
    (multipart, field `file`), withdraw_attachment, record_session, follow_up_visit,
    register_oral_agreement."""

    parser_classes = (StrictJSONParser, MultiPartParser, FormParser)
    serializer_class = CaseActionRequestSerializer

    @extend_schema(
        operation_id="cases_actions_create",
        summary="卷宗操作：上传/撤回材料、调解记录、回访、口头协议登记",
        parameters=[
            CASE_ID,
            OpenApiParameter(
                "name", str, OpenApiParameter.PATH, enum=ACTION_NAMES, description="操作名"
            ),
        ],
        request={
            "application/json": OpenApiTypes.OBJECT,
            "multipart/form-data": OpenApiTypes.OBJECT,
        },
        responses={201: CaseDetailSerializer, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, pk: int, name: str) -> Response:
        case = _visible_case(request, pk)
        act = workflow.action(case.kind, name)
        if act is None or act.transition or act.states is None:
            raise NotFound(_("未知的操作：%(name)s") % {"name": name})
        if not hasattr(request.data, "getlist") and not isinstance(request.data, dict):
            raise InvalidInput(_("请求体须为对象。"))
        data = {
            k: v
            for k, v in (request.data.items() if hasattr(request.data, "items") else [])
            if k != "file" and isinstance(v, str | int | bool | list)
        }
        if hasattr(request.data, "getlist") and "parties_present" in request.data:
            data["parties_present"] = request.data.getlist("parties_present")
        now, _today = _now()
        updated = case_service_action(
            case_id=case.pk,
            name=name,
            actor=request.user,
            now=now,
            data=data,
            files=request.FILES,
        )
        return Response(_detail(request, updated.pk, now), status=status.HTTP_201_CREATED)


class CaseAttachmentsView(ApiView):
    serializer_class = AttachmentSerializer

    @extend_schema(
        operation_id="cases_attachments_list",
        summary="卷宗材料（按本人查看权限）",
        parameters=[CASE_ID],
        responses={200: AttachmentSerializer(many=True), **errors(400, 401, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        case = _visible_case(request, pk)
        rows = attachments_for(request.user, case)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(AttachmentSerializer(page, many=True).data)


class AttachmentDownloadView(ApiView):
    @extend_schema(
        operation_id="cases_attachments_download",
        summary="下载卷宗材料（记录下载人和时间）",
        parameters=[
            CASE_ID,
            OpenApiParameter("attachment_id", int, OpenApiParameter.PATH, description="材料 id"),
        ],
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            **errors(401, 404),
        },
    )
    def get(self, request: Request, pk: int, attachment_id: int) -> Any:
        case = _visible_case(request, pk)
        row = attachment_get_for(request.user, case, _check_id(attachment_id))
        if row is None:
            raise NotFound(_("材料不存在或您无权查看。"))
        now, _today = _now()
        handle = content.open_stored(row.stored_name)
        file_access_log(user=request.user, case=case, now=now, attachment=row)
        response = FileResponse(
            handle, as_attachment=True, filename=row.original_name, content_type=row.content_type
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "no-store"
        return response


class CaseSessionsView(ApiView):
    serializer_class = SessionRecordSerializer

    @extend_schema(
        operation_id="cases_sessions_list",
        summary="调解记录",
        parameters=[CASE_ID],
        responses={200: SessionRecordSerializer(many=True), **errors(400, 401, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        case = _visible_case(request, pk)
        rows = sessions_for(request.user, case)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(SessionRecordSerializer(page, many=True).data)
