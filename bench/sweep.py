"""Benchmark 1: the escalation sweep on N open clocks with 10,000 newly overdue.

Each run, on the same data (state restored and VACUUM ANALYZEd between, the overdue clocks and
their cases read once before each, so that both start with them in memory), floor and sweep
in alternating order from run to run (the second finds what the first brought into memory):

1. floor: the irreducible work of the sweep's level 1, done as the sweep does it (`floor`):
   the same candidate read, the same batches on the same connections, each one statement
   claiming the clocks under the same locks and inserting the same 40,000 rows (escalations,
   notifications, e-mail and webhook deliveries) into the same tables, with their indexes and
   foreign keys, with minimal content; then those rows are removed again (VACUUM ANALYZE);
2. sweep: `sweep_run(now=…)`, the production entry point, from its start until it returns:
   10,000 level-1 escalations with their 督办单, 10,000 notifications and 20,000 e-mail and
   webhook deliveries committed (batches of SWEEP_BATCH_SIZE, one transaction each);
3. ORM loop: the same work one row at a time in the style of django-helpdesk's
   `escalate_tickets` command (load each due row, create the escalation, its notification and
   deliveries, change the case and `save()` it; autocommit, no surrounding transaction).

The ratios sweep/floor and orm/sweep are taken within the same run.
"""

from __future__ import annotations

import cProfile
import datetime as dt
import io
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import OVERDUE_TARGET, REPO, RESULTS, bench_env, loadavg, log, median

ENGINE_TABLES = (
    "notifications_delivery",
    "notifications_notification",
    "escalation_escalation",
    "escalation_sweeprun",
)


def _cursor():
    from django.db import connection

    return connection.cursor()


def overdue_unescalated(now: dt.datetime) -> int:
    with _cursor() as cur:
        cur.execute(
            """
            SELECT count(*) FROM deadlines_clock c
            WHERE c.status = 'running' AND c.kind = 'duty' AND c.due_at <= %s
              AND NOT EXISTS (SELECT 1 FROM escalation_escalation e
                              WHERE e.clock_id = c.id AND e.level = 1)
            """,
            [now],
        )
        return cur.fetchone()[0]


def reset(*, vacuum: bool = True, cases: bool = False) -> None:
    """Remove every escalation, notification, delivery and sweep log row; VACUUM ANALYZE."""
    with _cursor() as cur:
        for table in ENGINE_TABLES:
            cur.execute(f"DELETE FROM {table}")
        cur.execute("UPDATE deadlines_reminder SET status = 'cancelled' WHERE status = 'planned'")
        if cases:
            cur.execute("UPDATE cases_case SET supervised = false WHERE supervised")
        if vacuum:
            tables = [*ENGINE_TABLES, "deadlines_clock", "deadlines_reminder"]
            if cases:
                tables.append("cases_case")
            for table in tables:
                cur.execute(f"VACUUM (ANALYZE) {table}")


def warm(now: dt.datetime) -> None:
    """Read the overdue clocks and their cases once, so that neither the floor nor the sweep
    pays for pages the other brought into memory (at 5 M rows they start out on disk)."""
    with _cursor() as cur:
        cur.execute(
            """
            SELECT count(*), sum(length(k.title))
            FROM deadlines_clock c JOIN cases_case k ON k.id = c.case_id
            WHERE c.status = 'running' AND c.kind = 'duty' AND c.due_at <= %s
            """,
            [now],
        )
        cur.fetchall()


