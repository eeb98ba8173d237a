"""The sweep: escalation ladder, reminders and after-outage digests, set-based.

PostgreSQL is the record (RELIABILITY.md §0, §2.1–2.4). Each step claims due rows with
`SELECT … FOR … SKIP LOCKED` in bounded batches and, in the same short transaction, writes the
ledger rows (escalations, reminder status) and the outbox (notifications, deliveries) with
`INSERT … ON CONFLICT DO NOTHING`. A batch costs a constant number of statements, not one per
row. Two sweeps at once (two beats, a redelivered task, `manage.py sweep` beside the workers)
split the rows between them through SKIP LOCKED, and the unique keys absorb any overlap.

Lock order. Case services lock the case row (FOR UPDATE) and then touch its clocks,
reminders and escalations. The sweep's claims therefore also take `FOR KEY SHARE` of the
case row with SKIP LOCKED, in the same statement as the claim: a case being changed right now
is left for the next sweep, and the sweep never waits for a case lock while holding a clock,
reminder or escalation lock (which would deadlock with the service).

SQLite (the embedded demo) takes a plain ORM path: correct, single-writer, not set-based.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import queue
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Exists, F, OuterRef, Q

from mediation.accounts.models import Role, User
from mediation.agencies.models import Agency
from mediation.cases.models import Case
from mediation.core.clock import SHANGHAI, end_of_day, local_date
from mediation.core.clock import now as clock_now
from mediation.core.db import bulk_cursor, is_postgres
from mediation.deadlines import policy
from mediation.deadlines.calendar_source import current_calendar
from mediation.deadlines.models import (
    Clock,
    ClockStatus,
    HolidayChange,
    HolidayChangeStatus,
    Reminder,
    ReminderStatus,
)
from mediation.escalation.models import Escalation, EscalationStatus, SweepRun
from mediation.escalation.recalendar import holidays_recompute_pending
from mediation.escalation.routing import AgencyNode, Ladder
from mediation.notifications.models import NotificationKind
from mediation.notifications.services import (
    NotificationSpec,
    notifications_create_bulk,
    outbox_sql,
)

logger = logging.getLogger(__name__)

LEVEL_LABELS = {1: "承办机构负责人", 2: "乡镇综治中心", 3: "县级督办"}
DIGEST_CAP = 10_000  # reminders folded into digests per sweep (one digest per recipient)
# The climb looks at most batch × this many candidates per statement (paused clocks' open
# escalations wait in the window without climbing).
CLIMB_WINDOW_FACTOR = 10
RULE_LABELS = {code: rule.label for code, rule in policy.RULES.items()}
DUTY = str(policy.ClockKind.DUTY)


@dataclass
class SweepCounts:
    escalated: int = 0
    escalated_level1: int = 0
    escalated_level2: int = 0
    escalated_level3: int = 0
    escalations_resolved: int = 0
    escalations_without_recipients: int = 0
    reminders_sent: int = 0
    reminders_digested: int = 0
    reminders_cancelled: int = 0
    digests: int = 0
    notifications_queued: int = 0
    deliveries_queued: int = 0
    batches: int = 0
    # Clocks re-dated by a holiday-data change before anything was escalated (recalendar.py).
    holiday_clocks_moved: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class SweepContext:
    now: dt.datetime
    batch_size: int
    ladder: Ladder
    calendar: policy.Calendar
    ack_due_at: dt.datetime
    counts: SweepCounts = field(default_factory=SweepCounts)
    # Whether this sweep follows a real outage: an earlier sweep finished, longer than
    # REMINDER_DIGEST_AFTER_SECONDS before this one's `now` (not a first sweep after install).
    after_outage: bool = False
    _supervisors: dict[int, list[int]] = field(default_factory=dict)
    _remaining: dict[dt.date, str] = field(default_factory=dict)

    @property
    def today(self) -> dt.date:
        return local_date(self.now)

    def supervisors(self, agency_ids: set[int]) -> dict[int, list[int]]:
        missing = [a for a in agency_ids if a not in self._supervisors]
        if missing:
            for a in missing:
                self._supervisors[a] = []
            rows = (
                User.objects.filter(role=Role.SUPERVISOR, is_active=True, agency_id__in=missing)
                .order_by("id")
                .values_list("agency_id", "id")
            )
            for agency_id, user_id in rows:
                self._supervisors[agency_id].append(user_id)
        return {a: self._supervisors[a] for a in agency_ids}


def build_ladder() -> Ladder:
    return Ladder(
        AgencyNode(id=a, parent_id=p, level=lv, kind=k, name=n, head_id=h)
        for a, p, lv, k, n, h in Agency.objects.values_list(
            "id", "parent_id", "level", "kind", "name", "head_id"
        )
    )


def ack_due_for(now: dt.datetime, calendar: policy.Calendar) -> dt.datetime:
    """End of the `escalation.ack` due day (1 working day after today, DOMAIN.md §7)."""
    deadline = policy.compute_deadline("escalation.ack", local_date(now), calendar=calendar)
    return end_of_day(deadline.due)


def make_context(*, now: dt.datetime, batch_size: int | None = None) -> SweepContext:
    calendar = current_calendar()
    return SweepContext(
        now=now,
        batch_size=batch_size or settings.SWEEP_BATCH_SIZE,
        ladder=build_ladder(),
        calendar=calendar,
        ack_due_at=ack_due_for(now, calendar),
    )


# 督办单 text ---------------------------------------------------------------------------------


def _fmt_local(value: Any) -> str:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def _ack_day(value: Any) -> str:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return (value.astimezone(SHANGHAI) - dt.timedelta(seconds=1)).date().isoformat()


def escalation_text(data: dict[str, Any]) -> tuple[str, str]:
    level = int(data.get("level", 1))
    label = LEVEL_LABELS.get(level, "")
    subject = (
        f"【超期督办·{label}】{data.get('case_number', '')} {data.get('rule_label', '')}已超期"
    )
    lines = [
        "督办单",
        f"案号：{data.get('case_number', '')}",
        f"案件：{data.get('case_title', '')}",
        f"责任机构：{data.get('responsible_agency') or data.get('holder_agency', '')}",
        f"期限：{data.get('rule_label', '')}（{data.get('rule_code', '')}）",
        f"到期日：{data.get('due', '')}",
        f"已超期：{data.get('days_overdue', 0)} 日",
        f"督办层级：第 {level} 级（{label}）",
        f"请于 {_ack_day(data['ack_due_at'])} 当日内签收。" if data.get("ack_due_at") else "",
    ]
    return subject, "\n".join(line for line in lines if line)


def _remaining(due: dt.date, ctx: SweepContext) -> str:
    text = ctx._remaining.get(due)
    if text is None:  # a working-day count per reminder would dominate a large sweep
        if ctx.today == due:
            text = "今日到期"
        elif ctx.today > due:
            text = "已超期"
        else:
            days = policy.working_days_between(ctx.today, due, calendar=ctx.calendar)
            text = f"还有 {days} 个工作日"
        ctx._remaining[due] = text
    return text


def reminder_line(row: dict[str, Any], ctx: SweepContext) -> str:
    return (
        f"{row['case_number']} {row['case_title']}：{RULE_LABELS.get(row['rule_code'], '')}"
        f" 到期日 {row['due'].isoformat()}（{_remaining(row['due'], ctx)}）"
    )


# Recipients ----------------------------------------------------------------------------------


def _escalation_recipients(row: dict[str, Any], ctx: SweepContext) -> list[int]:
    data = row["data"]
    if row["level"] == 1:
        owner_id = row["agency_id"]
        owner = ctx.ladder.nodes.get(owner_id)
        head = owner.head_id if owner is not None else None
        if head:
            return [head]
        assignee = data.get("assignee_id") if owner_id == data.get("holder_agency_id") else None
        return [assignee] if assignee else []
    agency_id = row["agency_id"]
    if agency_id is None:
        return []
    return ctx.supervisors({agency_id})[agency_id]


def _escalation_specs(rows: list[dict[str, Any]], ctx: SweepContext) -> list[NotificationSpec]:
    targets = {r["agency_id"] for r in rows if r["level"] > 1 and r["agency_id"]}
    ctx.supervisors(targets)  # one query for the whole batch
    specs: list[NotificationSpec] = []
    unaddressed: list[int] = []
    for row in rows:
        ctx.counts.escalated += 1
        level_key = f"escalated_level{row['level']}"
        setattr(ctx.counts, level_key, getattr(ctx.counts, level_key) + 1)
        recipients = _escalation_recipients(row, ctx)
        if not recipients:
            ctx.counts.escalations_without_recipients += 1
            unaddressed.append(row["id"])
        subject, body = escalation_text(row["data"])
        holder = row["data"].get("responsible_agency_id") or row["data"].get("holder_agency_id")
        for i, user_id in enumerate(sorted(set(recipients))):
            specs.append(
                NotificationSpec(
                    recipient_id=user_id,
                    kind=str(NotificationKind.ESCALATION),
                    case_id=row["case_id"],
                    subject=subject,
                    body=body,
                    key=f"escalation:{row['id']}:user:{user_id}",
                    data={
                        "escalation_id": row["id"],
                        "level": row["level"],
                        "clock_id": row["clock_id"],
                        "webhook_agency_id": holder if i == 0 else None,
                    },
                    webhook_agency_id=holder if i == 0 else None,
                )
            )
    if unaddressed:
        logger.warning(
            "%d escalations have no recipient (no head / supervisors), e.g. ids %s",
            len(unaddressed),
            unaddressed[:10],
        )
    return specs


def _queue(specs: list[NotificationSpec], ctx: SweepContext) -> None:
    created = notifications_create_bulk(specs, now=ctx.now)
    ctx.counts.notifications_queued += created.notifications
    ctx.counts.deliveries_queued += created.deliveries


# Escalations: resolve stale -------------------------------------------------------------------

_RESOLVE_STALE_SQL = """
UPDATE escalation_escalation e
SET status = 'resolved', resolved_at = %(now)s,
    resolution = CASE WHEN c.status = 'stopped' THEN 'clock_stopped' ELSE 'due_moved' END
