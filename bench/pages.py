"""Benchmark 4: supervisor pages on the bench database, server time measured in-process.

The escalation queue and the statistics page are requested through Django's test client
(the whole middleware stack, view, queries and template rendering; no network), logged in as
a village head (level-1 queue of one village), a township 综治中心 supervisor (level-2 queue of
50 villages) and a county supervisor (statistics over every case). Before measuring, the
real sweep escalates the 10,000 overdue clocks (level 1) and, five days later, climbs them
to level 2, so the queues hold what a supervisor would see after a bad week. Then the
statistics rollups are refreshed once (`reports.services.stats_refresh`, what the beat runs
every 10 minutes); its duration is reported as `stats_refresh_ms`. The statistics page reads
those rollups (default period: this month and the two before).

Per page and user: 3 warm-up requests, then `requests` timed ones; p50/p95/max and the
number of SQL queries of one request are reported. (The county supervisor's queue holds no
escalations here: nothing reached level 3. Their statistics cover all 1,000 villages.)
The agency case list (`/cases/agency/`, every user's landing list) is measured the same way,
outside the benchmark's target.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import time
from typing import Any

from bench.common import loadavg, log, median
from bench.loadgen import percentile

USERS = {
    "village_head": 10000,  # b-v0-head, supervisor of village 0
    "township_supervisor": 5000,  # b-t0-s0, township 0's 综治中心
    "county_supervisor": 100,  # b-county-s0, the county 综治中心 (all 1,000 villages)
}
PAGES = {
    "queue_dashboard": "/supervision/",
    "queue_partial": "/supervision/queue/",
    "statistics": "/stats/",
    # Not part of benchmark 4's target; measured because it is every user's landing list:
    # the agency's open cases, most urgent first (`Case.next_due_at`, capped count).
    "case_list": "/cases/agency/",
}


def prepare() -> dict[str, int]:
    """Level-1 escalations for the overdue clocks, then the climb to level 2 (5 days on), then
    one statistics refresh."""
    from django.db import connection

    from bench import sweep as sweep_bench
    from mediation.core.clock import now as clock_now
    from mediation.escalation.sweeps import sweep_run
    from mediation.reports.services import stats_refresh

    sweep_bench.reset(cases=False)
    now = clock_now()
    first = sweep_run(now=now, trigger="bench-pages")
    second = sweep_run(now=now + dt.timedelta(days=5), trigger="bench-pages")
    with connection.cursor() as cur:
        for table in ("escalation_escalation", "notifications_notification"):
            cur.execute(f"VACUUM (ANALYZE) {table}")
    t0 = time.perf_counter()
    stats_refresh(now=now)
    refresh_ms = round((time.perf_counter() - t0) * 1000)
    return {
        "level1": first.counts.escalated_level1,
        "level2": second.counts.escalated_level2,
        "stats_refresh_ms": refresh_ms,
    }


def measure(path: str, user_id: int, requests: int) -> dict[str, Any]:
    from django.db import connection
    from django.test import Client

    from mediation.accounts.models import User

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(User.objects.get(pk=user_id))
    for _ in range(3):
        response = client.get(path)
        if response.status_code != 200:
            return {"status": response.status_code}
    queries = [0]

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        queries[0] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        client.get(path)
    times = []
    for _ in range(requests):
        t0 = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
    return {
        "status": response.status_code,
        "bytes": len(response.content),
        "queries": queries[0],
        "p50_ms": percentile(times, 50),
        "p95_ms": percentile(times, 95),
        "max_ms": round(max(times), 1),
        "mean_ms": round(statistics.fmean(times), 1),
    }


def one_run(
    requests: int, searches: dict[str, str] | None = None, only_search: bool = False
) -> dict[str, Any]:
    from bench import search

    out: dict[str, Any] = {"load_before": loadavg()}
    if not only_search:
        for page, path in PAGES.items():
            for who, user_id in USERS.items():
                out[f"{page}/{who}"] = measure(path, user_id, requests)
    if searches:
        out.update(search.run(measure, searches, requests))
    out["load_after"] = loadavg()
    return out


def run(*, scale: str, runs: int, requests: int = 20, only_search: bool = False) -> dict[str, Any]:
    """Benchmark 4's pages, then the search box of issue 13 (`bench/search.py`); with
    `only_search`, the search alone (no sweep, no statistics refresh)."""
    from bench import search

    searches = search.prepare()
    log(f"pages: search entries {searches}")
    if only_search:
        rows = []
        for i in range(runs):
            row = {"run": i + 1, **one_run(requests, searches, only_search=True)}
            log(
                f"search run {i + 1}/{runs}: "
                + json.dumps({k: v.get("p95_ms") for k, v in row.items() if isinstance(v, dict)})
            )
            rows.append(row)
        return _summary(scale, runs, rows, {"searches": searches})
    prepared = prepare()
    log(f"pages: escalations {prepared}")
    rows = []
    for i in range(runs):
        row = {"run": i + 1, **one_run(requests, searches)}
        log(
            f"pages run {i + 1}/{runs}: "
            + json.dumps({k: v.get("p95_ms") for k, v in row.items() if isinstance(v, dict)})
        )
        rows.append(row)
    return _summary(scale, runs, rows, {"escalations": prepared, "searches": searches})


def _summary(scale: str, runs: int, rows: list[dict[str, Any]], extra: dict) -> dict[str, Any]:
    keys = [k for k, v in rows[0].items() if isinstance(v, dict)]
    summary: dict[str, Any] = {
        k: {
            "p95_ms": median(r[k]["p95_ms"] for r in rows),
            "p50_ms": median(r[k]["p50_ms"] for r in rows),
            "queries": rows[0][k]["queries"],
        }
        for k in keys
        if rows[0][k].get("status") == 200
    }
    summary["loads"] = [r["load_before"] for r in rows]
    log(f"pages {scale} medians of {runs}: {json.dumps(summary)}")
    return {"scale": scale, **extra, "runs": rows, "median": summary}
