"""Case services: the only callers of transitions.

Each public service runs in one transaction: lock the case row, check the actor's
permission, run the transition, save, append the audit event, reconcile the clocks. A
refused action writes nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext as _
from django_fsm import ConcurrentTransition, can_proceed, has_transition_perm

from mediation.accounts.models import User
from mediation.agencies.models import Agency
from mediation.cases import notices, party_notices, workflow
from mediation.cases.audit import record_event
from mediation.cases.clocks import MANUALLY_PAUSABLE, ClockSpec, wanted_clocks
from mediation.cases.labels import transition_label as _transition_label
from mediation.cases.lookup import lookup_code_issue
from mediation.cases.models import (
    Case,
    CaseKind,
    CaseNumberSequence,
    CaseParty,
    CasePartyRole,
    Category,
    Channel,
    Custody,
    Dispute,
    EventKind,
    MediationTrack,
    Petition,
    Referral,
    ReferralKind,
    ReferralStatus,
    RiskLevel,
)
from mediation.cases.selectors import cases_visible_to
from mediation.cases.steps import StepContext
from mediation.core.clock import local_date
from mediation.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from mediation.core.limits import check_lengths
from mediation.core.text import has_visible_text
from mediation.deadlines import policy
from mediation.deadlines import services as clock_services
from mediation.deadlines.calendar_source import LazyCalendar, current_calendar
from mediation.deadlines.models import Clock, ClockStatus
from mediation.deadlines.reminders import plan_reminders_for_case
from mediation.parties.services import party_create

KIND_WORD = {CaseKind.DISPUTE: "人调", CaseKind.PETITION: "信"}


@dataclass(frozen=True)
class PartyInput:
    name: str
    role: str
    id_number: str | None = None
    phone: str = ""
    address: str = ""
    kind: str = "person"
    # The party agreed to get SMS about the case (the 查询码 and each step); recorded with them.
    sms_consent: bool = False


# Case numbers -------------------------------------------------------------------------------


def _allocate_number(*, agency: Agency, kind: str, year: int) -> tuple[int, str]:
    """Next number for (agency, year, kind), serialised by a row lock on its counter."""
    CaseNumberSequence.objects.bulk_create(
        [CaseNumberSequence(agency=agency, year=year, kind=kind, last_value=0)],
        ignore_conflicts=True,
    )
    seq = CaseNumberSequence.objects.select_for_update().get(agency=agency, year=year, kind=kind)
    seq.last_value = F("last_value") + 1
    seq.save(update_fields=["last_value"])
    seq.refresh_from_db(fields=["last_value"])
    value = seq.last_value
    number = f"({year}){agency.case_number_prefix}{KIND_WORD[kind]}字第{value:04d}号"
    return value, number


# Registration -------------------------------------------------------------------------------


def _check_intake(actor: User) -> Agency:
    if not actor.is_active or actor.agency_id is None or actor.role not in workflow.INTAKE:
        raise PermissionDenied(_("您没有登记案件的权限。"))
    return actor.agency


def _check_accusation_title(title: str, parties: Iterable[PartyInput]) -> None:
    """A 检举控告 matter's title is shown wherever the case appears, to the accused agency too
    (it sees the case, never the petitioner): it must not name the petitioner (Art 30 ¶3)."""
    for p in parties:
        if p.role == CasePartyRole.RESPONDENT:
            continue
        for text in (p.name, p.phone, p.id_number):
            text = (text or "").strip()
            if len(text) >= 2 and text in title:
                raise InvalidInput(
                    _("检举控告事项的标题不得包含信访人的姓名或联系方式（信访工作条例第三十条）。"),
                    details={"title": [_("标题中不能出现“%(text)s”。") % {"text": text}]},
                )


def _attach_parties(
    case: Case, parties: Iterable[PartyInput], *, today: dt.date, now: dt.datetime
) -> list[int]:
    ids = []
    for p in parties:
        if p.role not in CasePartyRole.values:
            raise InvalidInput(_("当事人身份无效：%(role)s") % {"role": p.role})
        party = party_create(
            name=p.name,
            id_number=p.id_number or None,
            phone=p.phone,
            address=p.address,
            kind=p.kind,
            today=today,
            sms_consent=p.sms_consent,
            consent_at=now,
        )
        CaseParty.objects.create(case=case, party=party, role=p.role)
        ids.append(party.pk)
    return ids


def _intake_agency(actor: User | None, intake_agency_id: int | None) -> Agency:
    """Where the case is registered: the staff member's agency (who must be allowed to
    register), or, for an application the parties made themselves (no actor: 网上申请), the
    intake agency it was addressed to, which must be active."""
    if actor is not None:
        return _check_intake(actor)
    agency = Agency.objects.filter(pk=intake_agency_id, is_active=True).first()
    if agency is None:
        raise InvalidInput(_("受理机构无效。"), details={"intake_agency": [_("受理机构无效。")]})
    return agency


def _create_case(
    *,
    kind: str,
    actor: User | None,
    title: str,
    description: str,
    channel_id: int,
    category_id: int | None,
    received_on: dt.date,
    parties: list[PartyInput],
    now: dt.datetime,
    initial_state: str,
    fields: dict[str, Any],
    intake_agency_id: int | None = None,
) -> Case:
    agency = _intake_agency(actor, intake_agency_id)
    today = local_date(now)
    title = (title or "").strip()
    if not has_visible_text(title):
        raise InvalidInput(_("请填写案件标题。"))
    if len(title) > 200:
        raise InvalidInput(_("案件标题不能超过 200 字。"))
    if received_on.year < 1990:
        raise InvalidInput(_("收到日期无效。"))
    if received_on > today:
        raise InvalidInput(_("收到日期不能晚于今天。"))
    if not parties:
        raise InvalidInput(_("请至少填写一名当事人。"))
    channel = Channel.objects.filter(pk=channel_id, is_active=True).first()
    if channel is None:
        raise InvalidInput(_("来源渠道无效。"))
    if (
        category_id is not None
        and not Category.objects.filter(pk=category_id, applies_to__in=[kind, "both"]).exists()
    ):
        raise InvalidInput(_("类型无效。"))
    if fields.get("involves_accusation"):
        _check_accusation_title(title, parties)
    repeat_of_id = fields.get("repeat_of_id")
    if (
        repeat_of_id is not None
        and not Case.objects.filter(pk=repeat_of_id, kind=CaseKind.PETITION).exists()
    ):
        raise InvalidInput(_("所指的原信访事项不存在。"))
    cls = Dispute if kind == CaseKind.DISPUTE else Petition
    with transaction.atomic():
        seq, number = _allocate_number(agency=agency, kind=kind, year=today.year)
        case = cls(
            kind=kind,
            number=number,
            registering_agency=agency,
            year=today.year,
            sequence=seq,
            holder_agency=agency,
            assignee=actor,
            state_entered_at=now,
            title=title,
            description=description or "",
            category_id=category_id,
            channel=channel,
            received_on=received_on,
            registered_at=now,
            state=initial_state,
            **fields,
        )
        case.save()
        Custody.objects.create(case=case, agency=agency, started_at=now)
        party_ids = _attach_parties(case, parties, today=today, now=now)
        clocks = _reconcile_clocks(case, now=now)
        record_event(
            case=case,
            actor=actor,
            transition=EventKind.REGISTER,
            from_state="",
            to_state=case.state,
            now=now,
            data={"parties": party_ids, "clocks": clocks, "number": number},
        )
        # 查询码: every case gets one at registration, whatever the channel; the parties
        # who agreed to SMS get it by SMS (the plain code is only on `case.lookup_code`).
        case.lookup_code = lookup_code_issue(case=case, now=now)
        party_notices.after_registration(case=case, now=now)
    return case


def dispute_register(
    *,
    actor: User | None,
    title: str,
    channel_id: int,
    received_on: dt.date,
    parties: list[PartyInput],
    now: dt.datetime,
    description: str = "",
    category_id: int | None = None,
    mediation_track: str = MediationTrack.PEOPLE,
    risk_level: str = RiskLevel.LOW,
    intake_agency_id: int | None = None,
) -> Case:
    """登记 a dispute; its triage clock starts (DOMAIN.md §6.1).

    `actor` is the staff member registering it, or None for an application the parties made
    online (`mediation.public.services.application_submit`): it is then registered at
    `intake_agency_id` (the township 综治中心 or the configured intake agency), with the same
    checks, the same clocks and the same triage after it. Either way the case gets its 查询码
    (`case.lookup_code`, shown once)."""
    if mediation_track not in MediationTrack.values:
        raise InvalidInput(_("调解类型无效。"))
    if risk_level not in RiskLevel.values:
        raise InvalidInput(_("风险等级无效。"))
    return _create_case(
        kind=CaseKind.DISPUTE,
        actor=actor,
        title=title,
        description=description,
        channel_id=channel_id,
        category_id=category_id,
        received_on=received_on,
        parties=parties,
        now=now,
        initial_state="registered",
        fields={"mediation_track": mediation_track, "risk_level": risk_level},
        intake_agency_id=intake_agency_id,
    )


def petition_receive(
    *,
    actor: User,
    title: str,
    channel_id: int,
    received_on: dt.date,
    parties: list[PartyInput],
    now: dt.datetime,
    description: str = "",
    category_id: int | None = None,
    petition_type: str = "",
    involves_accusation: bool = False,
    collective: bool = False,
    headcount: int = 1,
    repeat_of_id: int | None = None,
    accused_agency_id: int | None = None,
) -> Case:
    """收到 a petition (信访工作条例 Arts 17–21); registering it is the next transition."""
    if petition_type and petition_type not in ("suggestion", "accusation", "complaint"):
        raise InvalidInput(_("信访类型无效。"))
    if headcount < 1:
        raise InvalidInput(_("人数至少为 1。"))
    if accused_agency_id is not None and not Agency.objects.filter(pk=accused_agency_id).exists():
        raise InvalidInput(_("被检举控告机构无效。"))
    if accused_agency_id is not None and not (involves_accusation or petition_type == "accusation"):
        raise InvalidInput(
            _("只有检举控告事项需要填写被检举控告机构。"),
            details={"accused_agency": [_("只有检举控告事项需要填写被检举控告机构。")]},
        )
    representatives = [p for p in parties if p.role == CasePartyRole.REPRESENTATIVE]
    if len(representatives) > 5:
        raise InvalidInput(_("集体访代表人不得超过 5 人（信访工作条例第二十条）。"))
    return _create_case(
        kind=CaseKind.PETITION,
        actor=actor,
        title=title,
        description=description,
        channel_id=channel_id,
        category_id=category_id,
        received_on=received_on,
        parties=parties,
        now=now,
        initial_state="received",
        fields={
            "petition_type": petition_type,
            "involves_accusation": involves_accusation or petition_type == "accusation",
            "collective": collective or headcount >= 5,
            "headcount": headcount,
            "repeat_of_id": repeat_of_id,
            "accused_agency_id": accused_agency_id,
        },
    )


# Transitions --------------------------------------------------------------------------------


def _lock(case_id: int) -> Case:
    """The case row, locked (FOR UPDATE), as its kind's proxy.

    No joins in the locking query: when a concurrent transaction changed the row (say its
    holder) and committed, PostgreSQL re-checks the waiting query's conditions on the new row
    version with the joined rows it had read, so a join on the old holder would drop the row
    and the loser would see "not found" instead of the new state."""
    case = Case.objects.select_for_update().filter(pk=case_id).first()
    if case is None:
        raise NotFound(_("案件不存在。"))
    return case.as_proxy()


def _lock_visible(case_id: int, actor: User) -> Case:
    """The case row locked (FOR UPDATE of the case only) if `actor` may see it, with the
    agencies and codes a transition and its answer read, in one statement; NotFound if it does
    not exist or is out of the actor's sight (`cases_visible_to`, the one visibility rule).

    When a concurrent transaction changed the row while this one waited for the lock,
    PostgreSQL re-checks the conditions on the new row version with the joined rows it had
    read (see `_lock`) and may drop the row. So a miss is asked again the slow way: lock the
    plain row, then test visibility on what is now committed."""
    rows = list(
        cases_visible_to(actor, Case.objects.filter(pk=case_id))
        .select_related("holder_agency", "registering_agency", "category", "channel")
        .select_for_update(of=("self",))
        .order_by()  # one row by its key: no ORDER BY, no LIMIT to compile
    )
    if rows:
        return rows[0].as_proxy()
    case = _lock(case_id)
    if not cases_visible_to(actor, Case.objects.filter(pk=case_id)).exists():
        raise NotFound(_("案件不存在或您无权查看。"))
    _attach_agencies(case, actor)
    return case


def _row_values(case: Case) -> dict[str, Any]:
    """The case's column values (all plain values: no JSON or array columns to mutate)."""
    return {f.attname: getattr(case, f.attname) for f in Case._meta.concrete_fields}