FROM deadlines_clock c
WHERE c.id = e.clock_id AND e.id IN (
    SELECT e2.id FROM escalation_escalation e2
    JOIN deadlines_clock c2 ON c2.id = e2.clock_id
    WHERE e2.status IN ('open', 'acknowledged')
      AND (c2.status = 'stopped'
           OR (c2.due_at > %(now)s
               AND c2.generation <> COALESCE((e2.data ->> 'generation')::int, c2.generation)))
    LIMIT %(batch)s
    FOR NO KEY UPDATE OF e2 SKIP LOCKED)
"""


def escalations_resolve_stale(ctx: SweepContext) -> int:
    """Resolve escalations whose clock stopped (the case moved on) or whose due time moved
    into the future (an extension). A clock merely paused keeps its escalations open (they do
    not climb while it is paused). A clock jumping backwards un-escalates nothing."""
    total = 0
    while True:
        with transaction.atomic():
            if is_postgres():
                with connection.cursor() as cur:
                    cur.execute(_RESOLVE_STALE_SQL, {"now": ctx.now, "batch": ctx.batch_size})
                    n = cur.rowcount
            else:
                n = _resolve_stale_orm(ctx)
        total += n
        if n < ctx.batch_size:
            break
    ctx.counts.escalations_resolved += total
    return total


def _resolve_stale_orm(ctx: SweepContext) -> int:
    n = 0
    qs = Escalation.objects.filter(
        status__in=[EscalationStatus.OPEN, EscalationStatus.ACKNOWLEDGED]
    ).select_related("clock")
    for esc in qs[: ctx.batch_size * 10]:
        clock = esc.clock
        moved = clock.due_at > ctx.now and clock.generation != esc.data.get(
            "generation", clock.generation
        )
        if clock.status == ClockStatus.STOPPED or moved:
            esc.status = EscalationStatus.RESOLVED
            esc.resolved_at = ctx.now
            esc.resolution = "clock_stopped" if clock.status == ClockStatus.STOPPED else "due_moved"
            esc.save(update_fields=["status", "resolved_at", "resolution"])
            n += 1
    return n


# Escalations: level 1 -----------------------------------------------------------------------

_NOTICE_FIELDS = """
    'title', '督办单',
    'case_id', k.id, 'case_number', k.number, 'case_title', k.title,
    'clock_id', cl.clock_id, 'rule_code', cl.rule_code,
    'rule_label', %(labels)s::jsonb ->> cl.rule_code,
    'due', cl.due, 'due_at', cl.due_at, 'generation', cl.generation,
    'days_overdue', GREATEST(%(today)s::date - cl.due, 0),
    'holder_agency_id', k.holder_agency_id, 'holder_agency', h.name,
    'responsible_agency_id', COALESCE(cl.owner_id, k.holder_agency_id),
    'responsible_agency', COALESCE(o.name, h.name),
    'assignee_id', k.assignee_id,
    'issued_at', %(now)s::timestamptz, 'ack_due_at', %(ack_due_at)s::timestamptz
"""

# Candidates: one index range scan per pass (partial index clock_running_due_idx), sorted
# once. Claiming each batch by primary key instead of re-running "the first N overdue rows"
# per batch matters because statutory clocks tie on due_at (every clock due on a day ends at
# 24:00): a per-batch ORDER BY due_at, id LIMIT N had to read and sort the whole tie group,
# and re-skip every row escalated by the batches before it, on every batch.
_LEVEL1_CANDIDATES_SQL = """
SELECT c.id FROM deadlines_clock c
WHERE c.status = 'running' AND c.kind = %(duty)s AND c.due_at <= %(now)s
  AND NOT EXISTS (
      SELECT 1 FROM escalation_escalation x
          WHERE x.clock_id = c.id AND x.level = 1 AND x.status <> 'superseded')
