"""Case lists, the case page, transitions, clock pauses, 访调对接 and the ID-number reveal."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from mediation.accounts.models import Role, User
from mediation.agencies import selectors as agency_selectors
from mediation.casefiles.selectors import case_file_context
from mediation.cases import selectors as case_selectors
from mediation.cases import services, workflow
from mediation.cases.clocks import MANUALLY_PAUSABLE
from mediation.cases.labels import CLOCK_KIND_LABELS, rule_basis, rule_label, transition_label
from mediation.cases.models import TERMINAL_STATES, Case, CaseKind, CaseParty
from mediation.cases.steps import ReferToMediationForm, StepForm
from mediation.core.dates import parse_plausible_date
from mediation.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from mediation.core.ids import parse_id
from mediation.escalation import selectors as esc_selectors
from mediation.parties.services import REVEAL_PERMISSION, party_reveal_id_number
from mediation.web import documents, engine, selectors
from mediation.web.forms import DATE_INPUT, CaseSearchForm, RevealForm
from mediation.web.views.common import (
    SEARCH_COUNT_CAP,
    RequestClock,
    paginate,
    query_without_page,
    visible_case_or_404,
)

SCOPES = ("mine", "agency")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if request.user.role in (Role.SUPERVISOR, Role.ADMINISTRATOR) and engine.escalation_ready():
        return redirect("web:supervision")
    return redirect("web:cases_mine")


@never_cache
@login_required
def case_list(request: HttpRequest, scope: str) -> HttpResponse:
    if scope not in SCOPES:
        raise Http404
    rc = RequestClock()
    user_scope = agency_selectors.user_scope(request.user)
    form = CaseSearchForm(
        request.GET or None,
        agency_ids=frozenset() if user_scope.empty else user_scope.below,
        agency_id=request.user.agency_id,
    )
    data: dict[str, Any] = {}
    if form.is_bound:
        form.is_valid()
        data = {k: v for k, v in form.cleaned_data.items() if k not in form.errors}
    due = data.get("due") or ""
    filters = case_selectors.CaseFilters(
        state=data.get("state") or "",
        category_id=data["category"].pk if data.get("category") else None,
        channel_id=data["channel"].pk if data.get("channel") else None,
        holder_agency_id=data["holder_agency"].pk if data.get("holder_agency") else None,
        assignee_id=data["assignee"].pk if data.get("assignee") else None,
        registered_from=data.get("registered_from"),
        registered_to=data.get("registered_to"),
        overdue=True if due == "overdue" else None,
        due_by=(
            case_selectors.working_day_horizon(rc.today, selectors.SOON_WORKING_DAYS, rc.calendar)
            if due == "soon"
            else None
        ),
    )
    q = data.get("q") or ""
    qs = case_selectors.case_list_for(
        request.user,
        scope=scope,
        kind=data.get("kind") or "",
        include_closed=bool(data.get("closed")),
        q=q,
        filters=filters,
        now=rc.now,
    )
    page = paginate(request, qs, cap=SEARCH_COUNT_CAP if q.strip() else None)
    rows = selectors.decorate_cases(list(page.object_list), now=rc.now, calendar=rc.calendar)
    return render(
        request,
        "web/cases/list.html",
        {
            "scope": scope,
            "nav": scope,
            "page": page,
            "rows": rows,
            "form": form,
            "q": q,
            "searching": bool(q.strip()),
            "querystring": query_without_page(request),
            "can_register": request.user.role in workflow.INTAKE
            and request.user.agency_id is not None,
            "rule_label": rule_label,
        },
    )


# The case page --------------------------------------------------------------------------------


@dataclass
class Action:
    name: str
    label: str
    form: StepForm
    closes: bool
    is_open: bool = False
    url: str = ""

    @property
    def multipart(self) -> bool:
        return self.form.is_multipart()


def _prepare_step_form(form: StepForm) -> StepForm:
    """Date pickers and compact text areas (the form narrows its own choices)."""
    for field in form.fields.values():
        if isinstance(field, forms.DateField):
            field.widget = DATE_INPUT
        elif isinstance(field.widget, forms.Textarea):
            field.widget.attrs.setdefault("rows", 3)
    return form


def step_form(
    case: Case, user: User, transition: str, rc: RequestClock, data: Any = None, files: Any = None
) -> StepForm:
    act = workflow.action(case.kind, transition)
    assert act is not None
    form = act.step.form_class(
        data=data,
        files=files,
        case=case,
        actor=user,
        today=rc.today,
        auto_id=f"id_{transition}_%s",
    )
    return _prepare_step_form(form)


def _actions(
    detail: case_selectors.CaseDetail,
    user: User,
    rc: RequestClock,
    bound: tuple[str, StepForm] | None,
) -> list[Action]:
    case = detail.case
    terminal = TERMINAL_STATES.get(case.kind, frozenset())
    targets = {t.name: t.target for t in case.get_all_state_transitions()}
    out = []
    for act in detail.actions:
        if bound is not None and bound[0] == act.name:
            form, is_open = bound[1], True
        else:
            form, is_open = step_form(case, user, act.name, rc), False
        out.append(
            Action(
                name=act.name,
                label=transition_label(case.kind, act.name),
                form=form,
                closes=act.transition and targets.get(act.name) in terminal,
                is_open=is_open,
                url=reverse(
                    "web:case_act" if act.transition else "web:case_file_act",
                    args=[case.pk, act.name],
                ),
            )
        )
    return out


def case_page_context(
    request: HttpRequest,
    case: Case,
    rc: RequestClock,
    *,
    bound: tuple[str, StepForm] | None = None,
    revealed: dict[int, str] | None = None,
    reveal_form: tuple[int, RevealForm] | None = None,
    revealed_phones: dict[int, str] | None = None,
) -> dict[str, Any]:
    user = request.user
    detail = case_selectors.case_detail_for(user, case)
    live, stopped = case_selectors.clocks_for_case(case)
    live_rows = [
        (
            c,
            selectors.urgency_of(
                c.due_at if c.status == "running" else None, now=rc.now, calendar=rc.calendar
            ),
        )
        for c in live
    ]
    stopped_rows = [(c, case_selectors.clock_on_time(c)) for c in stopped]
    escalations = []
    if engine.escalation_ready():
        escalations = [
            (e, esc_selectors.escalation_may_act(user, e))
            for e in esc_selectors.escalation_list_for_case(case_id=case.pk)
        ]
    actions = _actions(detail, user, rc, bound)
    file_context = case_file_context(user, case)
    return {
        **file_context,
        "documents": documents.documents_for(
            case, hidden=detail.identity_hidden, access=detail.access
        ),
        "dossier_available": file_context["file_rights"].dossier,
        "case": case,
        "detail": detail,
        "access": detail.access,
        "parties": detail.parties,
        "identity_hidden": detail.identity_hidden,
        "can_reveal": (not detail.identity_hidden)
        and detail.access.may_reveal
        and user.has_perm(REVEAL_PERMISSION),
        "revealed": revealed or {},
        "revealed_phones": revealed_phones or {},
        "reveal_form": reveal_form,
        "live_clocks": live_rows,
        "stopped_clocks": stopped_rows if detail.access.timeline else [],
        "timeline": (
            case_selectors.case_timeline(case, secrets=detail.secrets)
            if detail.access.timeline
            else None
        ),
        "actions": [a for a in actions if a.name != "refer_to_mediation"],
        # 访调对接 (信访工作条例 Art 33): once, from a petition in handling.
        "refer_action": next((a for a in actions if a.name == "refer_to_mediation"), None),
        "next_steps": detail.next_steps,
        "agreements": detail.agreements,
        "printable_agreements": case_selectors.printable_agreements(detail),
        "acceptance_notice": documents.acceptance_notice_available(case) and detail.access.timeline,
        "escalations": escalations,
        "spawned": list(
            case_selectors.cases_visible_to(user)
            .filter(spawned_from_id=case.pk)
            .values("pk", "number")
        ),
        "spawned_from": (
            case_selectors.cases_visible_to(user).filter(pk=case.spawned_from_id).first()
            if case.spawned_from_id
            else None
        ),
        "rule_label": rule_label,
        "rule_basis": rule_basis,
        "clock_kind_labels": CLOCK_KIND_LABELS,
        # 复核听证: pause and resume by hand (信访工作条例 Art 36 ¶2).
        "pausable": (
            MANUALLY_PAUSABLE
            if case.kind == CaseKind.PETITION and workflow.may_act(user, case, "pause_clock")
            else frozenset()
        ),
        "today": rc.today,
    }


@never_cache
@login_required
def case_detail(request: HttpRequest, pk: int) -> HttpResponse:
    rc = RequestClock()
    case = visible_case_or_404(request, pk)
    return render(request, "web/cases/detail.html", case_page_context(request, case, rc))


def _after_action_redirect(request: HttpRequest, case_id: int) -> HttpResponse:
    """Back to the case if the user still sees it (it may have moved to another agency)."""
    if case_selectors.cases_visible_to(request.user).filter(pk=case_id).exists():
        return redirect("web:case_detail", pk=case_id)
    return redirect("web:cases_agency")


@never_cache
@login_required
@require_POST
def case_act(request: HttpRequest, pk: int, transition: str) -> HttpResponse:
    rc = RequestClock()
    case = visible_case_or_404(request, pk)
    act = workflow.action(case.kind, transition)
    if act is None or not act.transition:
        raise Http404
    label = services.transition_label(case, transition)
    expected_version = parse_id(request.POST.get("expected_version", ""))
    if expected_version is None:
        messages.error(request, _("页面已过期，请刷新后重试。"))
        return redirect("web:case_detail", pk=pk)
    form = step_form(case, request.user, transition, rc, data=request.POST)
    if expected_version == case.version and not form.is_valid():
        messages.error(request, _("提交的信息有误，请检查后重试。"))
        context = case_page_context(request, case, rc, bound=(transition, form))
        return render(request, "web/cases/detail.html", context)
    try:
        services.case_transition(
            case_id=case.pk,
            transition=transition,
            actor=request.user,
            now=rc.now,
            data=request.POST,
            expected_version=expected_version,
        )
    except InvalidInput as exc:
        if isinstance(exc.details, dict):
            for field, errors in exc.details.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        messages.error(request, exc.message)
        context = case_page_context(request, case, rc, bound=(transition, form))
        return render(request, "web/cases/detail.html", context)
    except Conflict as exc:
        if exc.code == "stale":
            messages.error(request, _("案件已被他人更新，请刷新后重试。"))
        else:
            messages.error(request, exc.message)
        return redirect("web:case_detail", pk=pk)
    except (PermissionDenied, NotFound) as exc:
        messages.error(request, exc.message)
        return redirect("web:case_detail", pk=pk)
    messages.success(request, _("已完成：%(action)s") % {"action": label})
    return _after_action_redirect(request, pk)


@never_cache
@login_required
@require_POST
def party_reveal(request: HttpRequest, pk: int, party_pk: int) -> HttpResponse:
    """Show one party's full ID number after asking why; the service logs the viewing."""
    rc = RequestClock()
    case = visible_case_or_404(request, pk)
    if not CaseParty.objects.filter(case=case, party_id=party_pk).exists():
        raise Http404
    if case_selectors.identity_hidden_from(request.user, case):
        raise Http404
    if not case_selectors.case_access(request.user, case).may_reveal:
        raise Http404
    form = RevealForm(request.POST)
    if not form.is_valid():
        context = case_page_context(request, case, rc, reveal_form=(party_pk, form))
        return render(request, "web/cases/detail.html", context)
    try:
        number = party_reveal_id_number(
            party_id=party_pk,
            viewer=request.user,
            purpose=form.cleaned_data["purpose"],
            context=f"case:{case.pk}",
            now=rc.now,
        )
    except (PermissionDenied, InvalidInput, NotFound) as exc:
        messages.error(request, exc.message)
        return redirect("web:case_detail", pk=pk)
    messages.info(request, _("已记录本次查看：用途“%(purpose)s”。") % form.cleaned_data)
    context = case_page_context(request, case, rc, revealed={party_pk: number})
    return render(request, "web/cases/detail.html", context)