def _changed(case: Case, before: dict[str, Any]) -> list[str]:
    return [name for name, value in _row_values(case).items() if value != before[name]]


def _attach_agencies(case: Case, actor: User) -> None:
    """The holder, the registering agency and the actor's agency, in one query (the lock
    itself joins nothing, see `_lock`)."""
    wanted = {case.holder_agency_id, case.registering_agency_id, actor.agency_id} - {None}
    known = Agency.objects.in_bulk(wanted)
    case.holder_agency = known[case.holder_agency_id]
    case.registering_agency = known[case.registering_agency_id]
    if actor.agency_id in known:
        actor.agency = known[actor.agency_id]


def transition_names(kind: str) -> list[str]:
    return workflow.transition_names(kind)


def transition_label(case: Case, name: str) -> str:
    return _transition_label(case.kind, name)


def case_transition(
    *,
    case_id: int,
    transition: str,
    actor: User,
    now: dt.datetime,
    data: dict[str, Any] | Callable[[workflow.Action], dict[str, Any]] | None = None,
    expected_version: int | None = None,
) -> Case:
    """Run one transition of a case's machine on behalf of `actor`.

    In one transaction: lock the case row (if the actor may see it), check the version, the
    state and the workflow table (who acts), validate the step form (including every agency
    it names), run the transition, write the step's rows, move custody, reconcile the clocks
    (and so the reminders), save the case with its `next_due_at`, append the event and the
    hand-off notices.

    `data` is the step's input, or a function of the step's action that returns it (the API
    checks the JSON types against the step's form, which depends on the case's kind, known
    once the case is read). Returns the case with its live clocks in `live_clocks`.

    Raises NotFound (no such case, or out of the actor's sight), InvalidInput (unknown
    transition or bad step data), Conflict (not allowed from the current state, a stale
    `expected_version`, or lost to a concurrent change) or PermissionDenied; in each case
    nothing is written.
    """
    try:
        with transaction.atomic():
            case = _lock_visible(case_id, actor)
            as_read = _row_values(case)
            act = workflow.action(case.kind, transition)
            if act is None or not act.transition:
                raise InvalidInput(
                    _("未知的操作：%(name)s") % {"name": transition}, code="unknown_action"
                )
            if callable(data):
                data = data(act)
            if expected_version is not None and case.version != expected_version:
                raise Conflict(_("案件已被他人更新，请刷新后重试。"), code="stale")
            method = getattr(case, transition)
            label = transition_label(case, transition)
            if not can_proceed(method):
                raise Conflict(
                    _("案件当前状态为「%(state)s」，不能执行「%(action)s」。")
                    % {"state": case.state_label, "action": label},
                    code="transition_not_allowed",
                )
            refused = workflow.refusal(actor, case, transition)
            if refused is not None or not has_transition_perm(method, actor):
                raise PermissionDenied(
                    _("您无权对本案执行「%(action)s」。") % {"action": label} + (refused or "")
                )
            today = local_date(now)
            form = act.step.form_class(data=data or {}, case=case, actor=actor, today=today)
            if not form.is_valid():
                raise InvalidInput(
                    _("提交的信息有误。"),
                    details={k: [str(m) for m in v] for k, v in form.errors.items()},
                )
            referral = (
                case.referrals.filter(status=ReferralStatus.PENDING).first()
                if act.actor is workflow.Actor.RECEIVER
                else None
            )
            from_state, from_holder = case.state, case.holder_agency_id
            ctx = StepContext(
                case=case,
                actor=actor,
                now=now,
                today=today,
                cleaned=form.cleaned_data,
                referral=referral,
                from_holder=from_holder,
            )
            method(**act.step.kwargs(ctx))
            case.version += 1
            case.state_entered_at = now
            if case.is_terminal and case.closed_at is None:
                case.closed_at = now
            step_data = act.step.record(ctx)
            if case.holder_agency_id != from_holder:
                case.holder_agency = Agency.objects.get(pk=case.holder_agency_id)
                _move_custody(case, now=now)
            if ctx.opened is not None:
                # The referral just opened is the pending one (the clocks ask for it).
                case.known_pending_referral = (ctx.opened.kind, ctx.opened.to_agency_id)
            clocks = _reconcile_clocks(case, now=now, save_next_due=False)
            # One UPDATE of the row, of the columns that changed: the new state, what the step
            # set, the next due time (ConcurrentTransitionMixin: only if the state is still the
            # one we read).
            case.save(update_fields=_changed(case, as_read))
            record_event(
                case=case,
                actor=actor,
                transition=transition,
                from_state=from_state,
                to_state=case.state,
                now=now,
                note=form.cleaned_data.get("note", ""),
                data={**step_data, "clocks": clocks},
            )
            notices.notify_after_step(case=case, act=act, actor=actor, now=now, referral=ctx.opened)
            party_notices.after_step(case=case, name=transition, now=now, data=step_data)
            return case
    except policy.PolicyError as exc:
        # A date the deadline arithmetic cannot take (the forms bound dates; this is the net).
        raise InvalidInput(str(exc)) from exc
    except ConcurrentTransition as exc:
        raise Conflict(_("案件已被他人同时处理，请刷新后重试。"), code="concurrent") from exc
    except IntegrityError as exc:
        # A unique key (event per version, one pending referral...) lost a race.
        raise Conflict(_("案件已被他人同时处理，请刷新后重试。"), code="concurrent") from exc