ORDER BY c.due_at, c.id
LIMIT %(window)s
"""

# The claim re-checks every condition under the row locks; SKIP LOCKED leaves rows another
# sweep (or a case service) holds, and the unique (clock, level) absorbs any overlap. The
# same statement writes the outbox (`outbox_sql`): the holder's head (else the assignee) gets
# the notification, with the text `escalation_text` gives (`_text_formats`), and its
# deliveries. Nothing travels to Python and back: one round trip per batch.
_LEVEL1_SQL = """
WITH claimed AS (
    SELECT c.id AS clock_id, c.case_id, c.rule_code, c.due, c.due_at, c.generation,
           c.agency_id AS owner_id
    FROM deadlines_clock c
    JOIN cases_case k ON k.id = c.case_id
    WHERE c.id = ANY(%(ids)b::bigint[])
      AND c.status = 'running' AND c.kind = %(duty)s AND c.due_at <= %(now)s
      AND NOT EXISTS (
          SELECT 1 FROM escalation_escalation x
          WHERE x.clock_id = c.id AND x.level = 1 AND x.status <> 'superseded')
    ORDER BY c.due_at, c.id
    FOR NO KEY UPDATE OF c SKIP LOCKED
    FOR KEY SHARE OF k SKIP LOCKED
),
escalated AS (
    INSERT INTO escalation_escalation
        (clock_id, case_id, level, status, agency_id, created_at, ack_due_at, resolution, data)
    -- Level 1 goes to the agency that owes the duty: the holder, or the receiver of a referral
    -- it has not accepted (Clock.agency).
    SELECT cl.clock_id, cl.case_id, 1, 'open', COALESCE(cl.owner_id, k.holder_agency_id),
           %(now)s, %(ack_due_at)s, '',
           jsonb_build_object(__NOTICE_FIELDS__,
               'level', 1, 'agency_id', COALESCE(cl.owner_id, k.holder_agency_id),
               'agency', COALESCE(o.name, h.name),
               'notes', '[]'::jsonb)
    FROM claimed cl
    JOIN cases_case k ON k.id = cl.case_id
    JOIN agencies_agency h ON h.id = k.holder_agency_id
    LEFT JOIN agencies_agency o ON o.id = cl.owner_id
    ORDER BY cl.due_at, cl.clock_id
    ON CONFLICT (clock_id, level) WHERE status <> 'superseded' DO NOTHING
    RETURNING id, clock_id, case_id, agency_id, data
),
addressed AS (
    -- Its head is notified; the holder's assignee when the holder has no head.
    SELECT e.id, e.clock_id, e.case_id, __TEXT_COLUMNS__,
           e.agency_id AS holder_id,
           COALESCE(r.head_id,
                    CASE WHEN e.agency_id = (e.data ->> 'holder_agency_id')::bigint
                         THEN (e.data ->> 'assignee_id')::bigint END) AS recipient_id
    FROM escalated e
    LEFT JOIN agencies_agency r ON r.id = e.agency_id
),
level1 AS (
    SELECT row_number() OVER (ORDER BY a.id) AS ord, a.recipient_id,
           'escalation'::varchar AS kind, a.case_id,
           format(%(subject_format)s, __TEXT_ARGS__)::varchar AS subject,
           format(%(body_format)s, __TEXT_ARGS__) AS body,
           ('escalation:' || a.id || ':user:' || a.recipient_id)::varchar AS key,
           jsonb_build_object('escalation_id', a.id, 'level', 1, 'clock_id', a.clock_id,
                              'webhook_agency_id', a.holder_id) AS data,
           a.holder_id AS webhook_agency_id
    FROM addressed a
    WHERE a.recipient_id IS NOT NULL
),__OUTBOX__
SELECT (SELECT count(*) FROM escalated),
       (SELECT count(*) FROM outbox_notes),
       (SELECT count(*) FROM outbox_deliveries),
       (SELECT count(*) FROM addressed WHERE recipient_id IS NULL),
       ARRAY(SELECT id FROM addressed WHERE recipient_id IS NULL ORDER BY id LIMIT 10)