def _post_date(request: HttpRequest, name: str) -> dt.date | None:
    value = request.POST.get(name, "").strip()
    if not value:
        return None
    day = parse_plausible_date(value)
    if day is None:
        raise InvalidInput(_("日期格式错误。"))
    return day


@never_cache
@login_required
@require_POST
def clock_pause(request: HttpRequest, pk: int, rule: str, action: str) -> HttpResponse:
    """暂停 / 恢复 a manually pausable clock (复核听证: hearing days do not count)."""
    rc = RequestClock()
    case = visible_case_or_404(request, pk)
    if action not in ("pause", "resume") or rule not in MANUALLY_PAUSABLE:
        raise Http404
    try:
        on = _post_date(request, "on")
        if action == "pause":
            services.case_pause_clock(
                case_id=case.pk,
                actor=request.user,
                now=rc.now,
                rule_code=rule,
                reason=request.POST.get("reason", ""),
                on=on,
            )
            messages.success(request, _("期限已暂停。"))
        else:
            services.case_resume_clock(
                case_id=case.pk, actor=request.user, now=rc.now, rule_code=rule, on=on
            )
            messages.success(request, _("期限已恢复计算。"))
    except (InvalidInput, Conflict, PermissionDenied, NotFound) as exc:
        messages.error(request, exc.message)
    return redirect("web:case_detail", pk=pk)


