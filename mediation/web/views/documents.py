"""Print-ready documents (A4 HTML with print CSS), always in Chinese."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from mediation.cases import selectors as case_selectors
from mediation.cases.models import Agreement, AgreementForm, CaseKind, CaseParty
from mediation.core import clock
from mediation.parties.services import REVEAL_PERMISSION, party_reveal_id_number
from mediation.web import documents
from mediation.web.documents import chinese_document
from mediation.web.views.common import visible_case_or_404


@never_cache
@login_required
@chinese_document
def acceptance_notice(request: HttpRequest, pk: int) -> HttpResponse:
    """受理告知书 (信访工作条例 Arts 23, 34) for a petition that has been accepted."""
    case = visible_case_or_404(request, pk)
    if not documents.acceptance_notice_available(case):
        raise Http404
    if not case_selectors.case_access(request.user, case).timeline:
        raise Http404
    hidden = case_selectors.identity_hidden_from(request.user, case)
    context = documents.acceptance_notice(case, hidden=hidden)
    return render(request, "web/docs/acceptance_notice.html", context)


@never_cache
@login_required
@chinese_document
def agreement(request: HttpRequest, pk: int, agreement_pk: int) -> HttpResponse:
    """人民调解协议书 (人民调解法 Art 29) for a written agreement of a dispute.

    The file's side and the court applied to for 司法确认 may print it; a viewer from whom the
    parties are hidden (检举控告) gets "（保密）" in their place."""
    case = visible_case_or_404(request, pk)
    if case.kind != CaseKind.DISPUTE:
        raise Http404
    row = (
        Agreement.objects.filter(case=case, pk=agreement_pk)
        .exclude(form=AgreementForm.ORAL)
        .select_related("recorded_by", "recorded_by__agency")
        .first()
    )
    if row is None:
        raise Http404
    hidden = case_selectors.identity_hidden_from(request.user, case)
    context = documents.agreement_document(case, row, hidden=hidden)
    if request.GET.get("original") == "1":
        # The original for signature shows full ID numbers (the parties sign it; the court
        # needs it for 司法确认): only for a user who may reveal them, each one logged.
        access = case_selectors.case_access(request.user, case)
        if hidden or not access.may_reveal or not request.user.has_perm(REVEAL_PERMISSION):
            raise Http404
        now = clock.now()
        full = {}
        for cp in CaseParty.objects.filter(case=case).select_related("party"):
            if cp.party.has_id_number:
                full[cp.pk] = party_reveal_id_number(
                    party_id=cp.party_id,
                    viewer=request.user,
                    purpose="打印人民调解协议书原件（当事人签名、司法确认）",
                    context=f"case:{case.pk}:agreement:{row.pk}",
                    now=now,
                )
        context = documents.agreement_document(case, row, hidden=False, full_ids=full)
    return render(request, "web/docs/agreement.html", context)