""".replace("__NOTICE_FIELDS__", _NOTICE_FIELDS).replace("__OUTBOX__", outbox_sql("level1"))

# The notice fields `escalation_text` reads per row, in the order of the format() arguments.
_TEXT_FIELDS = (
    "case_number",
    "case_title",
    "responsible_agency",
    "rule_label",
    "rule_code",
    "due",
    "days_overdue",
)
_LEVEL1_SQL = _LEVEL1_SQL.replace(
    "__TEXT_COLUMNS__",
    ", ".join(f"e.data ->> '{name}' AS t{i}" for i, name in enumerate(_TEXT_FIELDS, start=1)),
).replace("__TEXT_ARGS__", ", ".join(f"a.t{i}" for i in range(1, len(_TEXT_FIELDS) + 1)))


def _text_formats(level: int, ack_due_at: dt.datetime) -> tuple[str, str]:
    """`escalation_text` as PostgreSQL format() strings (%1$s… = _TEXT_FIELDS), so the SQL
    path writes exactly the subject and body the Python path writes."""
    marks = {name: f"\x00{i}\x00" for i, name in enumerate(_TEXT_FIELDS, start=1)}
    subject, body = escalation_text({**marks, "level": level, "ack_due_at": ack_due_at})

    def to_format(text: str) -> str:
        text = text.replace("%", "%%")
        for i, _name in enumerate(_TEXT_FIELDS, start=1):
            text = text.replace(f"\x00{i}\x00", f"%{i}$s")
        return text

    return to_format(subject), to_format(body)


def _sql_params(ctx: SweepContext, **extra: Any) -> dict[str, Any]:
    return {
        "now": ctx.now,
        "today": ctx.today,
        "batch": ctx.batch_size,
        "ack_due_at": ctx.ack_due_at,
        "labels": json.dumps(RULE_LABELS, ensure_ascii=False),
        "duty": DUTY,
        **extra,
    }


def _fetch_rows(sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    with bulk_cursor() as cur:
        cur.execute(sql, params)
        names = [col.name for col in cur.description]
        rows = [dict(zip(names, values, strict=True)) for values in cur.fetchall()]
    for row in rows:
        if isinstance(row.get("data"), str):
            row["data"] = json.loads(row["data"])
    return rows


def _notice(clock: Clock, case: Case, level: int, agency: Agency | None, ctx: SweepContext):
    owner = clock.agency if clock.agency_id else case.holder_agency
    return {
        "title": "督办单",
        "case_id": case.pk,
        "case_number": case.number,
        "case_title": case.title,
        "clock_id": clock.pk,
        "rule_code": clock.rule_code,
        "rule_label": RULE_LABELS.get(clock.rule_code),
        "due": clock.due.isoformat(),
        "due_at": clock.due_at.isoformat(),
        "generation": clock.generation,
        "days_overdue": max((ctx.today - clock.due).days, 0),
        "holder_agency_id": case.holder_agency_id,
        "holder_agency": case.holder_agency.name,
        "responsible_agency_id": owner.pk,
        "responsible_agency": owner.name,
        "assignee_id": case.assignee_id,
        "issued_at": ctx.now.isoformat(),
        "ack_due_at": ctx.ack_due_at.isoformat(),
        "level": level,
        "agency_id": agency.pk if agency else None,
        "agency": agency.name if agency else None,
        "notes": [],
    }


def _level1_orm(ctx: SweepContext) -> list[dict[str, Any]]:
    has_level1 = Escalation.objects.filter(clock=OuterRef("pk"), level=1).exclude(
        status=EscalationStatus.SUPERSEDED
    )
    clocks = (
        Clock.objects.filter(status=ClockStatus.RUNNING, kind=DUTY, due_at__lte=ctx.now)
        .exclude(Exists(has_level1))
        .select_related("case__holder_agency", "agency")
        .order_by("due_at", "id")[: ctx.batch_size]
    )
    rows = []
    for clock in clocks:
        case = clock.case
        owner = clock.agency if clock.agency_id else case.holder_agency
        esc = Escalation.objects.create(
            clock=clock,
            case=case,
            level=1,
            agency=owner,
            created_at=ctx.now,
            ack_due_at=ctx.ack_due_at,
            data=_notice(clock, case, 1, owner, ctx),
        )
        rows.append(
            {
                "id": esc.pk,
                "clock_id": clock.pk,
                "case_id": case.pk,
                "level": 1,
                "agency_id": esc.agency_id,
                "data": esc.data,
            }
        )
    return rows


def escalate_overdue(ctx: SweepContext, *, budget: float | None = None) -> int:
    """Level 1 for running duty clocks past due that have none yet. Batches until done.

    Each pass reads up to CLIMB_WINDOW_FACTOR batches of candidate ids in one statement, then
    claims and escalates them batch by batch, one statement and one short transaction each
    (escalations, notifications and deliveries together), on SWEEP_PARALLEL_BATCHES
    connections at once (`_map_batches`, `_chunks`). A pass that found more than a window is
    followed by another; a pass that escalated nothing ends the loop (the rest is locked by
    someone else: the next sweep gets it).
    """
    if not is_postgres():
        return _escalate_overdue_orm(ctx, budget=budget)
    started = time.monotonic()
    total = 0
    window = ctx.batch_size * CLIMB_WINDOW_FACTOR
    subject_format, body_format = _text_formats(1, ctx.ack_due_at)
    # One row past the window tells whether another pass is needed (no empty last pass, which
    # re-reads every overdue clock the pass just escalated).
    params = _sql_params(
        ctx, window=window + 1, subject_format=subject_format, body_format=body_format
    )

    def batch(ids: list[int]) -> tuple[int, int, int, int, list[int]]:
        with _statement_transaction(), bulk_cursor() as cur:
            cur.execute(_LEVEL1_SQL, {**params, "ids": ids})
            return cur.fetchone()

    while True:
        with bulk_cursor() as cur:
            cur.execute(_LEVEL1_CANDIDATES_SQL, params)
            candidates = [row[0] for row in cur.fetchall()]
        more = len(candidates) > window
        chunks = _chunks(candidates[:window], ctx.batch_size, workers=_batch_workers())
        escalated = 0
        for n, notes, deliveries, unaddressed, examples in _map_batches(
            chunks, batch, should_stop=lambda: _over(started, budget)
        ):
            ctx.counts.batches += 1
            ctx.counts.escalated += n
            ctx.counts.escalated_level1 += n
            ctx.counts.notifications_queued += notes
            ctx.counts.deliveries_queued += deliveries
            if unaddressed:
                ctx.counts.escalations_without_recipients += unaddressed
                logger.warning(
                    "%d escalations have no recipient (no head / supervisors), e.g. ids %s",
                    unaddressed,
                    examples,
                )
            escalated += n
        total += escalated
        if not more or not escalated or _over(started, budget):
            return total


T = TypeVar("T")


def _statement_transaction() -> Any:
    """The transaction of a batch that is ONE statement: in autocommit the statement is its
    own transaction (claim, escalations and outbox commit together or not at all, deferred
    foreign keys checked at its end), without the BEGIN and COMMIT round trips, each of which,
    on a busy machine, waits for the CPU again. Inside a caller's transaction (tests,
    `sweep_bench`) a savepoint, so that a failed batch leaves the caller's transaction usable.
    """
    return transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()


def _batch_workers() -> int:
    """How many batches `_map_batches` runs at once: SWEEP_PARALLEL_BATCHES, or 1 inside a
    caller's transaction (whose rows other connections cannot see)."""
    if connection.in_atomic_block:
        return 1
    return max(1, int(getattr(settings, "SWEEP_PARALLEL_BATCHES", 2)))


