"""Benchmark 1: the escalation sweep on N open clocks with 10,000 newly overdue.

Each run, on the same data, in this order (state restored and VACUUM ANALYZEd between, the
overdue clocks and their cases read once beforehand so that both start with them in memory):

1. floor: one bare `UPDATE deadlines_clock … RETURNING` of the 10,000 overdue rows (same
   predicate and partial index as the sweep, a no-op assignment, committed);
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


def floor(now: dt.datetime) -> tuple[float, int]:
    """The bare statement: touch and return the same 10,000 rows, one committed UPDATE."""
    from django.db import transaction

    started = time.perf_counter()
    with transaction.atomic(), _cursor() as cur:
        cur.execute(
            """
            UPDATE deadlines_clock c SET generation = c.generation
            WHERE c.status = 'running' AND c.kind = 'duty' AND c.due_at <= %s
            RETURNING c.id, c.case_id
            """,
            [now],
        )
        rows = cur.fetchall()
    return time.perf_counter() - started, len(rows)


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


def measure(*, orm: bool, profile: bool = False) -> dict[str, Any]:
    """One run: floor, sweep and (optionally) the ORM loop on the same 10,000 rows."""
    from mediation.core.clock import now as clock_now

    reset(cases=True)
    now = clock_now()
    expected = overdue_unescalated(now)
    if expected != OVERDUE_TARGET:
        raise SystemExit(f"expected {OVERDUE_TARGET} overdue clocks, found {expected}")
    warm(now)
    load = loadavg()
    floor_s, floor_rows = floor(now)
    with _cursor() as cur:
        cur.execute("VACUUM (ANALYZE) deadlines_clock")
    sweep_s, counts, text = sweep(now, profile=profile)
    row: dict[str, Any] = {
        "load_before": load,
        "floor_s": round(floor_s, 4),
        "floor_rows": floor_rows,
        "sweep_s": round(sweep_s, 4),
        "escalated": counts["escalated"],
        "notifications": counts["notifications_queued"],
        "deliveries": counts["deliveries_queued"],
        "left_overdue": overdue_unescalated(now),
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
            row.update(measure(orm=orm, profile=profile and i == 0))
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
