"""Re-dating the live clocks after a change of the holiday data (issue 10).

A committed `HolidayChange` (written by `mediation.deadlines.holidays.holiday_change` with the
change itself) is this job's queue entry; the sweep runs `holidays_recompute_pending` before
it escalates anything, so no clock escalates against a calendar that was corrected. For each
pending change, in id order:

- The candidates are the running and paused clocks whose counting span (start, due] overlaps
  [first, last] changed date, read as ids in bounded batches in id order (never a million rows
  in Python); the exact test (a changed date inside the span) is made per clock.
- Each batch is one short transaction: it locks the clocks and their cases with
  `FOR UPDATE … SKIP LOCKED` (a case a service is changing right now is retried after the
  pass, a few times, else left for the next sweep), reads the calendar (the shared calendar
  lock: a new change waits for the batch) and recomputes each clock with the same policy code
  as a transition (`clock_compute` + `apply_deadline`): nominal_due, due, due_at, provisional,
  paused days and the explanation. A clock whose due date moved gets a new generation; its
  reminders are re-planned (`plan_reminders_for_redated_clocks`); its case gets one audited
  `CaseEvent` (holiday_recompute) per moved clock, a new version and its `next_due_at`; a live
  escalation of it whose new due time is in the future is marked superseded (kept, with its
  reason, out of the queue; the clock may escalate again).
- After the last batch, the holders (the assignee and the responsible agency's head) get ONE
  digest each listing their moved clocks (idempotency key per change and recipient), and the
  change is marked done.

Idempotent: a second run finds every clock already equal to its recomputation and changes
nothing. The progress cursor is stored on the change, so a run cut short by its budget goes
on where it stopped.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import F

from mediation.agencies.models import Agency
from mediation.cases.models import Case, CaseEvent, EventKind
from mediation.core.clock import local_date
from mediation.core.db import bulk_cursor
from mediation.deadlines import policy
from mediation.deadlines import services as clock_services
from mediation.deadlines.calendar_source import current_calendar
from mediation.deadlines.models import (
    Clock,
    ClockStatus,
    HolidayChange,
    HolidayChangeStatus,
)
from mediation.deadlines.reminders import plan_reminders_for_redated_clocks
from mediation.escalation.models import Escalation, EscalationStatus
from mediation.notifications.models import NotificationKind
from mediation.notifications.services import NotificationSpec, notifications_create_bulk

BATCH_SIZE = 2000
SKIP_RETRIES = 10
SKIP_RETRY_SLEEP = 0.2
DIGEST_LINES = 100  # clocks listed in one digest; the rest are counted
_LIVE_CLOCK = (ClockStatus.RUNNING, ClockStatus.PAUSED)
_LIVE_ESCALATION = (EscalationStatus.OPEN, EscalationStatus.ACKNOWLEDGED)
_FIELDS = ("nominal_due", "due", "due_at", "provisional", "paused_days", "explanation")
RULE_LABELS = {code: rule.label for code, rule in policy.RULES.items()}


@dataclass
class RecomputeCounts:
    changes: int = 0
    clocks_examined: int = 0
    clocks_recomputed: int = 0  # any computed field changed
    clocks_moved: int = 0  # the due date changed
    escalations_superseded: int = 0
    reminders_planned: int = 0
    reminders_cancelled: int = 0
    digests: int = 0
    left_locked: int = 0  # still locked after the retries: the next run takes them

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def event_note(old_due: dt.date, new_due: dt.date, source: str) -> str:
    return (
        f"节假日调整：到期日由 {old_due.isoformat()} 调整为 {new_due.isoformat()}（依据：{source}）"
    )


def holidays_recompute_pending(
    *, now: dt.datetime, batch_size: int = BATCH_SIZE, budget: float | None = None
) -> RecomputeCounts:
    """Process every pending `HolidayChange` (module docstring); stops at `budget` seconds."""
    counts = RecomputeCounts()
    started = time.monotonic()
    ids = HolidayChange.objects.filter(status=HolidayChangeStatus.PENDING).order_by("id")
    for change_id in list(ids.values_list("id", flat=True)):
        change = HolidayChange.objects.filter(pk=change_id).first()
        if change is None or change.status != HolidayChangeStatus.PENDING:
            continue
        remaining = None if budget is None else budget - (time.monotonic() - started)
        if not holiday_change_recompute(
            change, now=now, batch_size=batch_size, counts=counts, budget=remaining
        ):
            break
    return counts


def holiday_change_recompute(
    change: HolidayChange,
    *,
    now: dt.datetime,
    batch_size: int = BATCH_SIZE,
    counts: RecomputeCounts | None = None,
    budget: float | None = None,
) -> bool:
    """Re-date the clocks one change touches; True when it is done (marked so)."""
    counts = counts if counts is not None else RecomputeCounts()
    started = time.monotonic()
    dates = sorted(dt.date.fromisoformat(d) for d in change.dates)
    cursor = int((change.counts or {}).get("cursor", 0))
    skipped: set[int] = set()
    candidates = Clock.objects.filter(
        status__in=_LIVE_CLOCK, start_date__lt=change.last_date, due__gte=change.first_date
    ).order_by("pk")
    while True:
        if budget is not None and time.monotonic() - started > budget:
            return False
        ids = list(candidates.filter(pk__gt=cursor).values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        cursor = ids[-1]
        skipped |= _batch(change, dates, ids, now=now, counts=counts, cursor=cursor)
    for _attempt in range(SKIP_RETRIES):
        if not skipped:
            break
        time.sleep(SKIP_RETRY_SLEEP)
        skipped = _batch(change, dates, sorted(skipped), now=now, counts=counts, cursor=cursor)
    if skipped:
        counts.left_locked += len(skipped)
        # Start over next time: the locked clocks may be anywhere before the cursor.
        HolidayChange.objects.filter(pk=change.pk).update(counts={**change.counts, "cursor": 0})
        return False
    digests = _send_digests(change, now=now)
    counts.digests += digests
    counts.changes += 1
    HolidayChange.objects.filter(pk=change.pk, status=HolidayChangeStatus.PENDING).update(
        status=HolidayChangeStatus.DONE,
        finished_at=now,
        counts={"cursor": cursor, "digests": digests, "finished": now.isoformat()},
    )
    return True


def _in_span(dates: Sequence[dt.date], start: dt.date, due: dt.date) -> bool:
    """Whether a changed date d has start < d <= due."""
    i = bisect.bisect_right(dates, start)
    return i < len(dates) and dates[i] <= due


def _batch(
    change: HolidayChange,
    dates: Sequence[dt.date],
    ids: Sequence[int],
    *,
    now: dt.datetime,
    counts: RecomputeCounts,
    cursor: int,
) -> set[int]:
    """One transaction over these clock ids; returns the ids left locked by others."""
    with transaction.atomic():
        locked = list(
            Clock.objects.filter(pk__in=list(ids), status__in=_LIVE_CLOCK)
            .select_related("case")
            .only(
                "pk",
                "case_id",
                "rule_code",
                "kind",
                "status",
                "start_date",
                "extra_days",
                "generation",
                "agency_id",
                *_FIELDS,
                "case__state",
                "case__number",
                "case__holder_agency_id",
            )
            .select_for_update(skip_locked=True, of=("self", "case"))
            .order_by("pk")
        )
        got = {c.pk for c in locked}
        missing = [i for i in ids if i not in got]
        left: set[int] = set()
        if missing:
            still_live = Clock.objects.filter(pk__in=missing, status__in=_LIVE_CLOCK)
            left = set(still_live.values_list("pk", flat=True))
        touched = [c for c in locked if _in_span(dates, c.start_date, c.due)]
        counts.clocks_examined += len(touched)
        if touched:
            _recompute(change, touched, now=now, counts=counts)
        HolidayChange.objects.filter(pk=change.pk).update(
            counts={**(change.counts or {}), "cursor": cursor}
        )
    return left


def _recompute(
    change: HolidayChange, clocks: list[Clock], *, now: dt.datetime, counts: RecomputeCounts
) -> None:
    calendar = current_calendar()
    today = local_date(now)
    pauses = clock_services.pause_intervals_for([c.pk for c in clocks], today=today)
    changed: list[Clock] = []
    redated: list[Clock] = []  # new generation: their reminders are re-planned
    moved: list[tuple[Clock, dt.date]] = []
    for clock in clocks:
        try:
            deadline = clock_services.clock_compute(
                rule_code=clock.rule_code,
                start_date=clock.start_date,
                extra_days=clock.extra_days,
                pauses=pauses.get(clock.pk, []),
                calendar=calendar,
            )
        except policy.PolicyError:
            continue
        before = tuple(getattr(clock, f) for f in _FIELDS)
        old_due = clock.due
        bump = clock_services.apply_deadline(clock, deadline)
        if tuple(getattr(clock, f) for f in _FIELDS) == before:
            continue
        if bump:
            clock.generation += 1
            redated.append(clock)
        changed.append(clock)
        if clock.due != old_due:
            moved.append((clock, old_due))
    if not changed:
        return
    _write_clocks(changed)
    counts.clocks_recomputed += len(changed)
    counts.clocks_moved += len(moved)
    plan = plan_reminders_for_redated_clocks(redated, now=now, calendar=calendar)
    counts.reminders_planned += plan.planned
    counts.reminders_cancelled += plan.cancelled
    if moved:
        superseded = _supersede(change, moved, now=now)
        counts.escalations_superseded += sum(len(v) for v in superseded.values())
        _audit(change, moved, superseded, now=now)


def _write_clocks(clocks: list[Clock]) -> None:
    if connection.vendor != "postgresql":
        Clock.objects.bulk_update(clocks, [*_FIELDS, "generation"])
        return
    with bulk_cursor() as cursor:
        cursor.execute(
            """
            UPDATE deadlines_clock c
            SET nominal_due = u.nominal_due, due = u.due, due_at = u.due_at,
                provisional = u.provisional, paused_days = u.paused_days,
                explanation = u.explanation::jsonb, generation = u.generation
            FROM unnest(%b::bigint[], %b::date[], %b::date[], %b::timestamptz[], %b::bool[],
                        %b::int[], %b::text[], %b::int[])
                 AS u(id, nominal_due, due, due_at, provisional, paused_days, explanation,
                      generation)
            WHERE c.id = u.id
            """,
            [
                [c.pk for c in clocks],
                [c.nominal_due for c in clocks],
                [c.due for c in clocks],
                [c.due_at for c in clocks],
                [c.provisional for c in clocks],
                [c.paused_days for c in clocks],
                [json.dumps(c.explanation, ensure_ascii=False) for c in clocks],
                [c.generation for c in clocks],
            ],
        )


def _supersede(
    change: HolidayChange, moved: list[tuple[Clock, dt.date]], *, now: dt.datetime
) -> dict[int, list[int]]:
    """Mark live escalations of clocks now due in the future superseded; {clock id: [ids]}."""
    future = {c.pk: (c, old) for c, old in moved if c.due_at > now}
    if not future:
        return {}
    rows = list(
        Escalation.objects.filter(clock_id__in=list(future), status__in=_LIVE_ESCALATION)
        .order_by("id")
        .select_for_update()
    )
    out: dict[int, list[int]] = defaultdict(list)
    for esc in rows:
        clock, old_due = future[esc.clock_id]
        esc.status = EscalationStatus.SUPERSEDED
        esc.resolved_at = now
        esc.resolution = "holiday_recompute"
        esc.data = {
            **esc.data,
            "superseded": {
                "reason": event_note(old_due, clock.due, change.source) + "，原督办失效",
                "old_due": old_due.isoformat(),
                "new_due": clock.due.isoformat(),
                "holiday_change_id": change.pk,
                "at": now.isoformat(),
            },
        }
        out[esc.clock_id].append(esc.pk)
    if rows:
        Escalation.objects.bulk_update(rows, ["status", "resolved_at", "resolution", "data"])
    return out


def _bump_cases(per_case: dict[int, int], *, now: dt.datetime) -> dict[int, int]:
    """version += n and next_due_at re-read for each case; {case id: new version}."""
    ids = sorted(per_case)
    if connection.vendor == "postgresql":
        # next_due_at: the rule of `cases.services.case_sync_next_due` (earliest running duty
        # clock's due_at), in SQL for the whole batch.
        with bulk_cursor() as cursor:
            cursor.execute(
                """
                UPDATE cases_case k
                SET version = k.version + m.n, updated_at = %b,
                    next_due_at = (SELECT min(c.due_at) FROM deadlines_clock c
                                   WHERE c.case_id = k.id AND c.status = 'running'
                                     AND c.kind = %b)
                FROM unnest(%b::bigint[], %b::int[]) AS m(id, n)
                WHERE k.id = m.id
                RETURNING k.id, k.version
                """,
                [now, str(policy.ClockKind.DUTY), ids, [per_case[i] for i in ids]],
            )
            return dict(cursor.fetchall())
    from mediation.cases.services import case_sync_next_due

    out = {}
    for case_id in ids:
        Case.objects.filter(pk=case_id).update(
            version=F("version") + per_case[case_id], updated_at=now
        )
        case = Case.objects.get(pk=case_id)
        case_sync_next_due(case)
        out[case_id] = case.version
    return out


def _audit(
    change: HolidayChange,
    moved: list[tuple[Clock, dt.date]],
    superseded: dict[int, list[int]],
    *,
    now: dt.datetime,
) -> None:
    per_case: dict[int, list[tuple[Clock, dt.date]]] = defaultdict(list)
    for clock, old_due in moved:
        per_case[clock.case_id].append((clock, old_due))
    versions = _bump_cases({k: len(v) for k, v in per_case.items()}, now=now)
    actor_agency_id = None
    if change.actor_id:
        actor_agency_id = change.actor.agency_id
    events = []
    for case_id, items in per_case.items():
        first = versions[case_id] - len(items) + 1
        for offset, (clock, old_due) in enumerate(sorted(items, key=lambda i: i[0].pk)):
            events.append(
                CaseEvent(
                    case_id=case_id,
                    version=first + offset,
                    actor_id=change.actor_id,
                    actor_agency_id=actor_agency_id,
                    at=now,
                    transition=EventKind.HOLIDAY_RECOMPUTE.value,
                    from_state=clock.case.state,
                    to_state=clock.case.state,
                    note=event_note(old_due, clock.due, change.source),
                    data={
                        "holiday_change_id": change.pk,
                        "clock_id": clock.pk,
                        "rule": clock.rule_code,
                        "old_due": old_due.isoformat(),
                        "new_due": clock.due.isoformat(),
                        "provisional": clock.provisional,
                        "agency_id": clock.agency_id or clock.case.holder_agency_id,
                        "superseded_escalations": superseded.get(clock.pk, []),
                        "source": change.source,
                    },
                )
            )
    _insert_events(events)


def _insert_events(events: list[CaseEvent]) -> None:
    if connection.vendor != "postgresql":
        CaseEvent.objects.bulk_create(events, batch_size=2000)
        return
    # One statement whatever the count (the ORM's INSERT compiles per row).
    with bulk_cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO cases_caseevent
                (case_id, version, actor_id, actor_agency_id, at, transition, from_state,
                 to_state, note, data)
            SELECT u.case_id, u.version, u.actor_id, u.actor_agency_id, u.at, u.transition,
                   u.from_state, u.to_state, u.note, u.data::jsonb
            FROM unnest(%b::bigint[], %b::int[], %b::bigint[], %b::bigint[], %b::timestamptz[],
                        %b::text[], %b::text[], %b::text[], %b::text[], %b::text[])
                 AS u(case_id, version, actor_id, actor_agency_id, at, transition, from_state,
                      to_state, note, data)
            """,
            [
                [e.case_id for e in events],
                [e.version for e in events],
                [e.actor_id for e in events],
                [e.actor_agency_id for e in events],
                [e.at for e in events],
                [e.transition for e in events],
                [e.from_state for e in events],
                [e.to_state for e in events],
                [e.note for e in events],
                [json.dumps(e.data, ensure_ascii=False) for e in events],
            ],
        )


