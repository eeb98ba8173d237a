"""Reminder planning: which `Reminder` rows a case's clocks should have (issue 3).

Called inside the transaction that changed the clocks (case transitions, extensions, pauses,
resumes, reassignments), with the case row locked. It only writes `Reminder` rows; the
reminder sweep sends them. Recipients (the assignee and the holder agency's head) are
resolved when a reminder is sent, so a reassignment needs no re-planning.

Rules (README "Reminders"):
- Only RUNNING clocks of kind DUTY get reminders, at the rule's `reminder_offsets`
  (default 3 and 1 working days before, and 09:00 on the due day, Asia/Shanghai), moved into
  08:00–21:00 by `policy.shift_into_quiet_hours`.
- A reminder whose send time has already passed when it is planned is not created, except the
  due-day reminder when the due day is today: it is planned for now (or the next 08:00 if now
  is outside 08:00–21:00). Nothing is planned at or after the clock's due time.
- Planned reminders of stopped or paused clocks, and of older generations, are cancelled.
- Unique (clock, generation, offset): planning twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection

from mediation.core.clock import local_date
from mediation.deadlines import policy
from mediation.deadlines.calendar_source import current_calendar
from mediation.deadlines.models import Clock, ClockStatus, Reminder, ReminderStatus


@dataclass(frozen=True)
class PlannedReminder:
    offset_code: str
    send_at: dt.datetime


@dataclass(frozen=True)
class PlanResult:
    planned: int = 0
    cancelled: int = 0
    reactivated: int = 0


def reminder_plan(
    *,
    rule: policy.Rule | str,
    start: dt.date,
    due: dt.date,
    due_at: dt.datetime,
    now: dt.datetime,
    calendar: policy.Calendar,
) -> list[PlannedReminder]:
    """The reminders a running duty clock should have, as of `now`. Pure: no database."""
    if isinstance(rule, str):
        rule = policy.get_rule(rule)
    if rule.kind is not policy.ClockKind.DUTY:
        return []
    on_due_day = {o.code for o in rule.reminder_offsets if o.working_days_before == 0}
    deadline = policy.Deadline(
        rule=rule.code,
        start=start,
        nominal_due=due,
        due=due,
        provisional=False,
        explanation=(),
        paused_days=0,
        extra_days=0,
        skipped=(),
    )
    out: list[PlannedReminder] = []
    for code, instant in policy.reminder_times(deadline, rule, calendar=calendar):
        send_at = policy.shift_into_quiet_hours(instant)
        if send_at < now:
            if code not in on_due_day or local_date(now) != due:
                continue
            send_at = policy.shift_into_quiet_hours(now)
        if send_at >= due_at:
            continue
        out.append(PlannedReminder(code, send_at))
    return out


# Cancels a case's planned reminders that are no longer wanted, in one statement. The reason
# is the first that applies: clock_stopped, clock_paused, superseded (an older generation),
# not_duty. Plain SQL (PostgreSQL and SQLite): the same statement through the ORM (Case/When
# over Exists) cost more Python time to compile than the four updates it replaced.
_CANCEL_STALE_SQL = """
UPDATE deadlines_reminder
SET status = %s, cancelled_at = %s, cancel_reason = (
    SELECT CASE
        WHEN c.status = %s THEN 'clock_stopped'
        WHEN c.status = %s THEN 'clock_paused'
        WHEN c.generation <> deadlines_reminder.generation THEN 'superseded'
        ELSE 'not_duty'
    END
    FROM deadlines_clock c WHERE c.id = deadlines_reminder.clock_id)
WHERE status || '' = %s
  AND clock_id = ANY(__CLOCK_IDS__)
  AND EXISTS (
    SELECT 1 FROM deadlines_clock c
    WHERE c.id = deadlines_reminder.clock_id
      AND (c.status IN (%s, %s) OR c.generation <> deadlines_reminder.generation
           OR c.kind <> %s))