_FLOOR_SQL = """
WITH claimed AS (
    SELECT c.id AS clock_id, c.case_id
    FROM deadlines_clock c
    JOIN cases_case k ON k.id = c.case_id
    WHERE c.id = ANY(%(ids)s::bigint[])
      AND c.status = 'running' AND c.kind = 'duty' AND c.due_at <= %(now)s
      AND NOT EXISTS (
          SELECT 1 FROM escalation_escalation x WHERE x.clock_id = c.id AND x.level = 1)
    ORDER BY c.due_at, c.id
    FOR NO KEY UPDATE OF c SKIP LOCKED
    FOR KEY SHARE OF k SKIP LOCKED
),
escalated AS (
    INSERT INTO escalation_escalation
        (clock_id, case_id, level, status, agency_id, created_at, ack_due_at, resolution, data)
    SELECT cl.clock_id, cl.case_id, 1, 'open', k.holder_agency_id, %(now)s, %(now)s, '', '{}'
    FROM claimed cl JOIN cases_case k ON k.id = cl.case_id
    ON CONFLICT (clock_id, level) DO NOTHING
    RETURNING id, case_id, agency_id
),
notes AS (
    INSERT INTO notifications_notification
        (recipient_id, kind, case_id, subject, body, key, data, created_at)
    SELECT a.head_id, 'escalation', e.case_id, '', '', 'floor:' || e.id, '{}', %(now)s
    FROM escalated e JOIN agencies_agency a ON a.id = e.agency_id
    WHERE a.head_id IS NOT NULL
    ON CONFLICT (key) DO NOTHING
    RETURNING id
),
deliveries AS (
    INSERT INTO notifications_delivery
        (notification_id, channel, status, attempts, next_attempt_at, created_at, claimed_by,
         address, last_error)
    SELECT n.id, ch.channel, 'pending', 0, %(now)s, %(now)s, '', '', ''
    FROM notes n CROSS JOIN (VALUES ('email'), ('webhook')) AS ch(channel)
    RETURNING 1
)
SELECT (SELECT count(*) FROM escalated), (SELECT count(*) FROM notes),
       (SELECT count(*) FROM deliveries)
"""


def floor(now: dt.datetime) -> tuple[float, dict[str, int]]:
    """The irreducible work of the sweep's level 1, as the sweep does it: the same candidate
    read, the same batches on the same number of connections at once (`_chunks`,
    `_map_batches`), each one statement that claims the clocks under the same locks and
    inserts the same rows (an escalation, a notification to the holder's head, its e-mail and
    webhook deliveries: 40,000 for 10,000 clocks) into the same tables, with their indexes,
    unique keys and foreign keys, with minimal content (no notice fields, no text, no
    preference joins)."""
    from mediation.core.db import bulk_cursor
    from mediation.escalation.sweeps import (
        _LEVEL1_CANDIDATES_SQL,
        CLIMB_WINDOW_FACTOR,
        _batch_workers,
        _chunks,
        _map_batches,
        make_context,
    )

    ctx = make_context(now=now)
    window = ctx.batch_size * CLIMB_WINDOW_FACTOR
    params = {"now": now, "duty": "duty", "window": window + 1}
    counts = {"escalated": 0, "notifications": 0, "deliveries": 0}

    def batch(ids: list[int]) -> tuple[int, int, int]:
        with bulk_cursor() as cur:
            cur.execute(_FLOOR_SQL, {"now": now, "ids": ids})
            return cur.fetchone()

    started = time.perf_counter()
    while True:
        with bulk_cursor() as cur:
            cur.execute(_LEVEL1_CANDIDATES_SQL, params)
            candidates = [row[0] for row in cur.fetchall()]
        chunks = _chunks(candidates[:window], ctx.batch_size, workers=_batch_workers())
        escalated = 0
        for n, notes, deliveries in _map_batches(chunks, batch, should_stop=lambda: False):
            escalated += n
            counts["escalated"] += n
            counts["notifications"] += notes
            counts["deliveries"] += deliveries
        if len(candidates) <= window or not escalated:
            break
    return time.perf_counter() - started, counts


def sweep(now: dt.datetime, *, profile: bool = False) -> tuple[float, dict[str, int], str]:
    from mediation.escalation.sweeps import sweep_run

    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    result = sweep_run(now=now, trigger="bench")
    if profiler:
        profiler.disable()
    took = time.perf_counter() - started
    text = ""
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(35)
        text = out.getvalue()
    return took, result.counts.as_dict(), text