def _send_digests(change: HolidayChange, *, now: dt.datetime) -> int:
    """One notification per recipient over every clock this change moved (from the events,
    so a run resumed after a crash still lists the clocks an earlier run moved)."""
    heads = dict(Agency.objects.exclude(head=None).values_list("id", "head_id"))
    per_user: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"n": 0, "lines": [], "cases": set(), "clocks": []}
    )
    events = (
        CaseEvent.objects.filter(
            transition=EventKind.HOLIDAY_RECOMPUTE.value,
            at__gte=change.created_at,
            data__holiday_change_id=change.pk,
        )
        .order_by("case_id", "version")
        .values_list("case_id", "case__number", "case__title", "case__assignee_id", "data")
    )
    for case_id, number, title, assignee_id, data in events.iterator(chunk_size=2000):
        recipients = {assignee_id, heads.get(data.get("agency_id"))} - {None}
        rule = RULE_LABELS.get(data.get("rule"), data.get("rule"))
        line = f"· {number} {title}：{rule} 到期日由 {data['old_due']} 调整为 {data['new_due']}"
        for user_id in recipients:
            entry = per_user[user_id]
            entry["n"] += 1
            entry["cases"].add(case_id)
            if len(entry["lines"]) < DIGEST_LINES:
                entry["lines"].append(line)
                entry["clocks"].append(data.get("clock_id"))
    specs = []
    for user_id, entry in sorted(per_user.items()):
        more = entry["n"] - len(entry["lines"])
        body = "\n".join(
            [f"节假日安排调整（依据：{change.source}），以下期限的到期日已重新计算："]
            + entry["lines"]
            + ([f"……另有 {more} 项，请在系统中查看。"] if more > 0 else [])
        )
        cases = entry["cases"]
        specs.append(
            NotificationSpec(
                recipient_id=user_id,
                kind=str(NotificationKind.DIGEST),
                case_id=next(iter(cases)) if len(cases) == 1 else None,
                subject=f"【节假日调整】您有 {entry['n']} 项期限的到期日已调整",
                body=body,
                key=f"holiday:{change.pk}:user:{user_id}",
                data={"holiday_change_id": change.pk, "clock_ids": entry["clocks"]},
            )
        )
    notifications_create_bulk(specs, now=now)
    return len(specs)
