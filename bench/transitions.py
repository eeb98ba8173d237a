"""Benchmark 3: case transitions over HTTP, and the web workers' memory (5).

Per run: gunicorn with the project's config (`deploy/gunicorn.conf.py`: sync workers,
max_requests 2000, JSON access log with the duration) and WEB_CONCURRENCY=2, bound to
127.0.0.1 on a free port. `clients` threads (`bench.loadgen`, one kept-alive connection
each) then take fresh `registered` disputes (ids ≡ 2, 3 mod 10, never the overdue or
delivery ones) and run two transitions on each through the API with the token of the
village head (role supervisor, the case's holder):

    POST /api/cases/{id}/transitions/triage/  {"risk_level": "low"}
    POST /api/cases/{id}/transitions/assign/  {"to_agency": <the township's 综治中心>}

Each does its full work in `case_transition`: lock, permission, form, event, clock
reconciliation (triage stops the triage clock, assign starts `dispute.assign_ack` and opens a
referral) and reminder planning, then the API serialises the case detail. Cases are spread
over the 1,000 villages, so 1,000 users share the load (the per-user throttle is 1,200/min).
Peak RSS of the gunicorn workers is sampled (psutil, 5 Hz).
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import loadgen
from bench.common import REPO, VENV_BIN, bench_env, loadavg, log, median
from bench.procs import Proc, RssSampler, cpu_pressure, free_port, wait_until

PER_TOWNSHIP = 50  # villages per township (bench.datagen)


def _cases(limit: int) -> list[tuple[int, int, str]]:
    """(case id, village index, token) of fresh registered disputes, spread over villages."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT k.id, k.holder_agency_id - 1000, t.key
            FROM cases_case k
            JOIN agencies_agency a ON a.id = k.holder_agency_id
            JOIN authtoken_token t ON t.user_id = a.head_id
            WHERE k.state = 'registered' AND k.id %% 10 IN (2, 3)
            ORDER BY k.id
            LIMIT %s
            """,
            [limit],
        )
        return list(cur.fetchall())


def _jobs(cases: list[tuple[int, int, str]]) -> Iterator[list[loadgen.Request]]:
    for case_id, village, token in cases:
        headers = {"Authorization": f"Token {token}"}
        township_peace_office = 11 + 2 * (village // PER_TOWNSHIP)
        yield [
            loadgen.Request(
                "POST",
                f"/api/cases/{case_id}/transitions/triage/",
                {"risk_level": "low"},
                headers,
                name="triage",
            ),
            loadgen.Request(
                "POST",
                f"/api/cases/{case_id}/transitions/assign/",
                {"to_agency": township_peace_office},
                headers,
                name="assign",
            ),
        ]


_ACCESS = re.compile(r'"POST /api/cases/\d+/transitions/\w+/ HTTP/1\.1" (\d{3}) \S+ (\d+)ms')


def server_durations(log_path: Path) -> list[float]:
    """Request durations (ms) of the transitions in gunicorn's access log."""
    out = []
    for line in log_path.read_text(errors="replace").splitlines():
        text = line
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                text = json.loads(line).get("message", "")
        m = _ACCESS.search(text)
        if m and m.group(1) == "200":
            out.append(float(m.group(2)))
    return out


def one_run(*, clients: int, duration: float, workers: int = 2) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-web-"))
    port = free_port()
    env = bench_env(WEB_CONCURRENCY=str(workers), LOG_LEVEL="INFO", LOG_FORMAT="json")
    server = Proc(
        "gunicorn",
        [
            str(VENV_BIN / "gunicorn"),
            "--config",
            "deploy/gunicorn.conf.py",
            "-b",
            f"127.0.0.1:{port}",
            "mediation.wsgi:application",
        ],
        env=env,
        log=workdir / "gunicorn.log",
        cwd=REPO,
    )
    try:
        import http.client

        def up() -> bool:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                conn.request("GET", "/healthz")
                return conn.getresponse().status == 200
            except OSError:
                return False

        wait_until(up, timeout=60, what="gunicorn")
        wanted = int(duration * 600) + 2000  # more than 300 cases/s can use
        cases = _cases(wanted)
        if len(cases) < wanted // 4:
            raise SystemExit(f"only {len(cases)} fresh registered disputes left: rerun datagen")
        load, pressure = loadavg(), cpu_pressure()
        log_mark = (workdir / "gunicorn.log").stat().st_size
        with RssSampler({"gunicorn": server}) as rss:
            result = loadgen.run(port=port, jobs=_jobs(cases), clients=clients, duration=duration)
        time.sleep(0.5)
        text = (workdir / "gunicorn.log").read_bytes()[log_mark:].decode(errors="replace")
        (workdir / "access.log").write_text(text)
        server_ms = server_durations(workdir / "access.log")
        result.update(
            {
                "load_before": load,
                "cpu_pressure_avg10": pressure,
                "load_after": loadavg(),
                "transitions_per_s": result["ok_per_s"],
                "server_ms": {
                    "requests": len(server_ms),
                    "p50": loadgen.percentile(server_ms, 50),
                    "p95": loadgen.percentile(server_ms, 95),
                    "p99": loadgen.percentile(server_ms, 99),
                },
                "memory": rss.report(),
                "workdir": str(workdir),
            }
        )
        return result
    finally:
        server.stop()


def run(*, scale: str, runs: int, duration: float, clients: int) -> dict[str, Any]:
    rows = []
    for i in range(runs):
        row = {"run": i + 1, **one_run(clients=clients, duration=duration)}
        brief = {
            k: row[k]
            for k in ("transitions_per_s", "p50_ms", "p95_ms", "p99_ms", "statuses", "load_before")
        }
        brief["server_p99_ms"] = row["server_ms"]["p99"]
        brief["gunicorn_peak_rss_mib"] = row["memory"]["gunicorn"]["peak_rss_mib_max"]
        log(f"transitions run {i + 1}/{runs}: {json.dumps(brief)}")
        rows.append(row)
    summary = {
        "clients": clients,
        "transitions_per_s": median(r["transitions_per_s"] for r in rows),
        "p50_ms": median(r["p50_ms"] for r in rows),
        "p99_ms": median(r["p99_ms"] for r in rows),
        "server_p99_ms": median(r["server_ms"]["p99"] for r in rows),
        "peak_web_worker_rss_mib": max(r["memory"]["gunicorn"]["peak_rss_mib_max"] for r in rows),
        "loads": [r["load_before"] for r in rows],
    }
    log(f"transitions {scale} medians of {runs}: {json.dumps(summary)}")
    return {"scale": scale, "runs": rows, "median": summary}