@never_cache
@login_required
@require_POST
def refer_to_mediation(request: HttpRequest, pk: int) -> HttpResponse:
    """访调对接: open a linked dispute referred to a people's mediation committee."""
    rc = RequestClock()
    case = visible_case_or_404(request, pk)
    try:
        dispute = services.petition_refer_to_mediation(
            petition_id=case.pk, actor=request.user, now=rc.now, data=request.POST
        )
    except InvalidInput as exc:
        form = _prepare_step_form(
            ReferToMediationForm(
                data=request.POST,
                case=case,
                actor=request.user,
                today=rc.today,
                auto_id="id_refer_to_mediation_%s",
            )
        )
        form.is_valid()
        if isinstance(exc.details, dict):
            for field, errors in exc.details.items():
                for error in errors:
                    if error not in form.errors.get(field, []):
                        form.add_error(field if field in form.fields else None, error)
        messages.error(request, exc.message)
        context = case_page_context(request, case, rc, bound=("refer_to_mediation", form))
        return render(request, "web/cases/detail.html", context)
    except (Conflict, PermissionDenied, NotFound) as exc:
        messages.error(request, exc.message)
        return redirect("web:case_detail", pk=pk)
    messages.success(request, _("已转人民调解，纠纷案号：%(number)s") % {"number": dispute.number})
    return redirect("web:case_detail", pk=pk)
