"""登记: register a dispute or receive and register a petition, with its parties.

When a party typed in already has an open case (same ID number, by its keyed hash, or same
phone), the page asks for confirmation before registering. It names only the cases the user
may see; of the others it says no more than "该当事人已有在办案件".
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as HttpForbidden
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from mediation.cases import services
from mediation.cases.models import CaseKind
from mediation.cases.selectors import DuplicateHit, open_cases_for_party
from mediation.cases.workflow import INTAKE
from mediation.core.errors import Conflict, InvalidInput, PermissionDenied
from mediation.web.forms import BasePartyFormSet, RegisterCaseForm, party_formset_class
from mediation.web.views.common import RequestClock

PARTIES_PREFIX = "parties"


def _duplicates(request: HttpRequest, formset: BasePartyFormSet) -> list[DuplicateHit]:
    hits = []
    for i, data in enumerate(formset.filled()):
        visible, hidden, matched_by = open_cases_for_party(
            user=request.user, id_number=data.get("id_number", ""), phone=data.get("phone", "")
        )
        if matched_by:
            hits.append(
                DuplicateHit(
                    index=i,
                    name=data["name"],
                    matched_by=matched_by,
                    visible=visible,
                    hidden_count=hidden,
                )
            )
    return hits


def _register(request: HttpRequest, kind: str, form: RegisterCaseForm, formset, rc: RequestClock):
    data = form.cleaned_data
    parties = [
        services.PartyInput(
            name=p["name"],
            role=p["role"],
            id_number=p.get("id_number") or None,
            phone=p.get("phone", ""),
            address=p.get("address", ""),
            sms_consent=bool(p.get("sms_consent")),
        )
        for p in formset.filled()
    ]
    common = {
        "actor": request.user,
        "title": data["title"],
        "channel_id": data["channel"].pk,
        "received_on": data["received_on"],
        "parties": parties,
        "now": rc.now,
        "description": data["description"],
        "category_id": data["category"].pk,
    }
    if kind == CaseKind.DISPUTE:
        return services.dispute_register(
            **common,
            mediation_track=data["mediation_track"],
            risk_level=data["risk_level"],
        )
    accused = data.get("accused_agency")
    case = services.petition_receive(
        **common,
        petition_type=data["petition_type"],
        headcount=data["headcount"],
        accused_agency_id=accused.pk if accused else None,
    )
    # 收到 → 登记 at the window, the same day (信访工作条例 Arts 21–23).
    return services.case_transition(
        case_id=case.pk,
        transition="register",
        actor=request.user,
        now=rc.now,
        data={"petition_type": data["petition_type"]},
        expected_version=case.version,
    )


@never_cache
@login_required
def register_case(request: HttpRequest, kind: str) -> HttpResponse:
    if kind not in CaseKind.values:
        raise Http404
    user = request.user
    if user.role not in INTAKE or user.agency_id is None:
        raise HttpForbidden(_("您没有登记案件的权限。"))
    rc = RequestClock()
    formset_class = party_formset_class(kind)
    hits: list[DuplicateHit] = []
    if request.method == "POST":
        form = RegisterCaseForm(request.POST, kind=kind, today=rc.today)
        formset = formset_class(request.POST, kind=kind, today=rc.today, prefix=PARTIES_PREFIX)
        if form.is_valid() and formset.is_valid():
            hits = _duplicates(request, formset)
            if not hits or request.POST.get("confirm_duplicates") == "1":
                try:
                    case = _register(request, kind, form, formset, rc)
                except (InvalidInput, PermissionDenied, Conflict) as exc:
                    form.add_error(None, exc.message)
                else:
                    messages.success(
                        request, _("登记成功，案号：%(number)s") % {"number": case.number}
                    )
                    return redirect("web:case_detail", pk=case.pk)
    else:
        form = RegisterCaseForm(kind=kind, today=rc.today)
        formset = formset_class(kind=kind, today=rc.today, prefix=PARTIES_PREFIX)
    return render(
        request,
        "web/registration/register.html",
        {
            "kind": kind,
            "kind_label": CaseKind(kind).label,
            "form": form,
            "formset": formset,
            "hits": hits,
        },
    )