def _move_custody(case: Case, *, now: dt.datetime) -> None:
    Custody.objects.filter(case=case, ended_at__isnull=True).update(ended_at=now)
    Custody.objects.create(case=case, agency_id=case.holder_agency_id, started_at=now)


def _reconcile_clocks(
    case: Case, *, now: dt.datetime, save_next_due: bool = True
) -> dict[str, list[str]]:
    """Make the live clocks match `wanted_clocks(case)`; returns what changed, for the event.

    Sets `case.live_clocks` (the live clocks afterwards) and `case.next_due_at`, which it
    also writes unless `save_next_due` is false (the caller saves the case row anyway)."""
    calendar = LazyCalendar()
    today = local_date(now)
    wanted: dict[str, ClockSpec] = {spec.rule_code: spec for spec in wanted_clocks(case)}
    live = {c.rule_code: c for c in clock_services.clocks_live_for(case_id=case.pk)}
    changes: dict[str, list[str]] = {"started": [], "stopped": [], "recomputed": []}
    kept: list[Clock] = []  # the live clocks after reconciling
    touched: set[int] = set()  # clocks whose planned reminders may have gone stale
    fresh: set[int] = set()  # clocks started here (no reminders yet)
    for code, clock in live.items():
        spec = wanted.get(code)
        if spec is None or (spec.start_date, spec.agency_id) != (clock.start_date, clock.agency_id):
            clock_services.clock_stop(clock=clock, now=now, reason=f"left:{case.state}")
            changes["stopped"].append(code)
            touched.add(clock.pk)
    for code, spec in wanted.items():
        clock = live.get(code)
        if clock is None or clock.status == ClockStatus.STOPPED:
            clock = clock_services.clock_start(
                case_id=case.pk,
                rule_code=code,
                start_date=spec.start_date,
                entered_state=case.state,
                extra_days=spec.extra_days,
                now=now,
                calendar=calendar,
                agency_id=spec.agency_id,
            )
            changes["started"].append(code)
            fresh.add(clock.pk)
            if spec.pause_mode == "pause":
                clock_services.clock_pause(
                    clock=clock, on=today, reason=case.state, now=now, calendar=calendar
                )
            kept.append(clock)
            continue
        kept.append(clock)
        if spec.pause_mode == "pause" and clock.status == ClockStatus.RUNNING:
            clock_services.clock_pause(
                clock=clock, on=today, reason=case.state, now=now, calendar=calendar
            )
            changes["recomputed"].append(code)
            touched.add(clock.pk)
        elif spec.pause_mode == "run" and clock.status == ClockStatus.PAUSED:
            clock_services.clock_resume(clock=clock, on=today, now=now, calendar=calendar)
            changes["recomputed"].append(code)
            touched.add(clock.pk)
        # Only ever add days here: a supervisor's approved extension (escalation services)
        # lives on the clock and must survive transitions that keep the clock running.
        if spec.extra_days > clock.extra_days:
            clock_services.clock_recompute(
                clock=clock, now=now, calendar=calendar, extra_days=spec.extra_days
            )
            changes["recomputed"].append(code)
            touched.add(clock.pk)
    plan_reminders_for_case(
        case.pk,
        now,
        calendar=calendar,
        live_clocks=kept,
        changed_clock_ids=touched,
        new_clock_ids=fresh,
    )
    case.live_clocks = [c for c in kept if c.status != ClockStatus.STOPPED]
    case_sync_next_due(case, live_clocks=case.live_clocks, save=save_next_due)
    return {k: v for k, v in changes.items() if v}


