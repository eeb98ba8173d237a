"""Clock rows: start, stop, pause, resume, recompute. Callers hold the case row lock.

Every function takes `now` (and a calendar) as parameters and only writes rows in the
caller's transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from mediation.core.clock import end_of_day, local_date
from mediation.deadlines import policy
from mediation.deadlines.models import Clock, ClockPause, ClockStatus


def _pause_intervals(clock: Clock, *, today: dt.date) -> list[tuple[dt.date, dt.date]]:
    # Query afresh: callers may hold a prefetched (stale) copy of the pauses.
    return pause_intervals_for([clock.pk], today=today).get(clock.pk, [])


def pause_intervals_for(
    clock_ids: Sequence[int], *, today: dt.date
) -> dict[int, list[tuple[dt.date, dt.date]]]:
    """{clock id: its counted pause intervals}, an open pause ending `today`. One query."""
    out: dict[int, list[tuple[dt.date, dt.date]]] = {}
    rows = ClockPause.objects.filter(clock_id__in=list(clock_ids))
    rows = rows.order_by("clock_id", "start_date")
    for clock_id, start, end in rows.values_list("clock_id", "start_date", "end_date"):
        end = end if end is not None else today
        if end >= start:
            out.setdefault(clock_id, []).append((start, end))
    return out


def apply_deadline(clock: Clock, deadline: policy.Deadline) -> bool:
    """Set the clock's computed fields from `deadline` (not saved). True if the due or nominal
    date moved: the caller then bumps `generation` (re-plans the reminders)."""
    changed = (clock.due, clock.nominal_due) != (deadline.due, deadline.nominal_due)
    clock.nominal_due = deadline.nominal_due
    clock.due = deadline.due
    clock.due_at = end_of_day(deadline.due)
    clock.provisional = deadline.provisional
    clock.paused_days = deadline.paused_days
    clock.explanation = list(deadline.explanation)
    return changed


def clock_compute(
    *,
    rule_code: str,
    start_date: dt.date,
    extra_days: int = 0,
    pauses: Sequence[tuple[dt.date, dt.date]] = (),
    calendar: policy.Calendar,
) -> policy.Deadline:
    return policy.compute_deadline(
        rule_code, start_date, calendar=calendar, pauses=pauses, extra_days=extra_days
    )


def clock_start(
    *,
    case_id: int,
    rule_code: str,
    start_date: dt.date,
    entered_state: str,
    extra_days: int = 0,
    now: dt.datetime,
    calendar: policy.Calendar,
    agency_id: int | None = None,
) -> Clock:
    rule = policy.get_rule(rule_code)
    deadline = clock_compute(
        rule_code=rule_code, start_date=start_date, extra_days=extra_days, calendar=calendar
    )
    clock = Clock(
        case_id=case_id,
        rule_code=rule_code,
        kind=str(rule.kind),
        entered_state=entered_state,
        start_date=start_date,
        extra_days=extra_days,
        started_at=now,
        status=ClockStatus.RUNNING,
        agency_id=agency_id,
    )
    apply_deadline(clock, deadline)
    clock.save()
    return clock


def clock_stop(*, clock: Clock, now: dt.datetime, reason: str) -> Clock:
    today = local_date(now)
    if clock.status == ClockStatus.PAUSED:  # only a paused clock has an open pause
        ClockPause.objects.filter(clock_id=clock.pk, end_date__isnull=True).update(end_date=today)
    clock.status = ClockStatus.STOPPED
    clock.stopped_at = now
    clock.stop_reason = reason
    clock.save(update_fields=["status", "stopped_at", "stop_reason"])
    return clock


def clock_recompute(
    *, clock: Clock, now: dt.datetime, calendar: policy.Calendar, extra_days: int | None = None
) -> bool:
    """Recompute due dates from the start, extensions and pauses. True if the due date moved."""
    if extra_days is not None:
        clock.extra_days = extra_days
    deadline = clock_compute(
        rule_code=clock.rule_code,
        start_date=clock.start_date,
        extra_days=clock.extra_days,
        pauses=_pause_intervals(clock, today=local_date(now)),
        calendar=calendar,
    )
    changed = apply_deadline(clock, deadline)
    if changed:
        clock.generation += 1
    clock.save()
    return changed


def clock_pause(
    *, clock: Clock, on: dt.date, reason: str, now: dt.datetime, calendar: policy.Calendar
) -> Clock:
    """Pause from `on` (counted). The due date keeps moving out while the pause is open."""
    ClockPause.objects.create(clock=clock, start_date=on, reason=reason)
    clock.status = ClockStatus.PAUSED
    clock_recompute(clock=clock, now=now, calendar=calendar)
    return clock


def clock_resume(
    *, clock: Clock, on: dt.date, now: dt.datetime, calendar: policy.Calendar
) -> Clock:
    """Resume on `on`: the pause covers its start through the day before `on`."""
    for pause in clock.pauses.filter(end_date__isnull=True):
        pause.end_date = on - dt.timedelta(days=1)
        pause.save(update_fields=["end_date"])
    clock.status = ClockStatus.RUNNING
    clock_recompute(clock=clock, now=now, calendar=calendar)
    return clock


def clocks_live_for(*, case_id: int) -> list[Clock]:
    return list(
        Clock.objects.filter(
            case_id=case_id, status__in=[ClockStatus.RUNNING, ClockStatus.PAUSED]
        ).order_by("id")
    )
