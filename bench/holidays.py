"""Benchmark 8: a new Spring Festival block re-dates 100,000 of 1,000,000 open clocks (issue 10).

Data: the bench database at the requested scale (`bench/datagen.py`: N open disputes, one
running duty clock each). `prepare()` shapes the clocks so that exactly N / 10 of them (case
id % 10 == 5) are `dispute.mediate` clocks started 2027-01-07 … 01-12 whose nominal due date
(02-06 … 02-11) falls in the 2027 Spring Festival, stored as the policy computes them today
(2027 has no holiday data: weekends only, provisional); every other running clock is due
before 2027-02-06 (untouched by the block). Then, each run, in this order:

1. floor: one bare committed `UPDATE deadlines_clock SET due = due, nominal_due = nominal_due,
   due_at = due_at` of the same N / 10 rows (no computation, no other table);
2. change + recompute: the administrator's change (`holiday_change`: 9 rest days 02-06 …
   02-14 and the 调休 Saturday 02-20, one transaction) and then `holidays_recompute_pending`,
   the job the sweep runs, until it returns: every touched clock re-dated (due 02-15), its
   reminders re-planned, its case's version and next_due_at updated, one CaseEvent per
   moved clock, one digest per recipient; batches of BATCH_SIZE, one transaction each.

Between runs the holiday rows, the change log, the new events, reminders and notifications
are removed and the clocks put back (`reset`). Peak RSS of this process is reported: the
recompute holds one batch of clocks at a time.
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import time
from typing import Any

from bench.common import SCALES, loadavg, log, median

BLOCK_REST = [dt.date(2027, 2, 6) + dt.timedelta(days=i) for i in range(9)]
BLOCK_WORK = [dt.date(2027, 2, 20)]
SOURCE = "国办发明电〔2026〕（基准测试）"
# Nominal due 02-06 … 02-11: due 02-08 … 02-11 on weekends only, all 02-15 after the block.
STARTS = [dt.date(2027, 1, 7) + dt.timedelta(days=i) for i in range(6)]


def _cursor():
    from django.db import connection

    return connection.cursor()


def _variants() -> list[dict[str, Any]]:
    """The 8 stored states of the touched clocks, as the policy computes them now."""
    from mediation.core.clock import end_of_day
    from mediation.deadlines import policy
    from mediation.deadlines.calendar_source import current_calendar

    out = []
    for start in STARTS:
        d = policy.compute_deadline("dispute.mediate", start, calendar=current_calendar())
        out.append(
            {
                "start": start,
                "nominal": d.nominal_due,
                "due": d.due,
                "due_at": end_of_day(d.due),
                "provisional": d.provisional,
                "explanation": json.dumps(list(d.explanation), ensure_ascii=False),
            }
        )
    return out


def prepare(today: dt.date) -> int:
    """Shape the clocks (module docstring); returns the number of touched clocks."""
    from django.db import transaction

    variants = _variants()
    with transaction.atomic(), _cursor() as cur:
        # Untouched: every running clock due after today (the sweep's newly overdue ones stay).
        cur.execute(
            """
            UPDATE deadlines_clock c
            SET due = %(today)s::date + 7 + (c.case_id %% 50)::int,
                nominal_due = %(today)s::date + 7 + (c.case_id %% 50)::int,
                due_at = ((%(today)s::date + 8 + (c.case_id %% 50)::int)::timestamp
                          AT TIME ZONE 'Asia/Shanghai')
            WHERE c.status = 'running' AND c.due > %(today)s AND c.case_id %% 10 <> 5
              AND c.due <> %(today)s::date + 7 + (c.case_id %% 50)::int
            """,
            {"today": today},
        )
        cur.execute(
            """
            UPDATE deadlines_clock c
            SET rule_code = 'dispute.mediate', start_date = v.start, nominal_due = v.nominal,
                due = v.due, due_at = v.due_at, provisional = v.provisional,
                explanation = v.explanation::jsonb, extra_days = 0, paused_days = 0
            FROM unnest(%(n)s::int[], %(start)s::date[], %(nominal)s::date[], %(due)s::date[],
                        %(due_at)s::timestamptz[], %(prov)s::bool[], %(expl)s::text[])
                 AS v(n, start, nominal, due, due_at, provisional, explanation)
            WHERE c.status = 'running' AND c.case_id %% 10 = 5
              AND (c.case_id / 10) %% %(variants)s = v.n
              AND c.due > %(today)s
            """,
            {
                "today": today,
                "variants": len(variants),
                "n": list(range(len(variants))),
                "start": [v["start"] for v in variants],
                "nominal": [v["nominal"] for v in variants],
                "due": [v["due"] for v in variants],
                "due_at": [v["due_at"] for v in variants],
                "prov": [v["provisional"] for v in variants],
                "expl": [v["explanation"] for v in variants],
            },
        )
        cur.execute(
            """
            UPDATE cases_case k SET next_due_at = c.due_at
            FROM deadlines_clock c
            WHERE c.case_id = k.id AND c.status = 'running' AND k.id %% 10 = 5
              AND k.next_due_at IS DISTINCT FROM c.due_at
            """,
            [],
        )
        cur.execute(
            "SELECT count(*) FROM deadlines_clock WHERE status = 'running' AND case_id %% 10 = 5"
            " AND start_date >= %s",
            [STARTS[0]],
        )
        return cur.fetchone()[0]


def reset(today: dt.date) -> None:
    """Undo a run: holiday rows, change log, new events, reminders, notifications; clocks."""
    from django.db import transaction

    with transaction.atomic(), _cursor() as cur:
        cur.execute("SET LOCAL session_replication_role = replica")  # the audit-trail triggers
        cur.execute(
            "DELETE FROM deadlines_holidayoverride WHERE date BETWEEN '2027-02-01' AND '2027-02-28'"
        )
        cur.execute("DELETE FROM deadlines_holidaychange")
        cur.execute("DELETE FROM cases_caseevent WHERE transition = 'holiday_recompute'")
        cur.execute(
            "DELETE FROM notifications_delivery d USING notifications_notification n"
            " WHERE d.notification_id = n.id AND n.key LIKE 'holiday:%%'",
            [],
        )
        cur.execute("DELETE FROM notifications_notification WHERE key LIKE 'holiday:%%'", [])
        cur.execute(
            "DELETE FROM deadlines_reminder r USING deadlines_clock c"
            " WHERE r.clock_id = c.id AND c.case_id %% 10 = 5 AND c.start_date >= %s",
            [STARTS[0]],
        )
    prepare(today)
    with _cursor() as cur:
        for table in ("deadlines_clock", "cases_case", "deadlines_reminder", "cases_caseevent"):
            cur.execute(f"VACUUM (ANALYZE) {table}")


def warm() -> None:
    with _cursor() as cur:
        cur.execute(
            "SELECT count(*), sum(length(k.title)) FROM deadlines_clock c"
            " JOIN cases_case k ON k.id = c.case_id WHERE c.status = 'running'"
        )
        cur.fetchall()


def floor(touched: int) -> float:
    from django.db import transaction

    started = time.perf_counter()
    with transaction.atomic(), _cursor() as cur:
        cur.execute(
            """
            UPDATE deadlines_clock c
            SET due = c.due, nominal_due = c.nominal_due, due_at = c.due_at
            WHERE c.status = 'running' AND c.case_id %% 10 = 5 AND c.start_date >= %s
            """,
            [STARTS[0]],
        )
        assert cur.rowcount == touched, (cur.rowcount, touched)
    return time.perf_counter() - started


def change_and_recompute(now: dt.datetime) -> tuple[float, float, dict[str, int]]:
    from mediation.deadlines.holidays import holiday_change
    from mediation.deadlines.models import HolidayOverride
    from mediation.escalation.recalendar import holidays_recompute_pending

    started = time.perf_counter()
    with holiday_change(now=now, source=SOURCE):
        HolidayOverride.objects.bulk_create(
            [
                HolidayOverride(date=d, is_workday=False, name="春节", source=SOURCE)
                for d in BLOCK_REST
            ]
            + [
                HolidayOverride(date=d, is_workday=True, name="春节", source=SOURCE)
                for d in BLOCK_WORK
            ]
        )
    changed = time.perf_counter() - started
    counts = holidays_recompute_pending(now=now)
    return changed, time.perf_counter() - started, counts.as_dict()


def measure(today: dt.date, now: dt.datetime, touched: int) -> dict[str, Any]:
    from django.db import connection

    from mediation.escalation.recalendar import BATCH_SIZE

    reset(today)
    warm()
    load = loadavg()
    floor_s = floor(touched)
    reset(today)
    warm()
    change_s, total_s, counts = change_and_recompute(now)
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM deadlines_clock WHERE status = 'running'"
            " AND case_id %% 10 = 5 AND start_date >= %s AND due = '2027-02-15'",
            [STARTS[0]],
        )
        (due_15,) = cur.fetchone()
    if counts["clocks_moved"] != touched or due_15 != touched:
        raise SystemExit(f"expected {touched} clocks moved to 2027-02-15, got {counts} {due_15}")
    return {
        "load_before": load,
        "floor_s": round(floor_s, 3),
        "change_s": round(change_s, 3),
        "recompute_s": round(total_s, 3),
        "recompute_over_floor": round(total_s / floor_s, 1),
        "clocks_per_s": round(touched / total_s),
        "counts": counts,
        "due_2027_02_15": due_15,
        "batch_size": BATCH_SIZE,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def run(*, scale: str, runs: int) -> dict[str, Any]:
    from mediation.core.clock import local_date
    from mediation.core.clock import now as clock_now

    now = clock_now()
    today = local_date(now)
    touched = prepare(today)
    log(f"holidays: {touched} of {SCALES[scale]} open clocks in the Spring Festival block")
    rows = []
    for i in range(runs):
        row = {"run": i + 1, **measure(today, now, touched)}
        log(f"holidays run {i + 1}/{runs}: {row}")
        rows.append(row)
    reset(today)
    summary = {
        "touched": touched,
        "floor_s": median(r["floor_s"] for r in rows),
        "recompute_s": median(r["recompute_s"] for r in rows),
        "recompute_over_floor": median(r["recompute_over_floor"] for r in rows),
        "clocks_per_s": median(r["clocks_per_s"] for r in rows),
        "loads": [r["load_before"] for r in rows],
    }
    log(f"holidays {scale} medians of {runs}: {summary}")
    return {"scale": scale, "runs": rows, "median": summary}
