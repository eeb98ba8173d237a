"""Refreshing the statistics rollups (`models`): one full, set-based recompute.

Why a full recompute and not an incremental one: every number is attributed to the case's
*current* holder agency (a referral or reassignment moves a case's whole history), clocks
change without a case event (extensions, holiday corrections recompute due dates), and a
running clock becomes overdue as time passes. A full recompute in a handful of
`INSERT … SELECT … GROUP BY` statements is correct by construction, whatever changed.

Guarantees:
- One transaction: readers see the previous rollups until the new ones commit, never a mix.
- Safe to run twice or concurrently: a transaction-level advisory lock (PostgreSQL)
  serialises refreshes; each replaces every row, so the result depends only on the data and
  `now`. (SQLite, the dev server's database, serialises writers by itself.)
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from django.db import connection, transaction
from django.utils import timezone

from mediation.cases.models import TERMINAL_STATES
from mediation.reports.models import StatsSnapshot

# pg_advisory_xact_lock key: "stats" in ASCII.
LOCK_KEY = 0x7374617473
WORK_MEM = "256MB"  # the time-in-state window sort runs in memory at 1 M cases

_CLOSURE = """
closure (agency_id, scope_id) AS (
    SELECT id, id FROM agencies_agency
    UNION ALL
    SELECT c.agency_id, a.parent_id
    FROM closure c JOIN agencies_agency a ON a.id = c.scope_id
    WHERE a.parent_id IS NOT NULL
)"""


def _day(column: str) -> str:
    """The Asia/Shanghai calendar day of a timestamp column."""
    if connection.vendor == "postgresql":
        return f"(({column}) AT TIME ZONE 'Asia/Shanghai')::date"
    return f"date({column}, '+8 hours')"  # SQLite stores UTC text; China has no DST


def _month_start(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"date_trunc('month', {column})::date"
    return f"date({column}, 'start of month')"


def _seconds(later: str, earlier: str) -> str:
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM ({later}) - ({earlier}))"
    return f"((julianday({later}) - julianday({earlier})) * 86400.0)"


def _in_list(values: Iterable[str]) -> tuple[str, list[str]]:
    values = sorted(values)
    return ", ".join(["%s"] * len(values)), values


def _statements(now_param: object) -> list[tuple[str, list[object]]]:
    terminal_sql, terminal = _in_list(set().union(*TERMINAL_STATES.values()))
    return [
        (
            f"WITH RECURSIVE {_CLOSURE} "  # noqa: S608 (constants)
            "INSERT INTO reports_agencyscope (scope_id, agency_id) "
            "SELECT scope_id, agency_id FROM closure",
            [],
        ),
        (
            "INSERT INTO reports_opencasecount (agency_id, kind, state, n) "  # noqa: S608 (constants)
            "SELECT holder_agency_id, kind, state, COUNT(*) FROM cases_case "
            f"WHERE state NOT IN ({terminal_sql}) GROUP BY holder_agency_id, kind, state",
            terminal,
        ),
        (
            "INSERT INTO reports_ontimedaily (agency_id, day, stopped, on_time) "  # noqa: S608 (constants)
            f"SELECT c.holder_agency_id, {_day('k.stopped_at')}, COUNT(*), "
            "SUM(CASE WHEN k.stopped_at <= k.due_at THEN 1 ELSE 0 END) "
            "FROM deadlines_clock k JOIN cases_case c ON c.id = k.case_id "
            "WHERE k.kind = 'duty' AND k.status = 'stopped' "
            f"GROUP BY c.holder_agency_id, {_day('k.stopped_at')}",
            [],
        ),
        (
            "INSERT INTO reports_ontimemonthly (agency_id, month, stopped, on_time) "  # noqa: S608
            f"SELECT agency_id, {_month_start('day')}, SUM(stopped), SUM(on_time) "
            f"FROM reports_ontimedaily GROUP BY agency_id, {_month_start('day')}",
            [],
        ),
        (
            f"WITH RECURSIVE {_CLOSURE}, "  # noqa: S608 (constants)
            "leaf (agency_id, day, due, overdue) AS ("
            " SELECT c.holder_agency_id, k.due, COUNT(*),"
            " SUM(CASE WHEN (k.status = 'stopped' AND k.stopped_at > k.due_at)"
            " OR (k.status = 'running' AND k.due_at < %s) THEN 1 ELSE 0 END)"
            " FROM deadlines_clock k JOIN cases_case c ON c.id = k.case_id"
            " WHERE k.kind = 'duty' GROUP BY c.holder_agency_id, k.due) "
            "INSERT INTO reports_duedaily (scope_id, day, due, overdue) "
            "SELECT cl.scope_id, l.day, SUM(l.due), SUM(l.overdue) "
            "FROM leaf l JOIN closure cl ON cl.agency_id = l.agency_id "
            "GROUP BY cl.scope_id, l.day",
            [now_param],
        ),
        (
            f"WITH RECURSIVE {_CLOSURE}, "  # noqa: S608 (constants)
            "leaf (agency_id, day, kind, category_id, channel_id, n) AS ("
            f" SELECT holder_agency_id, {_day('registered_at')}, kind, category_id, channel_id,"
            " COUNT(*) FROM cases_case"
            f" GROUP BY holder_agency_id, {_day('registered_at')}, kind, category_id,"
            " channel_id) "
            "INSERT INTO reports_registereddaily (scope_id, day, kind, category_id, channel_id, n) "
            "SELECT cl.scope_id, l.day, l.kind, l.category_id, l.channel_id, SUM(l.n) "
            "FROM leaf l JOIN closure cl ON cl.agency_id = l.agency_id "
            "GROUP BY cl.scope_id, l.day, l.kind, l.category_id, l.channel_id",
            [],
        ),
        # A stay in a state runs from the event that entered it to the event that left it.
        # The audit trail is a chain (each state-changing event leaves the state the previous
        # one entered), so the entering event is the previous state-changing event of the
        # case; events that stay in their state (notes, extensions) are not stays' ends.
        (
            f"WITH RECURSIVE {_CLOSURE}, "  # noqa: S608 (constants)
            "moves (case_id, from_state, at, prev_state, prev_at) AS ("
            " SELECT case_id, from_state, at,"
            " LAG(to_state) OVER (PARTITION BY case_id ORDER BY version),"
            " LAG(at) OVER (PARTITION BY case_id ORDER BY version)"
            " FROM cases_caseevent WHERE from_state <> to_state), "
            "leaf (agency_id, day, kind, state, n, seconds) AS ("
            f" SELECT c.holder_agency_id, {_day('m.at')}, c.kind, m.from_state, COUNT(*),"
            f" SUM({_seconds('m.at', 'm.prev_at')})"
            " FROM moves m JOIN cases_case c ON c.id = m.case_id"
            " WHERE m.from_state <> '' AND m.prev_state = m.from_state"
            f" GROUP BY c.holder_agency_id, {_day('m.at')}, c.kind, m.from_state) "
            "INSERT INTO reports_statetimedaily (scope_id, day, kind, state, n, seconds) "
            "SELECT cl.scope_id, l.day, l.kind, l.state, SUM(l.n), SUM(l.seconds) "
            "FROM leaf l JOIN closure cl ON cl.agency_id = l.agency_id "
            "GROUP BY cl.scope_id, l.day, l.kind, l.state",
            [],
        ),
    ]


ROLLUP_TABLES = (
    "reports_agencyscope",
    "reports_opencasecount",
    "reports_ontimedaily",
    "reports_ontimemonthly",
    "reports_duedaily",
    "reports_registereddaily",
    "reports_statetimedaily",
)


def stats_refresh(*, now, only_if_missing: bool = False) -> StatsSnapshot:
    """Recompute every rollup from the case, clock and event tables as of `now`.

    With `only_if_missing`, do nothing if a snapshot exists (checked under the lock, so
    simultaneous first page views compute it once).
    """
    started = time.monotonic()
    with transaction.atomic():
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
                # SET takes no bound parameter (server-side binding would refuse it):
                # set_config() is the same SET LOCAL as a function call.
                cursor.execute("SELECT set_config('work_mem', %s, true)", [WORK_MEM])
            if only_if_missing:
                existing = StatsSnapshot.objects.filter(pk=1).first()
                if existing is not None:
                    return existing
            for table in ROLLUP_TABLES:
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608 (constant names)
            now_param = connection.ops.adapt_datetimefield_value(now)
            for sql, params in _statements(now_param):
                cursor.execute(sql, params)
        snapshot, _created = StatsSnapshot.objects.update_or_create(
            pk=1,
            defaults={
                "as_of": now,
                "finished_at": timezone.now(),
                "duration_ms": int((time.monotonic() - started) * 1000),
            },
        )
    return snapshot
