"""超期督办: the escalation queue (我的督办), its actions and the printable 督办单.

The queue is `mediation.escalation.selectors.escalation_queue_for(user=...)`, for supervisors
and for the heads of agencies that receive level-1 督办单, filtered here by level, holder
agency, category and days overdue; the table part is re-fetched every 15 seconds so new
escalations appear without a reload. Who may see and act on one escalation is the selectors'
one rule (`escalation_get_for`, `escalation_may_act`). Actions call the engine's services,
which lock the case, check the actor again and write the audit event.

Indexes relied on: `escalation_queue_idx` (agency, status) for the queue and its count,
`escalation_case_idx` (case, status) for a case's escalations.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as HttpForbidden
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.choices import CallableChoiceIterator
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from mediation.accounts.models import Role, User
from mediation.agencies.models import Agency
from mediation.agencies.selectors import SUPERVISING_ROLES, user_scope
from mediation.cases import workflow
from mediation.cases.labels import rule_label
from mediation.cases.models import Category
from mediation.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from mediation.core.ids import parse_id, parse_int
from mediation.escalation import selectors as esc_selectors
from mediation.escalation import services as esc_services
from mediation.escalation.models import Escalation, EscalationLevel, EscalationStatus
from mediation.web import documents, selectors
from mediation.web.views.common import RequestClock, paginate, query_without_page

QUEUE_PAGE_SIZE = 50
POLL_SECONDS = 15


def _require_queue(user: User) -> None:
    if not esc_selectors.escalation_queue_available(user):
        raise HttpForbidden(_("超期督办仅限督办人员、机构负责人和系统管理员使用。"))


class QueueFilterForm(forms.Form):
    level = forms.TypedChoiceField(
        label=gettext_lazy("督办层级"),
        choices=[("", gettext_lazy("全部")), *EscalationLevel.choices],
        coerce=int,
        required=False,
        empty_value=None,
    )
    agency = forms.ModelChoiceField(
        label=gettext_lazy("承办机构"),
        queryset=Agency.objects.none(),
        required=False,
        empty_label=gettext_lazy("全部"),
    )
    category = forms.ModelChoiceField(
        label=gettext_lazy("类型"),
        queryset=Category.objects.filter(is_active=True),
        required=False,
        empty_label=gettext_lazy("全部"),
    )
    min_days = forms.IntegerField(
        label=gettext_lazy("超期天数不少于"), min_value=0, max_value=3650, required=False
    )
    status = forms.ChoiceField(
        label=gettext_lazy("状态"),
        choices=[("open", gettext_lazy("待签收")), ("live", gettext_lazy("待签收和已签收"))],
        required=False,
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["agency"]
        # Any agency of the user's scope is accepted (a bookmarked filter stays valid), but
        # the drop-down offers only the holders of escalations in the queue now, and the
        # chosen one: a county's scope is a thousand agencies, too many to render each time.
        field.queryset = Agency.objects.filter(pk__in=user_scope(user).below)
        chosen = self.data.get("agency") if self.is_bound else None

        @functools.cache  # the widget reads its choices more than once
        def offered() -> list[tuple[Any, str]]:
            ids = set(
                esc_selectors.escalation_queue_for(user=user, include_acknowledged=True)
                .order_by()
                .values_list("case__holder_agency_id", flat=True)
                .distinct()
            )
            if parse_id(chosen) is not None:
                ids.add(parse_id(chosen))
            return [
                ("", field.empty_label),
                *field.queryset.filter(pk__in=ids).values_list("pk", "name"),
            ]

        field.widget.choices = CallableChoiceIterator(offered)  # only when rendered


def _queue(request: HttpRequest, rc: RequestClock) -> tuple[QueueFilterForm, Any]:
    user = request.user
    form = QueueFilterForm(request.GET or None, user=user)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    live = data.get("status") == "live"
    qs = esc_selectors.escalation_queue_for(user=user, include_acknowledged=live)
    if data.get("level"):
        qs = qs.filter(level=data["level"])
    if data.get("agency") is not None:
        qs = qs.filter(case__holder_agency=data["agency"])
    if data.get("category") is not None:
        qs = qs.filter(case__category=data["category"])
    if data.get("min_days"):
        qs = qs.filter(clock__due__lte=rc.today - dt.timedelta(days=data["min_days"]))
    return form, qs


def _queue_context(request: HttpRequest, rc: RequestClock) -> dict[str, Any]:
    form, qs = _queue(request, rc)
    page = paginate(request, qs, per_page=QUEUE_PAGE_SIZE)
    rows = []
    for e in page.object_list:
        rows.append(
            {
                "e": e,
                "days_overdue": max((rc.today - e.clock.due).days, 0),
                "ack_overdue": e.status == EscalationStatus.OPEN and e.ack_due_at <= rc.now,
                "ack_due": (e.ack_due_at - dt.timedelta(microseconds=1)).date(),
            }
        )
    querystring = query_without_page(request)
    back_url = reverse("web:supervision") + (f"?{querystring}" if querystring else "")
    if page.number > 1:
        back_url += f"{'&' if querystring else '?'}page={page.number}"
    return {
        "filter_form": form,
        "page": page,
        "back_url": back_url,
        "rows": rows,
        "querystring": querystring,
        "rule_label": rule_label,
        "now": rc.now,
    }


@never_cache
@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    _require_queue(request.user)
    rc = RequestClock()
    context = _queue_context(request, rc)
    context.update(
        {
            "nav": "supervision",
            "poll_seconds": POLL_SECONDS,
            "open_count": esc_selectors.escalation_open_count_for(user=request.user),
            # Agency heads who are not supervisors see their level-1 督办单 only.
            "heads_only": request.user.role not in SUPERVISING_ROLES,
            # 群众评价 不满意: items to look at, beside the escalations.
            "ratings": list(esc_selectors.rating_queue_for(user=request.user)[:50]),
        }
    )
    return render(request, "web/supervision/dashboard.html", context)


@never_cache
@login_required
@require_POST
def rating_reviewed(request: HttpRequest, pk: int) -> HttpResponse:
    """A supervisor has looked at a 不满意 rating of their queue."""
    from mediation.public.services import rating_mark_reviewed

    _require_queue(request.user)
    try:
        rating_mark_reviewed(rating_id=pk, actor=request.user, now=RequestClock().now)
    except NotFound:
        raise Http404 from None
    messages.success(request, _("已标记为已查看。"))
    return redirect("web:supervision")


@never_cache
@login_required
def queue_partial(request: HttpRequest) -> HttpResponse:
    """The queue table alone, for polling."""
    _require_queue(request.user)
    rc = RequestClock()
    return render(request, "web/supervision/_queue.html", _queue_context(request, rc))


def _escalation_to_act_on_or_404(user: User, pk: int) -> Escalation:
    """An escalation the user may act on; others are reported as not existing (404)."""
    try:
        escalation = esc_selectors.escalation_get_for(user, pk)
    except NotFound:
        raise Http404 from None
    if not esc_selectors.escalation_may_act(user, escalation):
        raise Http404
    return escalation


def _back(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next", "")
    # A path on this site only: redirect() would read "0" or "home" as a view name (found by
    # tests/integration/web/test_web_fuzz.py: NoReverseMatch, a 500).
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


ACTIONS = ("acknowledge", "reassign", "extend", "note", "resolve")


def _run_action(request: HttpRequest, escalation: Escalation, action: str, rc: RequestClock):
    post = request.POST
    common = {"escalation_id": escalation.pk, "actor": request.user, "now": rc.now}
    if action == "acknowledge":
        esc_services.escalation_acknowledge(**common, note=post.get("note", "").strip())
        return _("已签收督办：%(number)s")
    if action == "reassign":
        to_agency = parse_id(post["to_agency"]) if post.get("to_agency") else None
        to_user = parse_id(post["to_user"]) if post.get("to_user") else None
        if (post.get("to_agency") and to_agency is None) or (
            post.get("to_user") and to_user is None
        ):
            raise InvalidInput(_("请选择改派的机构或调解员。"))
        esc_services.escalation_reassign(
            **common,
            reason=post.get("reason", ""),
            to_agency_id=to_agency,
            to_user_id=to_user,
        )
        return _("已改派：%(number)s")
    if action == "extend":
        days = parse_int(post.get("extra_days", ""), lo=-(2**31), hi=2**31 - 1)
        if days is None:
            raise InvalidInput(_("延长天数须为整数。"))
        esc_services.escalation_approve_extension(
            **common, extra_days=days, reason=post.get("reason", "")
        )
        return _("已批准延期：%(number)s")
    if action == "note":
        esc_services.escalation_issue_note(**common, text=post.get("text", ""))
        return _("已下达督办意见：%(number)s")
    esc_services.escalation_resolve(**common, note=post.get("note", "").strip())
    return _("督办已办结：%(number)s")


@never_cache
@login_required
def escalation_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """GET: the escalation's page with its action forms. POST: run one action."""
    if action not in (*ACTIONS, "handle"):
        raise Http404
    escalation = _escalation_to_act_on_or_404(request.user, pk)
    rc = RequestClock()
    if request.method != "POST" or action == "handle":
        return render(
            request,
            "web/supervision/escalation.html",
            _escalation_context(escalation, rc, request.user),
        )
    back = _back(request, reverse("web:supervision"))
    try:
        message = _run_action(request, escalation, action, rc)
    except (InvalidInput, Conflict, PermissionDenied, NotFound) as exc:
        messages.error(request, exc.message)
        return redirect(back)
    messages.success(request, message % {"number": escalation.case.number})
    return redirect(back)