def case_sync_next_due(
    case: Case, *, live_clocks: Iterable[Clock] | None = None, save: bool = True
) -> None:
    """Store the earliest running duty clock's `due_at` on the case (`Case.next_due_at`, the
    case lists' urgency order). Called, in the same transaction, by every service that starts,
    stops, pauses, resumes or recomputes a clock; `live_clocks` are the case's live clocks when
    the caller has them in hand (no query then). One UPDATE, only when the value changes, and
    none with `save=False` (the caller saves the case row itself)."""
    if live_clocks is None:
        live_clocks = clock_services.clocks_live_for(case_id=case.pk)
    value = min(
        (
            c.due_at
            for c in live_clocks
            if c.status == ClockStatus.RUNNING and c.kind == policy.ClockKind.DUTY
        ),
        default=None,
    )
    if value != case.next_due_at:
        if save:
            Case.objects.filter(pk=case.pk).update(next_due_at=value)
        case.next_due_at = value


# Clock pauses (复核听证, 信访工作条例 Art 36 ¶2) ------------------------------------------------


def _clock_action(
    *, case_id: int, actor: User, now: dt.datetime, rule_code: str, action: str, **kw: Any
) -> Clock:
    with transaction.atomic():
        case = _lock(case_id)
        refused = workflow.refusal(actor, case, f"{action}_clock")
        if refused is not None:
            raise PermissionDenied(_("您无权暂停或恢复本案期限。") + refused)
        if rule_code not in MANUALLY_PAUSABLE:
            raise InvalidInput(_("该期限不能手动暂停：%(rule)s") % {"rule": rule_code})
        clock = Clock.objects.filter(
            case=case, rule_code=rule_code, status__in=[ClockStatus.RUNNING, ClockStatus.PAUSED]
        ).first()
        if clock is None:
            raise Conflict(_("本案当前没有该期限。"), code="transition_not_allowed")
        calendar = current_calendar()
        today = local_date(now)
        if action == "pause":
            if clock.status == ClockStatus.PAUSED:
                raise Conflict(_("期限已处于暂停状态。"), code="transition_not_allowed")
            on = kw.get("on") or today
            if on > today or on <= clock.start_date:
                raise InvalidInput(_("暂停开始日期须在起算日之后且不晚于今天。"))
            clock_services.clock_pause(
                clock=clock, on=on, reason=kw.get("reason") or "", now=now, calendar=calendar
            )
        else:
            if clock.status != ClockStatus.PAUSED:
                raise Conflict(_("期限未暂停。"), code="transition_not_allowed")
            on = kw.get("on") or today
            if on > today:
                raise InvalidInput(_("恢复日期不能晚于今天。"))
            opened = clock.pauses.filter(end_date__isnull=True).order_by("-start_date").first()
            if opened is not None and on < opened.start_date:
                raise InvalidInput(
                    _("恢复日期不能早于暂停开始日期 %(day)s。") % {"day": opened.start_date}
                )
            clock_services.clock_resume(clock=clock, on=on, now=now, calendar=calendar)
        plan_reminders_for_case(case.pk, now, calendar=calendar)
        case_sync_next_due(case)
        case.version += 1
        case.save(update_fields=["version", "updated_at"])
        record_event(
            case=case,
            actor=actor,
            transition=EventKind(f"{action}_clock"),
            from_state=case.state,
            to_state=case.state,
            now=now,
            note=kw.get("reason") or "",
            data={"rule": rule_code, "on": on.isoformat(), "due": clock.due.isoformat()},
        )
        return clock