def orm_loop(now: dt.datetime) -> tuple[float, int]:
    """django-helpdesk `escalate_tickets` style: one row at a time, each save autocommitted."""
    from django.db.models import Exists, OuterRef

    from mediation.accounts.models import User
    from mediation.deadlines.models import Clock
    from mediation.escalation.models import Escalation
    from mediation.escalation.sweeps import _notice as notice
    from mediation.escalation.sweeps import escalation_text, make_context
    from mediation.notifications.models import Delivery, Notification

    started = time.perf_counter()
    ctx = make_context(now=now)
    has_level1 = Escalation.objects.filter(clock=OuterRef("pk"), level=1)
    due = (
        Clock.objects.filter(status="running", kind="duty", due_at__lte=now)
        .exclude(Exists(has_level1))
        .select_related("case__holder_agency")
        .order_by("due_at", "id")
    )
    n = 0
    for clock in due:
        case = clock.case.as_proxy()
        agency = case.holder_agency
        escalation = Escalation.objects.create(
            clock=clock,
            case=case,
            level=1,
            agency=agency,
            created_at=now,
            ack_due_at=ctx.ack_due_at,
            data=notice(clock, case, 1, agency, ctx),
        )
        recipient = User.objects.get(pk=agency.head_id or case.assignee_id)  # t.assigned_to
        subject, body = escalation_text(escalation.data)
        notification = Notification.objects.create(
            recipient=recipient,
            kind="escalation",
            case=case,
            subject=subject[:200],
            body=body,
            key=f"escalation:{escalation.pk}:user:{recipient.pk}",
            data={"escalation_id": escalation.pk, "level": 1, "clock_id": clock.pk},
            created_at=now,
        )
        if recipient.is_active and recipient.email:
            Delivery.objects.create(
                notification=notification, channel="email", next_attempt_at=now, created_at=now
            )
        if agency.webhook_url:
            Delivery.objects.create(
                notification=notification, channel="webhook", next_attempt_at=now, created_at=now
            )
        case.supervised = True  # t.last_escalation = now; t.priority -= 1
        case.save()  # t.save()
        n += 1
    return time.perf_counter() - started, n


def measure(*, orm: bool, profile: bool = False, floor_first: bool = True) -> dict[str, Any]:
    """One run: floor and sweep (in the order given: the second finds the caches the first
    warmed, so `run` alternates it) and optionally the ORM loop, on the same 10,000 rows."""
    from mediation.core.clock import now as clock_now

    reset(cases=True)
    now = clock_now()
    expected = overdue_unescalated(now)
    if expected != OVERDUE_TARGET:
        raise SystemExit(f"expected {OVERDUE_TARGET} overdue clocks, found {expected}")
    warm(now)
    load = loadavg()
    if floor_first:
        floor_s, floor_rows = floor(now)
        reset(cases=True)  # the floor's rows go; the sweep starts from the same tables
        warm(now)
        sweep_s, counts, text = sweep(now, profile=profile)
    else:
        sweep_s, counts, text = sweep(now, profile=profile)
        left = overdue_unescalated(now)
        reset(cases=True)
        warm(now)
        floor_s, floor_rows = floor(now)
    row: dict[str, Any] = {
        "order": ["floor", "sweep"] if floor_first else ["sweep", "floor"],
        "load_before": load,
        "floor_s": round(floor_s, 4),
        "floor_rows": floor_rows,
        "sweep_s": round(sweep_s, 4),
        "escalated": counts["escalated"],
        "notifications": counts["notifications_queued"],
        "deliveries": counts["deliveries_queued"],
        "left_overdue": overdue_unescalated(now) if floor_first else left,
        "sweep_over_floor": round(sweep_s / floor_s, 2),
    }
    if text:
        row["profile_text"] = text
    reset(cases=False)
    if orm:
        orm_s, orm_n = orm_loop(now)
        row.update(
            {
                "orm_s": round(orm_s, 2),
                "orm_rows": orm_n,
                "orm_over_sweep": round(orm_s / sweep_s, 1),
            }
        )
        reset(cases=True)
    row["load_after"] = loadavg()
    return row


# The files the optimisations of issue 5 changed (BENCHMARKS.md). A baseline is the current
# tree with these files as of a git ref, so that only the engine code differs.
ENGINE_FILES = (
    "mediation/escalation/sweeps.py",
    "mediation/notifications/services.py",
    "mediation/notifications/channels.py",
    "workers/deliveries.py",
)