"""


# The reminders are found through their clocks' ids (the leading column of
# `reminder_one_per_offset`: a clock has a handful), never through the partial index of
# planned reminders. When the statistics say few reminders are planned (right after a sweep
# sent or cancelled many), PostgreSQL would otherwise walk `reminder_planned_send_idx` over
# every planned reminder in the system and filter by clock, a cost that grows with the system
# (42 ms instead of 0.2 ms). `status || '' = 'planned'` says the same as `status = 'planned'`
# but does not imply that index's predicate, so the planner cannot pick it whatever the
# statistics say (tests/integration/test_plans.py EXPLAINs it on skewed, stale statistics).
_CASE_CLOCKS = "ARRAY(SELECT id FROM deadlines_clock WHERE case_id = %s)"
_CANCEL_STALE_FOR_CASE_SQL = _CANCEL_STALE_SQL.replace("__CLOCK_IDS__", _CASE_CLOCKS)
_CANCEL_STALE_FOR_CLOCKS_SQL = _CANCEL_STALE_SQL.replace("__CLOCK_IDS__", "%s")


def _cancel_stale(case_id: int, now: dt.datetime, clock_ids: Iterable[int] | None = None) -> int:
    """Cancel the stale planned reminders of the case's clocks (or only of `clock_ids`)."""
    stopped, paused = ClockStatus.STOPPED.value, ClockStatus.PAUSED.value
    ids = None if clock_ids is None else sorted(set(clock_ids))
    if ids == []:
        return 0
    params = [
        ReminderStatus.CANCELLED.value,
        connection.ops.adapt_datetimefield_value(now),
        stopped,
        paused,
        ReminderStatus.PLANNED.value,
        case_id if ids is None else ids,
        stopped,
        paused,
        policy.ClockKind.DUTY.value,
    ]
    if ids is not None and connection.vendor != "postgresql":
        # SQLite has no arrays: the same statement with an IN list.
        sql = _CANCEL_STALE_SQL.replace(
            "= ANY(__CLOCK_IDS__)", "IN (" + ", ".join(["%s"] * len(ids)) + ")"
        )
        params = params[:5] + ids + params[6:]
    elif ids is None and connection.vendor != "postgresql":
        sql = _CANCEL_STALE_SQL.replace(
            "= ANY(__CLOCK_IDS__)", "IN (SELECT id FROM deadlines_clock WHERE case_id = %s)"
        )
    else:
        sql = _CANCEL_STALE_FOR_CASE_SQL if ids is None else _CANCEL_STALE_FOR_CLOCKS_SQL
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def plan_reminders_for_clock(
    clock: Clock, *, now: dt.datetime, calendar: policy.Calendar, fresh: bool = False
) -> PlanResult:
    """Create (or revive) the planned reminders of one running duty clock. `fresh`: the clock
    was created in this transaction, so it has no reminders yet (nothing to read)."""
    if clock.status != ClockStatus.RUNNING or clock.kind != policy.ClockKind.DUTY:
        return PlanResult()
    try:
        rule = policy.get_rule(clock.rule_code)
    except policy.UnknownRule:
        return PlanResult()
    wanted = reminder_plan(
        rule=rule,
        start=clock.start_date,
        due=clock.due,
        due_at=clock.due_at,
        now=now,
        calendar=calendar,
    )
    if not wanted:
        return PlanResult()
    existing = (
        {}
        if fresh
        else {
            r.offset_code: r
            for r in Reminder.objects.filter(clock=clock, generation=clock.generation)
        }
    )
    new = [
        Reminder(
            clock=clock,
            generation=clock.generation,
            offset_code=w.offset_code,
            send_at=w.send_at,
            created_at=now,
        )
        for w in wanted
        if w.offset_code not in existing
    ]
    reactivated = 0
    for w in wanted:
        row = existing.get(w.offset_code)
        # Paused and resumed on the same day: the due time (and generation) did not move, but
        # the pause cancelled the reminders; bring back the ones still ahead.
        if row is not None and row.status == ReminderStatus.CANCELLED:
            reactivated += Reminder.objects.filter(
                pk=row.pk, status=ReminderStatus.CANCELLED
            ).update(
                status=ReminderStatus.PLANNED,
                send_at=w.send_at,
                cancelled_at=None,
                cancel_reason="",
            )
    if new:
        Reminder.objects.bulk_create(new, ignore_conflicts=True)
    return PlanResult(planned=len(new), reactivated=reactivated)