def _escalation_context(escalation: Escalation, rc: RequestClock, user: User) -> dict[str, Any]:
    case = escalation.case
    # 改派 within the supervisor's scope, to agencies whose staff can take the case's next step
    # (the service checks the same rule). Agency heads below supervisor level cannot reassign.
    may_reassign = user.role in SUPERVISING_ROLES
    agencies = (
        workflow.targets("reassign", case.as_proxy(), user).queryset()
        if may_reassign
        else Agency.objects.none()
    )
    members = (
        User.objects.filter(is_active=True, agency_id=case.holder_agency_id)
        .exclude(role=Role.ADMINISTRATOR)
        .order_by("role", "username")
    )
    return {
        "nav": "supervision",
        "e": escalation,
        "case": case,
        "notice": escalation.data or {},
        "days_overdue": max((rc.today - escalation.clock.due).days, 0),
        "ack_due": (escalation.ack_due_at - dt.timedelta(microseconds=1)).date(),
        "urgency": selectors.urgency_of(
            escalation.clock.due_at if escalation.clock.status == "running" else None,
            now=rc.now,
            calendar=rc.calendar,
        ),
        "agencies": agencies,
        "may_reassign": may_reassign,
        "members": members,
        "rule_label": rule_label,
        "live": escalation.status in (EscalationStatus.OPEN, EscalationStatus.ACKNOWLEDGED),
    }


