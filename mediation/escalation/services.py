"""Supervisor actions on an escalation (超期督办): 签收, 改派, 批准延期, 督办意见, 办结.

Each action runs in one transaction: lock the case row (then the escalation), check the
actor, change the rows, bump `case.version` and append the CaseEvent (audit trail), and
re-plan the case's reminders when its clock or holder changed. A refused action writes
nothing. Lock order (case, then escalation/clock) is the one the case services use.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from mediation.accounts.models import User
from mediation.agencies.models import Agency
from mediation.cases import workflow
from mediation.cases.audit import record_event
from mediation.cases.clocks import MEDIATION_RULES, MEDIATION_STATES
from mediation.cases.models import Case, Custody, EventKind, Extension
from mediation.cases.notices import case_notice_specs
from mediation.cases.services import case_sync_next_due
from mediation.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from mediation.core.limits import TEXT_LIMITS, check_lengths
from mediation.deadlines import services as clock_services
from mediation.deadlines.calendar_source import current_calendar
from mediation.deadlines.models import Clock, ClockStatus
from mediation.deadlines.reminders import plan_reminders_for_case
from mediation.escalation.models import Escalation, EscalationStatus
from mediation.escalation.selectors import escalation_may_act
from mediation.notifications.models import NotificationKind
from mediation.notifications.services import notifications_create_bulk

MAX_EXTENSION_DAYS = 365
_LIVE = (EscalationStatus.OPEN, EscalationStatus.ACKNOWLEDGED)


def _lock(escalation_id: int, actor: User) -> tuple[Case, Escalation]:
    case_id = Escalation.objects.filter(pk=escalation_id).values_list("case_id", flat=True).first()
    if case_id is None:
        raise NotFound(_("督办记录不存在。"))
    # No joins in the locking queries (see `cases.services._lock`).
    case = Case.objects.select_for_update().get(pk=case_id).as_proxy()
    escalation = Escalation.objects.select_for_update().get(pk=escalation_id)
    escalation.case = case
    if not escalation_may_act(actor, escalation):
        raise PermissionDenied(_("您无权处理该督办。"))
    return case, escalation


def _audit(
    *,
    case: Case,
    escalation: Escalation,
    actor: User,
    now: dt.datetime,
    action: str,
    note: str = "",
    data: dict[str, Any] | None = None,
    fields: tuple[str, ...] = (),
) -> int:
    case.version += 1
    case.save(update_fields=["version", "updated_at", *fields])
    event = record_event(
        case=case,
        actor=actor,
        transition=EventKind(f"escalation_{action}"),
        from_state=case.state,
        to_state=case.state,
        now=now,
        note=note,
        data={
            "escalation_id": escalation.pk,
            "level": escalation.level,
            "clock_id": escalation.clock_id,
            **(data or {}),
        },
    )
    return event.pk


def _note(escalation: Escalation, actor: User, now: dt.datetime, action: str, **extra: Any):
    notes = list(escalation.data.get("notes") or [])
    notes.append(
        {"action": action, "by": actor.pk, "by_name": str(actor), "at": now.isoformat(), **extra}
    )
    escalation.data = {**escalation.data, "notes": notes}


def _acknowledge(escalation: Escalation, actor: User, now: dt.datetime) -> None:
    if escalation.status == EscalationStatus.OPEN:
        escalation.status = EscalationStatus.ACKNOWLEDGED
        escalation.acknowledged_at = now
        escalation.acknowledged_by = actor


def _require_live(escalation: Escalation) -> None:
    if escalation.status == EscalationStatus.RESOLVED:
        raise Conflict(_("该督办已办结。"), code="transition_not_allowed")
    if escalation.status == EscalationStatus.SUPERSEDED:
        raise Conflict(_("该督办已因期限调整失效。"), code="transition_not_allowed")


def _atomic_action(fn):
    def wrapper(*args: Any, **kwargs: Any) -> Escalation:
        # The API's limits, for every caller (the web pages read their forms directly).
        check_lengths(**{k: v for k, v in kwargs.items() if k in TEXT_LIMITS})
        try:
            with transaction.atomic():
                return fn(*args, **kwargs)
        except IntegrityError as exc:
            raise Conflict(_("案件已被他人同时处理，请刷新后重试。"), code="concurrent") from exc

    wrapper.__doc__ = fn.__doc__
    wrapper.__name__ = fn.__name__
    return wrapper


@_atomic_action
def escalation_acknowledge(
    *, escalation_id: int, actor: User, now: dt.datetime, note: str = ""
) -> Escalation:
    """签收: the supervisor takes it on; the ladder stops climbing for this clock."""
    case, escalation = _lock(escalation_id, actor)
    if escalation.status != EscalationStatus.OPEN:
        raise Conflict(_("该督办已签收或已办结。"), code="transition_not_allowed")
    _acknowledge(escalation, actor, now)
    _note(escalation, actor, now, "acknowledge", note=note)
    escalation.save()
    _audit(case=case, escalation=escalation, actor=actor, now=now, action="acknowledge", note=note)
    return escalation


@_atomic_action
def escalation_reassign(
    *,
    escalation_id: int,
    actor: User,
    now: dt.datetime,
    reason: str,
    to_agency_id: int | None = None,
    to_user_id: int | None = None,
) -> Escalation:
    """改派: hand the case to another agency and/or mediator. Acknowledges the escalation.

    With only an agency, the case has no assignee until that agency assigns one (its head
    gets the reminders meanwhile). A mediator must belong to the (new) holder agency.
    """
    if not (reason or "").strip():
        raise InvalidInput(_("请填写改派理由。"))
    if to_agency_id is None and to_user_id is None:
        raise InvalidInput(_("请选择改派的机构或调解员。"))
    case, escalation = _lock(escalation_id, actor)
    _require_live(escalation)
    old_agency, old_assignee = case.holder_agency_id, case.assignee_id
    if to_agency_id is not None and to_agency_id != case.holder_agency_id:
        # Within the supervisor's scope, to an agency whose staff can take the case's next
        # step (never the accused agency of an accusation): no 改派 dead-ends.
        target = Agency.objects.filter(pk=to_agency_id).first()
        if target is None:
            raise InvalidInput(_("接收机构无效。"), details={"to_agency": [_("所选机构不存在。")]})
        problem = workflow.targets("reassign", case, actor).problem(target)
        if problem:
            raise InvalidInput(problem, details={"to_agency": [problem]})
        case.holder_agency_id = to_agency_id
        case.assignee = None
        Custody.objects.filter(case=case, ended_at__isnull=True).update(ended_at=now)
        Custody.objects.create(case=case, agency_id=to_agency_id, started_at=now)
    if to_user_id is not None:
        user = User.objects.filter(pk=to_user_id, is_active=True).first()
        if user is None or user.agency_id != case.holder_agency_id:
            raise InvalidInput(_("调解员须为承办机构的在岗人员。"))
        case.assignee = user
    _acknowledge(escalation, actor, now)
    _note(
        escalation,
        actor,
        now,
        "reassign",
        reason=reason,
        to_agency_id=case.holder_agency_id,
        to_user_id=case.assignee_id,
    )
    escalation.save()
    event_id = _audit(
        case=case,
        escalation=escalation,
        actor=actor,
        now=now,
        action="reassign",
        note=reason,
        data={
            "from_agency": old_agency,
            "to_agency": case.holder_agency_id,
            "from_assignee": old_assignee,
            "to_assignee": case.assignee_id,
        },
        fields=("holder_agency", "assignee"),
    )
    plan_reminders_for_case(case.pk, now)
    head = Agency.objects.filter(pk=case.holder_agency_id).values_list("head_id", flat=True)[0]
    _notify(
        case=case,
        recipients=[case.assignee_id, head],
        kind=str(NotificationKind.REASSIGNED),
        key=f"reassign:{event_id}",
        subject=f"【改派】{case.number} 已改派给贵单位",
        body=f"案件：{case.title}\n改派理由：{reason}\n改派人：{actor}",
        now=now,
    )
    return escalation


@_atomic_action
def escalation_approve_extension(
    *, escalation_id: int, actor: User, now: dt.datetime, extra_days: int, reason: str
) -> Escalation:
    """批准延期: add `extra_days` to the escalated clock and recompute it; reminders re-planned.

    For the mediation period the days go to `case.extension_days` (what the case services'
    clock reconciliation reads); for other clocks to `Clock.extra_days`. If the new due time
    is in the future, the clock's escalations are resolved ("extension_approved"); otherwise
    this one is acknowledged.
    """
    if not isinstance(extra_days, int) or not 1 <= extra_days <= MAX_EXTENSION_DAYS:
        raise InvalidInput(
            _("延长天数须为 1 至 %(max)s 之间的整数。") % {"max": MAX_EXTENSION_DAYS}
        )
    if not (reason or "").strip():
        raise InvalidInput(_("请填写延期理由。"))
    case, escalation = _lock(escalation_id, actor)
    _require_live(escalation)
    clock = Clock.objects.select_for_update().get(pk=escalation.clock_id)
    if clock.status == ClockStatus.STOPPED:
        raise Conflict(_("该期限已停止，不能延期。"), code="transition_not_allowed")
    old_due = clock.due
    fields: tuple[str, ...] = ()
    if clock.rule_code in MEDIATION_RULES.values() and case.state in MEDIATION_STATES:
        case.extension_days += extra_days
        new_extra = case.extension_days
        fields = ("extension_days",)
    else:
        new_extra = clock.extra_days + extra_days
    clock_services.clock_recompute(
        clock=clock, now=now, calendar=current_calendar(), extra_days=new_extra
    )
    case_sync_next_due(case)
    Extension.objects.create(
        case=case,
        reason=reason,
        extra_days=extra_days,
        approved_by=actor,
        recorded_by=actor,
        recorded_at=now,
    )
    _note(escalation, actor, now, "extend", extra_days=extra_days, reason=reason)
    if clock.due_at > now:
        Escalation.objects.filter(clock=clock, status__in=_LIVE).exclude(pk=escalation.pk).update(
            status=EscalationStatus.RESOLVED,
            resolved_at=now,
            resolved_by=actor,
            resolution="extension_approved",
        )
        escalation.status = EscalationStatus.RESOLVED
        escalation.resolved_at = now
        escalation.resolved_by = actor
        escalation.resolution = "extension_approved"
    else:
        _acknowledge(escalation, actor, now)
    escalation.save()
    _audit(
        case=case,
        escalation=escalation,
        actor=actor,
        now=now,
        action="approve_extension",
        note=reason,
        data={
            "rule": clock.rule_code,
            "extra_days": extra_days,
            "old_due": old_due.isoformat(),
            "new_due": clock.due.isoformat(),
        },
        fields=fields,
    )
    plan_reminders_for_case(case.pk, now)
    return escalation


@_atomic_action
def escalation_issue_note(
    *, escalation_id: int, actor: User, now: dt.datetime, text: str
) -> Escalation:
    """督办意见: a supervision instruction to the holder (assignee and head are notified).

    Marks the case as supervised (督办, 信访工作条例 Art 40). Does not acknowledge.
    """
    text = (text or "").strip()
    if not text:
        raise InvalidInput(_("请填写督办意见。"))
    case, escalation = _lock(escalation_id, actor)
    _require_live(escalation)
    case.supervised = True
    _note(escalation, actor, now, "note", text=text)
    escalation.save()
    event_id = _audit(
        case=case,
        escalation=escalation,
        actor=actor,
        now=now,
        action="note",
        note=text,
        fields=("supervised",),
    )
    _notify(
        case=case,
        recipients=[case.assignee_id, case.holder_agency.head_id],
        kind=str(NotificationKind.SUPERVISION_NOTE),
        key=f"supnote:{event_id}",
        subject=f"【督办意见】{case.number} {case.title}",
        body=f"{text}\n督办人：{actor}",
        now=now,
    )
    return escalation


@_atomic_action
def escalation_resolve(
    *, escalation_id: int, actor: User, now: dt.datetime, note: str = ""
) -> Escalation:
    """办结: close this escalation and the lower levels of the same clock."""
    case, escalation = _lock(escalation_id, actor)
    _require_live(escalation)
    Escalation.objects.filter(
        clock_id=escalation.clock_id, level__lt=escalation.level, status__in=_LIVE
    ).update(
        status=EscalationStatus.RESOLVED,
        resolved_at=now,
        resolved_by=actor,
        resolution="resolved_by_supervisor",
    )
    escalation.status = EscalationStatus.RESOLVED
    escalation.resolved_at = now
    escalation.resolved_by = actor
    escalation.resolution = "resolved_by_supervisor"
    _note(escalation, actor, now, "resolve", note=note)
    escalation.save()
    _audit(case=case, escalation=escalation, actor=actor, now=now, action="resolve", note=note)
    return escalation


def _notify(
    *,
    case: Case,
    recipients: list[int | None],
    kind: str,
    key: str,
    subject: str,
    body: str,
    now: dt.datetime,
) -> None:
    specs = case_notice_specs(
        case=case,
        agency_id=case.holder_agency_id,
        users=recipients,
        kind=kind,
        subject=subject,
        body=body,
        key=key,
    )
    notifications_create_bulk(specs, now=now)