def case_pause_clock(
    *,
    case_id: int,
    actor: User,
    now: dt.datetime,
    rule_code: str,
    reason: str,
    on: dt.date | None = None,
) -> Clock:
    """Pause a clock for a hearing (听证); the paused days do not count."""
    check_lengths(reason=reason)
    if not (reason or "").strip():
        raise InvalidInput(_("请填写暂停理由。"))
    return _clock_action(
        case_id=case_id,
        actor=actor,
        now=now,
        rule_code=rule_code,
        action="pause",
        reason=reason,
        on=on,
    )


def case_resume_clock(
    *, case_id: int, actor: User, now: dt.datetime, rule_code: str, on: dt.date | None = None
) -> Clock:
    return _clock_action(
        case_id=case_id, actor=actor, now=now, rule_code=rule_code, action="resume", on=on
    )


# 访调对接: a petition in handling sends the matter to a mediation committee --------------------


def petition_refer_to_mediation(
    *, petition_id: int, actor: User, now: dt.datetime, data: dict[str, Any]
) -> Case:
    """Spawn a dispute linked to the petition and refer it to a people's mediation committee
    (访调对接, 信访工作条例 Art 33), at most once per petition.

    `data` is the step form's (`ReferToMediationForm`): the committee (of the actor's
    jurisdiction, with mediators, never the accused agency of an accusation), the dispute's own
    title and category, a note. The dispute inherits the petition's parties (信访人 → 申请人)
    and its 检举控告 protection. The petition's own 60-day clock keeps running (DOMAIN.md §1.6:
    not confirmed otherwise). Raises InvalidInput, Conflict or PermissionDenied, writing nothing.
    """
    from mediation.cases.steps import ReferToMediationForm

    with transaction.atomic():
        petition = _lock(petition_id)
        if petition.kind != CaseKind.PETITION:
            raise InvalidInput(_("只有信访事项可以转人民调解。"))
        if petition.state not in ("handling", "extended"):
            raise Conflict(_("信访事项须在办理中才能转人民调解。"), code="transition_not_allowed")
        earlier = Case.objects.filter(spawned_from=petition).values_list("number", flat=True)
        if earlier:
            raise Conflict(
                _("本信访事项已转人民调解（纠纷案号：%(number)s），不能重复转出。")
                % {"number": earlier[0]},
                code="transition_not_allowed",
            )
        refused = workflow.refusal(actor, petition, "refer_to_mediation")
        if refused is not None:
            raise PermissionDenied(_("您无权对本案转人民调解。") + refused)
        today = local_date(now)
        form = ReferToMediationForm(data=data, case=petition, actor=actor, today=today)
        if not form.is_valid():
            raise InvalidInput(
                _("提交的信息有误。"),
                details={k: [str(m) for m in v] for k, v in form.errors.items()},
            )
        target: Agency = form.cleaned_data["to_agency"]
        title: str = form.cleaned_data["title"]
        note: str = form.cleaned_data.get("note", "")
        parties = list(petition.case_parties.select_related("party"))
        if petition.involves_accusation:
            _check_accusation_title(
                title,
                [
                    PartyInput(name=cp.party.name, role=cp.role, phone=cp.party.phone)
                    for cp in parties
                ],
            )
        seq, number = _allocate_number(
            agency=petition.holder_agency, kind=CaseKind.DISPUTE, year=today.year
        )
        dispute = Dispute(
            kind=CaseKind.DISPUTE,
            number=number,
            registering_agency=petition.holder_agency,
            year=today.year,
            sequence=seq,
            holder_agency=petition.holder_agency,
            assignee=actor,
            state_entered_at=now,
            title=title,
            description=petition.description,
            category=form.cleaned_data["category"],
            channel=Channel.objects.get(code="petition_referral"),
            received_on=today,
            registered_at=now,
            spawned_from=petition,
            # 检举控告: the spawned dispute is as protected as the petition (Art 30 ¶3).
            involves_accusation=petition.involves_accusation,
            accused_agency_id=petition.accused_agency_id,
            state="assigned",
        )
        dispute.save()
        Custody.objects.create(case=dispute, agency=petition.holder_agency, started_at=now)
        for cp in parties:
            role = CasePartyRole.APPLICANT if cp.role == CasePartyRole.PETITIONER else cp.role
            CaseParty.objects.create(case=dispute, party_id=cp.party_id, role=role)
        referral = Referral.objects.create(
            case=dispute,
            kind=ReferralKind.PETITION_MEDIATION,
            from_agency=petition.holder_agency,
            to_agency=target,
            sent_by=actor,
            sent_at=now,
            note=note,
        )
        clocks = _reconcile_clocks(dispute, now=now)
        record_event(
            case=dispute,
            actor=actor,
            transition=EventKind.REGISTER,
            from_state="",
            to_state="assigned",
            now=now,
            data={
                "spawned_from": petition.pk,
                "to_agency": target.pk,
                "referral": referral.pk,
                "category": dispute.category_id,
                "parties": [cp.party_id for cp in parties],
                "clocks": clocks,
            },
        )
        dispute.lookup_code = lookup_code_issue(case=dispute, now=now)
        party_notices.after_registration(case=dispute, now=now)
        petition.version += 1
        petition.save(update_fields=["version", "updated_at"])
        record_event(
            case=petition,
            actor=actor,
            transition=EventKind.REFER_TO_MEDIATION,
            from_state=petition.state,
            to_state=petition.state,
            now=now,
            note=note,
            data={"dispute": dispute.pk, "to_agency": target.pk},
        )
        act = workflow.action(CaseKind.PETITION, "refer_to_mediation")
        assert act is not None
        notices.notify_after_step(case=dispute, act=act, actor=actor, now=now, referral=referral)
        return dispute