def _baseline_tree(ref: str) -> Path:
    """A copy of the working tree's `mediation/` and `workers/` with ENGINE_FILES as of `ref`."""
    root = Path(tempfile.mkdtemp(prefix=f"bench-{ref.replace('/', '_')}-"))
    for package in ("mediation", "workers"):
        shutil.copytree(
            REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    for name in ENGINE_FILES:
        text = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{ref}:{name}"],
            capture_output=True,
            check=True,
        ).stdout
        (root / name).write_bytes(text)
    return root


def _measure_in(code_root: Path | None, *, orm: bool) -> dict[str, Any]:
    """`measure` in a fresh process whose `mediation` package comes from `code_root`."""
    path = [str(code_root)] if code_root else []
    env = bench_env(PYTHONPATH=os.pathsep.join([*path, str(REPO)]))
    argv = [sys.executable, "-m", "bench.sweep", "--orm" if orm else "--no-orm"]
    out = subprocess.run(argv, env=env, cwd=code_root or REPO, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"sweep measurement failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(
    *, scale: str, runs: int, orm: bool = True, profile: bool = False, baseline: str | None = None
) -> dict[str, Any]:
    """`runs` runs; with `baseline` (a git ref) each run first measures that ref's sweep, then
    the working tree's, both in fresh processes, so the pair shares the machine's load."""
    from django.conf import settings

    base_root = _baseline_tree(baseline) if baseline else None
    rows: list[dict[str, Any]] = []
    profile_text = ""
    for i in range(runs):
        row: dict[str, Any] = {"run": i + 1}
        if base_root:
            before = _measure_in(base_root, orm=False)
            row["baseline"] = before
            current = _measure_in(None, orm=orm)
            row.update(current)
            row["baseline_over_current"] = round(before["sweep_s"] / current["sweep_s"], 2)
        else:
            row.update(measure(orm=orm, profile=profile and i == 0, floor_first=i % 2 == 0))
            profile_text = profile_text or row.pop("profile_text", "")
        log(f"sweep run {i + 1}/{runs}: {row}")
        rows.append(row)
    summary: dict[str, Any] = {
        "floor_s": median(r["floor_s"] for r in rows),
        "sweep_s": median(r["sweep_s"] for r in rows),
        "sweep_over_floor": median(r["sweep_over_floor"] for r in rows),
        "escalations_per_s": round(OVERDUE_TARGET / median(r["sweep_s"] for r in rows)),
        "loads": [r["load_before"] for r in rows],
    }
    if orm:
        summary["orm_s"] = median(r["orm_s"] for r in rows)
        summary["orm_over_sweep"] = median(r["orm_over_sweep"] for r in rows)
    if base_root:
        summary["baseline"] = baseline
        summary["baseline_sweep_s"] = median(r["baseline"]["sweep_s"] for r in rows)
        summary["baseline_sweep_over_floor"] = median(
            r["baseline"]["sweep_over_floor"] for r in rows
        )
        summary["baseline_over_current"] = median(r["baseline_over_current"] for r in rows)
    if profile_text:
        path = RESULTS / f"sweep-profile-{scale}.txt"
        RESULTS.mkdir(parents=True, exist_ok=True)
        path.write_text(profile_text)
        summary["profile"] = str(path.relative_to(REPO))
    log(f"sweep {scale} medians of {runs}: {summary}")
    return {
        "scale": scale,
        "runs": rows,
        "median": summary,
        "batch_size": settings.SWEEP_BATCH_SIZE,
    }


if __name__ == "__main__":  # one measurement in this process, JSON on the last line
    from bench.common import setup_django

    setup_django()
    if os.environ.get("BENCH_SWEEP_PARALLEL"):
        from django.conf import settings

        settings.SWEEP_PARALLEL_BATCHES = int(os.environ["BENCH_SWEEP_PARALLEL"])
    print(json.dumps(measure(orm="--orm" in sys.argv[1:])))