def plan_reminders_for_case(
    case_id: int,
    now: dt.datetime,
    *,
    calendar: policy.Calendar | None = None,
    live_clocks: Iterable[Clock] | None = None,
    changed_clock_ids: Iterable[int] | None = None,
    new_clock_ids: Iterable[int] = (),
) -> PlanResult:
    """Re-plan every reminder of a case after its clocks changed. Idempotent.

    Call it in the transaction that changed the clocks, after they were reconciled.
    `live_clocks`: every live clock of the case as the caller just saved them (saves reading
    them again); by default they are read. `changed_clock_ids`: when the caller knows which
    clocks it stopped, paused or re-dated, only their reminders can have gone stale (none: no
    cancel statement); by default every clock of the case is looked at. `new_clock_ids`:
    clocks created in this transaction (their reminders are not read back).
    """
    if calendar is None:
        calendar = current_calendar()
    cancelled = _cancel_stale(case_id, now, changed_clock_ids)
    fresh = set(new_clock_ids)
    planned = reactivated = 0
    if live_clocks is None:
        clocks: Iterable[Clock] = Clock.objects.filter(
            case_id=case_id, status=ClockStatus.RUNNING, kind=policy.ClockKind.DUTY
        )
    else:
        clocks = [
            c
            for c in live_clocks
            if c.case_id == case_id
            and c.status == ClockStatus.RUNNING
            and c.kind == policy.ClockKind.DUTY
        ]
    for clock in clocks:
        result = plan_reminders_for_clock(
            clock, now=now, calendar=calendar, fresh=clock.pk in fresh
        )
        planned += result.planned
        reactivated += result.reactivated
    return PlanResult(planned=planned, cancelled=cancelled, reactivated=reactivated)


def plan_reminders_for_redated_clocks(
    clocks: Iterable[Clock], *, now: dt.datetime, calendar: policy.Calendar
) -> PlanResult:
    """Re-plan after a bulk re-dating (the holiday recompute, issue 10), set-based.

    Each clock's `generation` was bumped and saved by the caller: its planned reminders of
    older generations are cancelled ("superseded", one statement for all), and the running duty
    clocks get the new generation's reminders (one insert for all). Same rules as
    `plan_reminders_for_case`; idempotent (unique (clock, generation, offset)).
    """
    clocks = list(clocks)
    cancelled = _cancel_stale(0, now, [c.pk for c in clocks])
    # (clock id, generation, offset code, send_at) of the new generation's reminders.
    new: list[tuple[int, int, str, dt.datetime]] = []
    for clock in clocks:
        if clock.status != ClockStatus.RUNNING or clock.kind != policy.ClockKind.DUTY:
            continue
        try:
            rule = policy.get_rule(clock.rule_code)
        except policy.UnknownRule:
            continue
        for w in reminder_plan(
            rule=rule,
            start=clock.start_date,
            due=clock.due,
            due_at=clock.due_at,
            now=now,
            calendar=calendar,
        ):
            new.append((clock.pk, clock.generation, w.offset_code, w.send_at))
    if new and connection.vendor == "postgresql":
        from mediation.core.db import bulk_cursor

        # One statement whatever the count (the ORM's INSERT compiles per row).
        with bulk_cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO deadlines_reminder
                    (clock_id, generation, offset_code, send_at, status, created_at,
                     cancel_reason, digested)
                SELECT u.clock_id, u.generation, u.offset_code, u.send_at, %b, %b, '', false
                FROM unnest(%b::bigint[], %b::int[], %b::text[], %b::timestamptz[])
                     AS u(clock_id, generation, offset_code, send_at)
                ON CONFLICT (clock_id, generation, offset_code) DO NOTHING
                """,
                [ReminderStatus.PLANNED.value, now, *(list(col) for col in zip(*new, strict=True))],
            )
    elif new:
        Reminder.objects.bulk_create(
            [
                Reminder(clock_id=c, generation=g, offset_code=o, send_at=at, created_at=now)
                for c, g, o, at in new
            ],
            ignore_conflicts=True,
            batch_size=2000,
        )
    return PlanResult(planned=len(new), cancelled=cancelled)