def _chunks(ids: list[int], size: int, *, workers: int) -> list[list[int]]:
    """`ids` in batches of at most `size`, as many as `workers` or a multiple of that, equal in
    size: the connections finish together instead of one of them doing a last batch alone
    (10,000 ids at 2,000 on two connections: 6 × 1,667, not 5 × 2,000)."""
    if not ids:
        return []
    count = -(-len(ids) // size)
    if count > 1:
        count = -(-count // workers) * workers
    step = -(-len(ids) // count)
    return [ids[i : i + step] for i in range(0, len(ids), step)]


def _map_batches(
    batches: list[list[int]], work: Callable[[list[int]], T], *, should_stop: Callable[[], bool]
) -> list[T]:
    """`work(batch)` for each batch (each is its own transaction), in order on this thread, or
    on SWEEP_PARALLEL_BATCHES connections at once: this thread's own, and one for each extra
    thread (closed when done).

    In parallel when there is more than one batch and no caller's transaction is open (a
    transaction's rows are invisible to other connections: tests and `sweep_bench` without
    --keep stay on one connection). Two batches at once cannot block each other: their clock
    ids are disjoint and the case rows are only KEY SHARE locked. No new batch is started once
    `should_stop()` is true or a batch failed; the first failure is re-raised.
    """
    workers = min(_batch_workers(), len(batches))
    if workers <= 1:
        results = []
        for ids in batches:
            results.append(work(ids))
            if should_stop():
                break
        return results
    todo: queue.SimpleQueue[list[int]] = queue.SimpleQueue()
    for ids in batches:
        todo.put(ids)
    results: list[T] = []
    errors: list[BaseException] = []

    def run(extra_thread: bool) -> None:
        try:
            while not errors and not should_stop():
                try:
                    ids = todo.get_nowait()
                except queue.Empty:
                    return
                results.append(work(ids))
        except BaseException as exc:
            errors.append(exc)
        finally:
            if extra_thread:
                connection.close()  # that thread's connection

    threads = [
        threading.Thread(target=run, args=(True,), name=f"sweep-batch-{i}", daemon=True)
        for i in range(1, workers)
    ]
    for thread in threads:
        thread.start()
    run(False)  # this thread too, on its connection (already open, its caches warm)
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def _escalate_overdue_orm(ctx: SweepContext, *, budget: float | None = None) -> int:
    started = time.monotonic()
    total = 0
    while True:
        with transaction.atomic():
            rows = _level1_orm(ctx)
            if rows:
                _queue(_escalation_specs(rows, ctx), ctx)
        ctx.counts.batches += 1
        total += len(rows)
        if len(rows) < ctx.batch_size or _over(started, budget):
            return total


def _over(started: float, budget: float | None) -> bool:
    return budget is not None and time.monotonic() - started > budget


# Escalations: climbing to levels 2 and 3 ----------------------------------------------------

_CLIMB_SQL = """
WITH candidates AS MATERIALIZED (
    -- Live candidates only (partial index escalation_climb_idx), a bounded window: the rest
    -- of the statement then joins by primary key whatever the planner's statistics say.
    SELECT e.id FROM escalation_escalation e
    WHERE e.status = 'open' AND e.climb_done_at IS NULL AND e.level < 3
      AND e.ack_due_at <= %(now)s
    ORDER BY e.ack_due_at, e.id
    LIMIT %(window)s
),
claimed AS (
    SELECT e.id AS prev_id, e.clock_id, e.case_id, e.level + 1 AS level,
           c.rule_code, c.due, c.due_at, c.generation, c.agency_id AS owner_id,
           EXISTS (
               SELECT 1 FROM escalation_escalation x
               WHERE x.clock_id = e.clock_id AND x.status <> 'superseded'
                 AND (x.level > e.level OR x.status <> 'open')
           ) AS blocked
    FROM candidates cd
    JOIN escalation_escalation e ON e.id = cd.id
    JOIN deadlines_clock c ON c.id = e.clock_id
    JOIN cases_case k ON k.id = e.case_id
    WHERE e.status = 'open' AND e.climb_done_at IS NULL
      AND c.status = 'running' AND c.due_at <= %(now)s
    ORDER BY e.ack_due_at, e.id
    LIMIT %(batch)s
    FOR NO KEY UPDATE OF e SKIP LOCKED
    FOR KEY SHARE OF c, k SKIP LOCKED
),
marked AS (
    UPDATE escalation_escalation p SET climb_done_at = %(now)s
    FROM claimed cl WHERE p.id = cl.prev_id
),
routed AS (
    -- Up the ladder of the agency that owes the duty (the holder, or an unaccepting receiver).
    SELECT cl.*, k.holder_agency_id,
           CASE WHEN cl.level = 2
                THEN (%(targets2)s::jsonb
                      ->> COALESCE(cl.owner_id, k.holder_agency_id)::text)::bigint
                ELSE (%(targets3)s::jsonb
                      ->> COALESCE(cl.owner_id, k.holder_agency_id)::text)::bigint
           END AS target_id
    FROM claimed cl JOIN cases_case k ON k.id = cl.case_id
    WHERE NOT cl.blocked
)
INSERT INTO escalation_escalation
    (clock_id, case_id, level, status, agency_id, created_at, ack_due_at, resolution, data)
SELECT cl.clock_id, cl.case_id, cl.level, 'open', cl.target_id, %(now)s, %(ack_due_at)s, '',
       jsonb_build_object(__NOTICE_FIELDS__,
           'level', cl.level, 'agency_id', cl.target_id, 'agency', t.name,
           'previous_escalation_id', cl.prev_id, 'notes', '[]'::jsonb)
FROM routed cl
JOIN cases_case k ON k.id = cl.case_id
JOIN agencies_agency h ON h.id = k.holder_agency_id
LEFT JOIN agencies_agency o ON o.id = cl.owner_id
LEFT JOIN agencies_agency t ON t.id = cl.target_id
ON CONFLICT (clock_id, level) WHERE status <> 'superseded' DO NOTHING
RETURNING id, clock_id, case_id, level, agency_id, data
""".replace("__NOTICE_FIELDS__", _NOTICE_FIELDS)


def _climb_orm(ctx: SweepContext) -> list[dict[str, Any]]:
    blocked = (
        Escalation.objects.filter(clock=OuterRef("clock_id"))
        .exclude(status=EscalationStatus.SUPERSEDED)
        .filter(Q(level__gt=OuterRef("level")) | ~Q(status=EscalationStatus.OPEN))
    )
    candidates = (
        Escalation.objects.filter(
            status=EscalationStatus.OPEN,
            climb_done_at__isnull=True,
            level__lt=3,
            ack_due_at__lte=ctx.now,
            clock__status=ClockStatus.RUNNING,
            clock__due_at__lte=ctx.now,
        )
        .annotate(blocked=Exists(blocked))
        .select_related("clock", "clock__agency", "case__holder_agency")
        .order_by("ack_due_at", "id")[: ctx.batch_size]
    )
    rows = []
    for prev in candidates:
        Escalation.objects.filter(pk=prev.pk).update(climb_done_at=ctx.now)
        if prev.blocked:
            continue
        level = prev.level + 1
        case = prev.case
        target_id = ctx.ladder.target(prev.clock.agency_id or case.holder_agency_id, level)
        target = Agency.objects.filter(pk=target_id).first() if target_id else None
        data = _notice(prev.clock, case, level, target, ctx)
        data["previous_escalation_id"] = prev.pk
        esc = Escalation.objects.create(
            clock=prev.clock,
            case=case,
            level=level,
            agency=target,
            created_at=ctx.now,
            ack_due_at=ctx.ack_due_at,
            data=data,
        )
        rows.append(
            {
                "id": esc.pk,
                "clock_id": esc.clock_id,
                "case_id": case.pk,
                "level": level,
                "agency_id": esc.agency_id,
                "data": data,
            }
        )
    return rows


def escalations_climb(ctx: SweepContext, *, budget: float | None = None) -> int:
    """The next level for open escalations nobody acknowledged within `escalation.ack`.

    Only the top level of a clock climbs, only while the clock runs and is overdue, and never
    after anyone acknowledged or resolved any level of it (签收 stops the climb).
    """
    started = time.monotonic()
    total = 0
    params = _sql_params(
        ctx,
        targets2=json.dumps(ctx.ladder.targets(2)),
        targets3=json.dumps(ctx.ladder.targets(3)),
        window=ctx.batch_size * CLIMB_WINDOW_FACTOR,
    )
    while True:
        with transaction.atomic():
            rows = _fetch_rows(_CLIMB_SQL, params) if is_postgres() else _climb_orm(ctx)
            if rows:
                _queue(_escalation_specs(rows, ctx), ctx)
        ctx.counts.batches += 1
        total += len(rows)
        if len(rows) < ctx.batch_size or _over(started, budget):
            return total


# 督办单 numbers ----------------------------------------------------------------------------------

# Each escalation's 督办单 is issued by the supervising agency (level 1: the township 综治中心
# over the agency that owes the duty, else that agency itself; levels 2 and 3: the escalation's
# own agency) and numbered 督字〔year〕第N号 from the issuer's counter for the year. Numbering is
# its own short step after the escalations are created, not part of the (parallel) creation
# batches: the counter row lock would serialise them. The number is final once given.
_NUMBER_SQL = """
WITH todo AS (
    SELECT e.id, e.level, e.agency_id, e.created_at
    FROM escalation_escalation e
    WHERE e.notice_year IS NULL
    ORDER BY e.id
    LIMIT %(batch)s
    FOR NO KEY UPDATE SKIP LOCKED
),
issued AS (
    SELECT t.id,
           COALESCE(CASE WHEN t.level = 1
                         THEN (%(targets2)s::jsonb ->> t.agency_id::text)::bigint END,
                    t.agency_id) AS issuer_id,
           extract(year FROM t.created_at AT TIME ZONE 'Asia/Shanghai')::int AS year,
           row_number() OVER (
               PARTITION BY COALESCE(CASE WHEN t.level = 1
                                          THEN (%(targets2)s::jsonb ->> t.agency_id::text)::bigint
                                     END, t.agency_id),
                            extract(year FROM t.created_at AT TIME ZONE 'Asia/Shanghai')
               ORDER BY t.id) AS rn
    FROM todo t
),
counts AS (
    SELECT issuer_id, year, count(*) AS n FROM issued WHERE issuer_id IS NOT NULL
    GROUP BY issuer_id, year
),
counters AS (
    INSERT INTO escalation_noticesequence (agency_id, year, last_value)
    SELECT issuer_id, year, n FROM counts
    ON CONFLICT (agency_id, year) DO UPDATE
        SET last_value = escalation_noticesequence.last_value + EXCLUDED.last_value
    RETURNING agency_id, year, last_value
)
UPDATE escalation_escalation e
SET issuer_id = i.issuer_id, notice_year = i.year,
    notice_number = CASE WHEN i.issuer_id IS NULL THEN NULL
                         ELSE q.last_value - c.n + i.rn END
FROM issued i
LEFT JOIN counts c ON c.issuer_id = i.issuer_id AND c.year = i.year
LEFT JOIN counters q ON q.agency_id = i.issuer_id AND q.year = i.year
WHERE e.id = i.id
"""


def notice_issuer_id(ladder: Ladder, level: int, agency_id: int | None) -> int | None:
    """The agency that issues a level's 督办单 (the Python twin of `_NUMBER_SQL`)."""
    if agency_id is None:
        return None
    if level == 1:
        return ladder.target(agency_id, 2) or agency_id
    return agency_id


def escalations_number_notices(ctx: SweepContext) -> int:
    """Give every escalation without one its issuer and 督办单 number. Batches until done."""
    total = 0
    targets2 = json.dumps(ctx.ladder.targets(2))
    while True:
        with transaction.atomic():
            if is_postgres():
                with connection.cursor() as cur:
                    cur.execute(_NUMBER_SQL, {"batch": ctx.batch_size, "targets2": targets2})
                    n = cur.rowcount
            else:
                n = _number_orm(ctx)
        total += n
        if n < ctx.batch_size:
            return total


def _number_orm(ctx: SweepContext) -> int:
    from mediation.escalation.models import NoticeSequence

    rows = list(
        Escalation.objects.filter(notice_year__isnull=True).order_by("id")[: ctx.batch_size]
    )
    for esc in rows:
        year = esc.created_at.astimezone(SHANGHAI).year
        issuer = notice_issuer_id(ctx.ladder, esc.level, esc.agency_id)
        number = None
        if issuer is not None:
            NoticeSequence.objects.get_or_create(agency_id=issuer, year=year)
            seq = NoticeSequence.objects.select_for_update().get(agency_id=issuer, year=year)
            seq.last_value += 1
            seq.save(update_fields=["last_value"])
            number = seq.last_value
        Escalation.objects.filter(pk=esc.pk).update(
            issuer_id=issuer, notice_year=year, notice_number=number
        )
    return len(rows)


# Reminders ----------------------------------------------------------------------------------

_CANCEL_STALE_REMINDERS_SQL = """
UPDATE deadlines_reminder r
SET status = 'cancelled', cancelled_at = %(now)s, cancel_reason = 'stale_at_sweep'
WHERE r.id IN (
    SELECT r2.id FROM deadlines_reminder r2
    JOIN deadlines_clock c ON c.id = r2.clock_id
    WHERE r2.status = 'planned' AND r2.send_at <= %(now)s
      AND (c.status <> 'running' OR c.generation <> r2.generation OR c.kind <> %(duty)s)
    LIMIT %(batch)s
    FOR UPDATE OF r2 SKIP LOCKED)
"""

_SEND_REMINDERS_SQL = """
WITH claimed AS (
    SELECT r.id, r.clock_id
    FROM deadlines_reminder r
    JOIN deadlines_clock c ON c.id = r.clock_id
    JOIN cases_case k ON k.id = c.case_id
    WHERE r.status = 'planned' AND r.send_at <= %(upper)s AND r.send_at > %(lower)s
      AND c.status = 'running' AND c.generation = r.generation AND c.kind = %(duty)s
      __BY_ID__
    ORDER BY r.send_at, r.id
    LIMIT %(limit)s
    FOR UPDATE OF r SKIP LOCKED
    FOR KEY SHARE OF k SKIP LOCKED
)
UPDATE deadlines_reminder r
SET status = 'sent', sent_at = %(now)s, digested = %(digested)s
FROM claimed cl
JOIN deadlines_clock c ON c.id = cl.clock_id
JOIN cases_case k ON k.id = c.case_id
JOIN agencies_agency a ON a.id = COALESCE(c.agency_id, k.holder_agency_id)
WHERE r.id = cl.id
RETURNING r.id AS reminder_id, r.offset_code, r.send_at, c.id AS clock_id, c.rule_code,
          c.due, c.due_at, k.id AS case_id, k.number AS case_number, k.title AS case_title,
          CASE WHEN c.agency_id IS NULL THEN k.assignee_id END AS assignee_id,
          COALESCE(c.agency_id, k.holder_agency_id) AS holder_agency_id, a.head_id
"""
# A reminder goes to the agency that owes the duty (`Clock.agency`, else the holder): its head,
# and the case's assignee when that agency is the holder.
# The digest claim takes the oldest DIGEST_CAP in one statement. The one-by-one reminders are
# claimed by id from a candidate list read once per pass, like level 1 (`_LEVEL1_SQL`): a
# burst of reminders shares one send_at (09:00), so "the first N by send_at, id" per batch
# meant reading and sorting the whole burst once per batch.
_SEND_REMINDERS_BY_ID_SQL = _SEND_REMINDERS_SQL.replace(
    "__BY_ID__", "AND r.id = ANY(%(ids)b::bigint[])"
)
_SEND_REMINDERS_SQL = _SEND_REMINDERS_SQL.replace("__BY_ID__", "")
_REMINDER_CANDIDATES_SQL = """
SELECT r.id FROM deadlines_reminder r
WHERE r.status = 'planned' AND r.send_at <= %(upper)s AND r.send_at > %(lower)s
ORDER BY r.send_at, r.id
LIMIT %(window)s
"""


def _reminders_cancel_stale(ctx: SweepContext) -> int:
    if is_postgres():
        total = 0
        while True:
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute(_CANCEL_STALE_REMINDERS_SQL, _sql_params(ctx))
                n = cur.rowcount
            total += n
            if n < ctx.batch_size:
                return total
    stale = (
        Reminder.objects.filter(status=ReminderStatus.PLANNED, send_at__lte=ctx.now)
        .filter(
            ~Q(clock__status=ClockStatus.RUNNING)
            | ~Q(generation=F("clock__generation"))
            | ~Q(clock__kind=DUTY)
        )
        .values_list("pk", flat=True)
    )
    return Reminder.objects.filter(pk__in=list(stale)).update(
        status=ReminderStatus.CANCELLED, cancelled_at=ctx.now, cancel_reason="stale_at_sweep"
    )


def _claim_reminders_orm(
    ctx: SweepContext, *, lower: dt.datetime, upper: dt.datetime, limit: int, digested: bool
) -> list[dict[str, Any]]:
    qs = (
        Reminder.objects.filter(
            status=ReminderStatus.PLANNED,
            send_at__lte=upper,
            send_at__gt=lower,
            clock__status=ClockStatus.RUNNING,
            generation=F("clock__generation"),
            clock__kind=DUTY,
        )
        .select_related("clock__case__holder_agency", "clock__agency")
        .order_by("send_at", "id")[:limit]
    )
    rows = []
    for r in qs:
        case = r.clock.case
        owner = r.clock.agency if r.clock.agency_id else case.holder_agency
        Reminder.objects.filter(pk=r.pk, status=ReminderStatus.PLANNED).update(
            status=ReminderStatus.SENT, sent_at=ctx.now, digested=digested
        )
        rows.append(
            {
                "reminder_id": r.pk,
                "offset_code": r.offset_code,
                "send_at": r.send_at,
                "clock_id": r.clock_id,
                "rule_code": r.clock.rule_code,
                "due": r.clock.due,
                "due_at": r.clock.due_at,
                "case_id": case.pk,
                "case_number": case.number,
                "case_title": case.title,
                "assignee_id": None if r.clock.agency_id else case.assignee_id,
                "holder_agency_id": owner.pk,
                "head_id": owner.head_id,
            }
        )
    return rows


def _claim_reminders(
    ctx: SweepContext, *, lower: dt.datetime, upper: dt.datetime, limit: int, digested: bool
) -> list[dict[str, Any]]:
    if not is_postgres():
        return _claim_reminders_orm(ctx, lower=lower, upper=upper, limit=limit, digested=digested)
    params = _sql_params(ctx, lower=lower, upper=upper, limit=limit, digested=digested)
    return _fetch_rows(_SEND_REMINDERS_SQL, params)


def _reminder_recipients(row: dict[str, Any]) -> list[int]:
    return sorted({u for u in (row["assignee_id"], row["head_id"]) if u})


def _reminder_specs(rows: list[dict[str, Any]], ctx: SweepContext) -> list[NotificationSpec]:
    specs = []
    for row in rows:
        label = RULE_LABELS.get(row["rule_code"], row["rule_code"])
        subject = f"【期限提醒】{row['case_number']} {label} {row['due'].isoformat()} 到期"
        body = "\n".join(
            [
                f"案号：{row['case_number']}",
                f"案件：{row['case_title']}",
                f"期限：{label}（{row['rule_code']}）",
                f"到期日：{row['due'].isoformat()}（{_remaining(row['due'], ctx)}）",
            ]
        )
        for i, user_id in enumerate(_reminder_recipients(row)):
            hook = row["holder_agency_id"] if i == 0 else None
            specs.append(
                NotificationSpec(
                    recipient_id=user_id,
                    kind=str(NotificationKind.REMINDER),
                    case_id=row["case_id"],
                    subject=subject,
                    body=body,
                    key=f"reminder:{row['reminder_id']}:user:{user_id}",
                    data={
                        "reminder_id": row["reminder_id"],
                        "clock_id": row["clock_id"],
                        "offset": row["offset_code"],
                        "webhook_agency_id": hook,
                    },
                    webhook_agency_id=hook,
                )
            )
    return specs


DIGEST_AFTER_OUTAGE = "系统恢复运行，以下期限提醒在停机期间到期，合并发送："
DIGEST_PLAIN = "以下期限提醒已到发送时间，合并发送："


def _digest_specs(rows: list[dict[str, Any]], ctx: SweepContext) -> list[NotificationSpec]:
    """One digest per recipient. Each clock is listed once, however many of its reminders
    (3 and 1 working days before, the due day) fell due together; every reminder id is kept in
    the notification's data (and in the idempotency key's hash)."""
    per_user: dict[int, dict[int, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        for user_id in _reminder_recipients(row):
            per_user[user_id][row["clock_id"]].append(row)
    specs = []
    intro = DIGEST_AFTER_OUTAGE if ctx.after_outage else DIGEST_PLAIN
    for user_id, by_clock in sorted(per_user.items()):
        ids = sorted(r["reminder_id"] for group in by_clock.values() for r in group)
        items = sorted(
            (
                max(group, key=lambda r: (r["send_at"], r["reminder_id"]))
                for group in by_clock.values()
            ),
            key=lambda r: (r["due"], r["clock_id"]),
        )
        digest = hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()[:20]
        body = "\n".join([intro] + [f"· {reminder_line(r, ctx)}" for r in items])
        case_ids = {r["case_id"] for r in items}
        specs.append(
            NotificationSpec(
                recipient_id=user_id,
                kind=str(NotificationKind.DIGEST),
                case_id=case_ids.pop() if len(case_ids) == 1 else None,
                subject=f"【期限提醒汇总】您有 {len(items)} 项期限需要关注",
                body=body,
                key=f"digest:user:{user_id}:{digest}",
                data={"reminder_ids": ids, "clock_ids": sorted(by_clock)},
            )
        )
    ctx.counts.digests += len(specs)
    return specs


def reminders_send_due(ctx: SweepContext, *, budget: float | None = None) -> int:
    """Send reminders whose time has come.

    Those overdue by more than REMINDER_DIGEST_AFTER_SECONDS (an outage, a stopped beat) are
    claimed together (up to DIGEST_CAP) and folded into ONE digest notification per recipient;
    the rest go out one notification per reminder and recipient. The reminder rows are marked
    sent in the same transaction as the notifications are written.
    """
    started = time.monotonic()
    ctx.counts.reminders_cancelled += _reminders_cancel_stale(ctx)
    cutoff = ctx.now - dt.timedelta(seconds=settings.REMINDER_DIGEST_AFTER_SECONDS)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    sent = 0
    with transaction.atomic():
        rows = _claim_reminders(ctx, lower=epoch, upper=cutoff, limit=DIGEST_CAP, digested=True)
        if rows:
            _queue(_digest_specs(rows, ctx), ctx)
    ctx.counts.batches += 1
    ctx.counts.reminders_digested += len(rows)
    sent += len(rows)
    if is_postgres():
        sent += _reminders_send_postgres(ctx, lower=cutoff, started=started, budget=budget)
    else:
        while True:
            with transaction.atomic():
                rows = _claim_reminders(
                    ctx, lower=cutoff, upper=ctx.now, limit=ctx.batch_size, digested=False
                )
                if rows:
                    _queue(_reminder_specs(rows, ctx), ctx)
            ctx.counts.batches += 1
            sent += len(rows)
            if len(rows) < ctx.batch_size or _over(started, budget):
                break
    ctx.counts.reminders_sent += sent
    return sent


def _reminders_send_postgres(
    ctx: SweepContext, *, lower: dt.datetime, started: float, budget: float | None
) -> int:
    """The one-by-one reminders: candidates read once per pass, claimed by id in batches
    (`_map_batches`: in parallel when no caller's transaction is open)."""
    window = ctx.batch_size * CLIMB_WINDOW_FACTOR
    params = _sql_params(
        ctx, lower=lower, upper=ctx.now, limit=ctx.batch_size, digested=False, window=window + 1
    )

    def batch(ids: list[int]) -> tuple[int, Any]:
        with transaction.atomic():
            rows = _fetch_rows(_SEND_REMINDERS_BY_ID_SQL, {**params, "ids": ids})
            specs = _reminder_specs(rows, ctx)
            return len(rows), notifications_create_bulk(specs, now=ctx.now)

    sent = 0
    while True:
        with bulk_cursor() as cur:
            cur.execute(_REMINDER_CANDIDATES_SQL, params)
            candidates = [row[0] for row in cur.fetchall()]
        more = len(candidates) > window  # one row past the window: another pass is needed
        chunks = _chunks(candidates[:window], ctx.batch_size, workers=_batch_workers())
        claimed = 0
        for n, created in _map_batches(chunks, batch, should_stop=lambda: _over(started, budget)):
            ctx.counts.batches += 1
            ctx.counts.notifications_queued += created.notifications
            ctx.counts.deliveries_queued += created.deliveries
            claimed += n
        sent += claimed
        if not more or not claimed or _over(started, budget):
            return sent


# The whole sweep -----------------------------------------------------------------------------


def runner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class SweepResult:
    run_id: int
    now: dt.datetime
    counts: SweepCounts
    duration_ms: int


def sweep_run(
    *,
    now: dt.datetime,
    trigger: str,
    batch_size: int | None = None,
    budget_seconds: float | None = None,
    wall_clock: Callable[[], dt.datetime] = clock_now,
) -> SweepResult:
    """One full sweep at `now`: re-date clocks after holiday-data changes, resolve stale
    escalations, escalate, climb, send reminders.

    Idempotent: a second sweep at the same `now` finds nothing to do. Recorded as a SweepRun
    (started, finished, counts) for health checks and duplicate-beat observability.
    """
    started = time.monotonic()
    last_swept = (
        SweepRun.objects.filter(finished_at__isnull=False)
        .order_by("-finished_at")
        .values_list("swept_until", flat=True)
        .first()
    )
    run = SweepRun.objects.create(
        started_at=wall_clock(), swept_until=now, trigger=trigger[:32], runner=runner_name()
    )
    # First, so that nothing escalates against a calendar that was just corrected.
    moved = 0
    if HolidayChange.objects.filter(status=HolidayChangeStatus.PENDING).exists():
        # Half the budget: the steps below must still fit in the task's time limit.
        budget = None if budget_seconds is None else budget_seconds / 2
        moved = holidays_recompute_pending(now=now, budget=budget).clocks_moved
        close_old_connections_if_idle()
    ctx = make_context(now=now, batch_size=batch_size)
    ctx.counts.holiday_clocks_moved = moved
    ctx.after_outage = (
        last_swept is not None
        and (now - last_swept).total_seconds() > settings.REMINDER_DIGEST_AFTER_SECONDS
    )
    try:
        escalations_resolve_stale(ctx)
        close_old_connections_if_idle()
        escalate_overdue(ctx, budget=budget_seconds)
        close_old_connections_if_idle()
        escalations_climb(ctx, budget=budget_seconds)
        close_old_connections_if_idle()
        escalations_number_notices(ctx)
        close_old_connections_if_idle()
        reminders_send_due(ctx, budget=budget_seconds)
    except Exception as exc:
        SweepRun.objects.filter(pk=run.pk).update(
            counts=ctx.counts.as_dict(), error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        raise
    duration_ms = int((time.monotonic() - started) * 1000)
    counts = ctx.counts.as_dict() | {"duration_ms": duration_ms}
    finished = wall_clock()
    SweepRun.objects.filter(pk=run.pk).update(finished_at=finished, counts=counts)
    _prune_sweep_runs(finished)
    logger.info("sweep %s at %s: %s", run.pk, now.isoformat(), counts)
    return SweepResult(run_id=run.pk, now=now, counts=ctx.counts, duration_ms=duration_ms)


def _prune_sweep_runs(now: dt.datetime) -> None:
    """Keep SWEEP_RUN_RETENTION_DAYS of sweep log (a run every 30 s is ~20,000 rows a week)."""
    horizon = now - dt.timedelta(days=settings.SWEEP_RUN_RETENTION_DAYS)
    old = list(SweepRun.objects.filter(finished_at__lt=horizon).values_list("pk", flat=True)[:1000])
    if old:
        SweepRun.objects.filter(pk__in=old).delete()


def close_old_connections_if_idle() -> None:
    """Replace a broken connection between steps (not inside a test's or caller's atomic)."""
    if not connection.in_atomic_block:
        close_old_connections()