@never_cache
@login_required
@require_POST
def bulk_acknowledge(request: HttpRequest) -> HttpResponse:
    """签收 every ticked escalation; each one in its own transaction (one failure stops none)."""
    _require_queue(request.user)
    rc = RequestClock()
    done, failed = 0, []
    for raw in request.POST.getlist("escalation"):
        pk = parse_id(raw)
        if pk is None:
            continue
        try:
            esc_services.escalation_acknowledge(escalation_id=pk, actor=request.user, now=rc.now)
            done += 1
        except (Conflict, PermissionDenied, NotFound, InvalidInput) as exc:
            failed.append(exc.message)
    if done:
        messages.success(request, _("已签收 %(n)d 条督办。") % {"n": done})
    if failed:
        messages.warning(
            request,
            _("%(n)d 条未能签收：%(why)s") % {"n": len(failed), "why": "；".join(set(failed))},
        )
    if not done and not failed:
        messages.info(request, _("请先勾选要签收的督办。"))
    return redirect(_back(request, reverse("web:supervision")))


@never_cache
@login_required
@documents.chinese_document
def supervision_notice(request: HttpRequest, pk: int) -> HttpResponse:
    """督办单: printable supervision notice built from the Escalation row, always in Chinese."""
    try:
        escalation = esc_selectors.escalation_get_for(request.user, pk)
    except NotFound:
        raise Http404 from None
    rc = RequestClock()
    context = _escalation_context(escalation, rc, request.user)
    context.update(documents.supervision_notice(escalation, today=rc.today))
    return render(request, "web/docs/supervision_notice.html", context)