# The case file (卷宗): service actions of the workflow table that keep the state -------------


def case_service_action(
    *,
    case_id: int,
    name: str,
    actor: User,
    now: dt.datetime,
    data: dict[str, Any] | None = None,
    files: Any = None,
) -> Case:
    """Take a service action of the workflow table (`Action.transition` False, `states` set:
    upload or withdraw an attachment, record a mediation session, a follow-up visit, an oral
    agreement) on behalf of `actor`.

    In one transaction: lock the case row, check the action is offered in the case's state and
    that the actor may take it (the workflow table), validate its form (an upload: real
    content type and size), write its rows (and the file, under a system-chosen name), bump
    the version and append the event (an `EventKind` of the same name). Raises InvalidInput,
    Conflict or PermissionDenied, writing nothing (a file already stored is removed again).
    """
    from mediation.casefiles import content

    stored: list[str] = []
    try:
        with transaction.atomic():
            case = _lock(case_id)
            act = workflow.action(case.kind, name)
            if act is None or act.transition or act.states is None:
                raise InvalidInput(_("未知的操作：%(name)s") % {"name": name})
            label = _transition_label(case.kind, name)
            if case.state not in act.states:
                raise Conflict(
                    _("案件当前状态为「%(state)s」，不能执行「%(action)s」。")
                    % {"state": case.state_label, "action": label},
                    code="transition_not_allowed",
                )
            refused = workflow.refusal(actor, case, name)
            if refused is not None:
                raise PermissionDenied(
                    _("您无权对本案执行「%(action)s」。") % {"action": label} + refused
                )
            today = local_date(now)
            form = act.step.form_class(
                data=data or {}, files=files, case=case, actor=actor, today=today
            )
            if not form.is_valid():
                raise InvalidInput(
                    _("提交的信息有误。"),
                    details={k: [str(m) for m in v] for k, v in form.errors.items()},
                )
            ctx = StepContext(
                case=case,
                actor=actor,
                now=now,
                today=today,
                cleaned=form.cleaned_data,
                from_holder=case.holder_agency_id,
                form=form,
                stored_files=stored,
            )
            step_data = act.step.record(ctx)
            case.version += 1
            case.save(update_fields=["version", "updated_at"])
            record_event(
                case=case,
                actor=actor,
                transition=EventKind(name),
                from_state=case.state,
                to_state=case.state,
                now=now,
                note=form.cleaned_data.get("note", ""),
                data=step_data,
            )
            if act.notify:
                notices.notify_after_step(case=case, act=act, actor=actor, now=now)
            if name == "record_session":
                party_notices.after_session(case=case, data=step_data, now=now)
            return case
    except BaseException:
        # The row that named the file was rolled back: remove the orphaned bytes.
        for name_ in stored:
            with contextlib.suppress(Exception):  # the failure being raised matters more
                content.storage().delete(name_)
        raise
