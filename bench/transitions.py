"""Benchmark 3: case transitions over HTTP against their floor, and the web workers' memory (5).

Per run: gunicorn with the project's config (`deploy/gunicorn.conf.py`: sync workers,
max_requests 2000, JSON access log with the duration) and WEB_CONCURRENCY=2, bound to
127.0.0.1 on a free port, serving the application plus the floor endpoint (`bench.settings`
→ `bench.urls` → `bench.floor`). Two phases on that one server, in alternating order from run
to run: `clients` threads (`bench.loadgen`, one kept-alive connection each) take fresh
`registered` disputes (ids ≡ 2, 3 mod 10, never the overdue or delivery ones; every other one
to each phase) and run two requests on each with the token of the village head (role
supervisor, the case's holder):

    transitions: POST /api/cases/{id}/transitions/triage/  {"risk_level": "low"}
                 POST /api/cases/{id}/transitions/assign/  {"to_agency": <the next village's
                                                            mediation committee>}
    floor:       POST /bench/floor/{id}/triage/  and  /bench/floor/{id}/assign/

A transition does its full work in `case_transition`: the visible case locked, permission,
form, event, clock reconciliation (triage stops the triage clock, assign starts
`dispute.assign_ack` and opens a referral), reminder planning, the case row with its next
due time, the receiver's notice, then the list summary as the answer. The floor does the
irreducible part of it in hand-written SQL (`bench.floor`). Each phase reports throughput,
latencies and CPU per request (gunicorn's processes and the PostgreSQL backends); the ratios
transitions/floor are the benchmark's result. Cases are spread over the 1,000 villages, so
1,000 users share the load (the per-user throttle is 1,200/min). Peak RSS of the gunicorn
workers is sampled (psutil, 5 Hz).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from bench import loadgen
from bench.common import DB_NAME, REPO, VENV_BIN, bench_env, loadavg, log, median
from bench.procs import Proc, RssSampler, cpu_pressure, free_port, wait_until

PER_TOWNSHIP = 50  # villages per township (bench.datagen)


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / tick, sum(fields[:8]) / tick


class CpuSampler:
    """Who burns the two cores during a run: CPU seconds of the bench process (the load
    generator, samplers included; its client threads alone are the loadgen result's
    `client_cpu_s`), the gunicorn tree (live workers and the workers it reaped), the
    PostgreSQL backends of the bench database, and the whole machine (/proc/stat)."""

    def __init__(self, server: Proc, every: float = 1.0):
        self.server = server
        self.every = every
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_loop, daemon=True)

    def _postgres(self) -> list[psutil.Process]:
        out = []
        for p in psutil.process_iter(["name", "cmdline"]):
            cmd = " ".join(p.info["cmdline"] or [])
            if p.info["name"] == "postgres" and f" {DB_NAME} " in f"{cmd} ":
                out.append(p)
        return out

    def _sample(self) -> None:
        for p in self._postgres():
            try:
                t = p.cpu_times()
            except psutil.NoSuchProcess:
                continue
            self._first.setdefault(p.pid, t.user + t.system)
            self._last[p.pid] = t.user + t.system

    def _sample_loop(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def _server_cpu(self) -> float:
        total = 0.0
        try:
            root = psutil.Process(self.server.pid)
            t = root.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
            children = root.children(recursive=True)
        except psutil.NoSuchProcess:
            return total
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                t = child.cpu_times()
                total += t.user + t.system
        return total

    def __enter__(self) -> CpuSampler:
        self._sample()
        # Backends alive now count from now; backends born later count from zero.
        self._baseline = set(self._first)
        self._t0 = time.perf_counter()
        self._self0 = time.process_time()
        self._server0 = self._server_cpu()
        self._machine0 = _machine_cpu()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.wall = time.perf_counter() - self._t0
        self.loadgen = time.process_time() - self._self0
        self.gunicorn = self._server_cpu() - self._server0
        self.postgres = sum(
            last - (self._first[pid] if pid in self._baseline else 0.0)
            for pid, last in self._last.items()
        )
        busy1, total1 = _machine_cpu()
        self.machine_busy = busy1 - self._machine0[0]
        self.machine_total = total1 - self._machine0[1]

    def report(self, transitions: int, client_threads: float) -> dict[str, Any]:
        def share(seconds: float) -> float:
            return round(100 * seconds / self.machine_total, 1) if self.machine_total else 0.0

        def per(seconds: float) -> float | None:
            return round(1000 * seconds / transitions, 2) if transitions else None

        other = self.machine_busy - self.loadgen - self.gunicorn - self.postgres
        return {
            "wall_s": round(self.wall, 2),
            "cpu_s": {
                "loadgen": round(self.loadgen, 2),
                "loadgen_client_threads": round(client_threads, 2),
                "gunicorn": round(self.gunicorn, 2),
                "postgres_bench_db": round(self.postgres, 2),
                "other": round(other, 2),
                "machine_busy": round(self.machine_busy, 2),
                "machine_capacity": round(self.machine_total, 2),
            },
            "share_of_machine_pct": {
                "loadgen": share(self.loadgen),
                "loadgen_client_threads": share(client_threads),
                "gunicorn": share(self.gunicorn),
                "postgres_bench_db": share(self.postgres),
                "other": share(other),
                "idle": share(self.machine_total - self.machine_busy),
            },
            "cpu_ms_per_request": {
                "loadgen": per(self.loadgen),
                "loadgen_client_threads": per(client_threads),
                "gunicorn": per(self.gunicorn),
                "postgres_bench_db": per(self.postgres),
            },
        }


def _cases(limit: int) -> list[tuple[int, int, str]]:
    """(case id, village index, token) of fresh registered disputes, spread over villages."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT k.id, k.holder_agency_id - 1000, md5('bench-token-' || a.head_id)
            FROM cases_case k
            JOIN agencies_agency a ON a.id = k.holder_agency_id
            WHERE k.state = 'registered' AND k.id %% 10 IN (2, 3)
            ORDER BY k.id
            LIMIT %s
            """,
            [limit],
        )
        return list(cur.fetchall())


def _jobs(cases: list[tuple[int, int, str]], *, floor: bool) -> Iterator[list[loadgen.Request]]:
    for case_id, village, token in cases:
        headers = {"Authorization": f"Token {token}"}
        # 交办 goes to a mediation committee (or judicial office) with staff: the next
        # village committee of the same township (bench.datagen: villages 1000 + v).
        township, rank = divmod(village, PER_TOWNSHIP)
        neighbour = 1000 + township * PER_TOWNSHIP + (rank + 1) % PER_TOWNSHIP
        base = f"/bench/floor/{case_id}" if floor else f"/api/cases/{case_id}/transitions"
        yield [
            loadgen.Request(
                "POST", f"{base}/triage/", {"risk_level": "low"}, headers, name="triage"
            ),
            loadgen.Request(
                "POST",
                f"{base}/assign/",
                {"to_agency": neighbour},
                headers,
                name="assign",
            ),
        ]


_ACCESS = re.compile(
    r'"POST /(?:api/cases/\d+/transitions|bench/floor/\d+)/\w+/ HTTP/1\.1" (\d{3}) \S+ (\d+)ms'
)


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


def _phase(
    name: str,
    *,
    server: Proc,
    port: int,
    cases: list[tuple[int, int, str]],
    clients: int,
    duration: float,
    log_path: Path,
    workdir: Path,
) -> dict[str, Any]:
    load, pressure = loadavg(), cpu_pressure()
    log_mark = log_path.stat().st_size
    jobs = _jobs(cases, floor=name == "floor")
    with RssSampler({"gunicorn": server}) as rss, CpuSampler(server) as cpu:
        result = loadgen.run(port=port, jobs=jobs, clients=clients, duration=duration)
    time.sleep(0.5)
    text = log_path.read_bytes()[log_mark:].decode(errors="replace")
    (workdir / f"access-{name}.log").write_text(text)
    server_ms = server_durations(workdir / f"access-{name}.log")
    result.update(
        {
            "load_before": load,
            "cpu_pressure_avg10": pressure,
            "load_after": loadavg(),
            "requests_per_s": result["ok_per_s"],
            "server_ms": {
                "requests": len(server_ms),
                "p50": loadgen.percentile(server_ms, 50),
                "p95": loadgen.percentile(server_ms, 95),
                "p99": loadgen.percentile(server_ms, 99),
            },
            "memory": rss.report(),
            # Whole phase (warm-up included), per request sent (any status).
            "cpu": cpu.report(
                result["requests"] + result["warmup_requests"], result["client_cpu_s"]
            ),
        }
    )
    return result


def _server_cpu_ms(phase: dict[str, Any]) -> float:
    """CPU per request of the server side: gunicorn's processes plus PostgreSQL's backends."""
    per = phase["cpu"]["cpu_ms_per_request"]
    return round((per["gunicorn"] or 0.0) + (per["postgres_bench_db"] or 0.0), 2)


def one_run(
    *, clients: int, duration: float, workers: int = 2, floor_first: bool = False
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-web-"))
    port = free_port()
    env = bench_env(
        WEB_CONCURRENCY=str(workers),
        LOG_LEVEL="INFO",
        LOG_FORMAT="json",
        DJANGO_SETTINGS_MODULE="bench.settings",
    )
    log_path = workdir / "gunicorn.log"
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
        log=log_path,
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
        wanted = 2 * (int(duration * 600) + 2000)  # more than 300 cases/s per phase can use
        cases = _cases(wanted)
        if len(cases) < wanted // 4:
            raise SystemExit(f"only {len(cases)} fresh registered disputes left: rerun datagen")
        pools = {"transitions": cases[0::2], "floor": cases[1::2]}
        order = ["floor", "transitions"] if floor_first else ["transitions", "floor"]
        phases = {
            name: _phase(
                name,
                server=server,
                port=port,
                cases=pools[name],
                clients=clients,
                duration=duration,
                log_path=log_path,
                workdir=workdir,
            )
            for name in order
        }
        real, floor = phases["transitions"], phases["floor"]
        return {
            "order": order,
            "transitions": real,
            "floor": floor,
            # The benchmark's figures: transitions against the floor, same server, same run.
            "transitions_per_s": real["requests_per_s"],
            "floor_per_s": floor["requests_per_s"],
            "rate_vs_floor": round(real["requests_per_s"] / floor["requests_per_s"], 3)
            if floor["requests_per_s"]
            else None,
            "cpu_ms_per_transition": _server_cpu_ms(real),
            "cpu_ms_per_floor_request": _server_cpu_ms(floor),
            "cpu_vs_floor": round(_server_cpu_ms(real) / _server_cpu_ms(floor), 2)
            if _server_cpu_ms(floor)
            else None,
            "p99_ms": real["p99_ms"],
            "floor_p99_ms": floor["p99_ms"],
            "workdir": str(workdir),
        }
    finally:
        server.stop()


def run(*, scale: str, runs: int, duration: float, clients: int) -> dict[str, Any]:
    rows = []
    for i in range(runs):
        row = {"run": i + 1, **one_run(clients=clients, duration=duration, floor_first=i % 2 == 1)}
        brief = {
            k: row[k]
            for k in (
                "order",
                "transitions_per_s",
                "floor_per_s",
                "rate_vs_floor",
                "cpu_ms_per_transition",
                "cpu_ms_per_floor_request",
                "cpu_vs_floor",
                "p99_ms",
                "floor_p99_ms",
            )
        }
        brief["statuses"] = row["transitions"]["statuses"]
        brief["load_before"] = row["transitions"]["load_before"]
        brief["server_p99_ms"] = row["transitions"]["server_ms"]["p99"]
        brief["gunicorn_peak_rss_mib"] = row["transitions"]["memory"]["gunicorn"][
            "peak_rss_mib_max"
        ]
        brief["cpu_ms_per_request"] = row["transitions"]["cpu"]["cpu_ms_per_request"]
        log(f"transitions run {i + 1}/{runs}: {json.dumps(brief)}")
        rows.append(row)
    summary = {
        "clients": clients,
        "transitions_per_s": median(r["transitions_per_s"] for r in rows),
        "floor_per_s": median(r["floor_per_s"] for r in rows),
        "rate_vs_floor": median(r["rate_vs_floor"] for r in rows),
        "cpu_ms_per_transition": median(r["cpu_ms_per_transition"] for r in rows),
        "cpu_ms_per_floor_request": median(r["cpu_ms_per_floor_request"] for r in rows),
        "cpu_vs_floor": median(r["cpu_vs_floor"] for r in rows),
        "p50_ms": median(r["transitions"]["p50_ms"] for r in rows),
        "p99_ms": median(r["p99_ms"] for r in rows),
        "server_p99_ms": median(r["transitions"]["server_ms"]["p99"] for r in rows),
        "peak_web_worker_rss_mib": max(
            r["transitions"]["memory"]["gunicorn"]["peak_rss_mib_max"] for r in rows
        ),
        "loads": [r["transitions"]["load_before"] for r in rows],
    }
    log(f"transitions {scale} medians of {runs}: {json.dumps(summary)}")
    return {"scale": scale, "runs": rows, "median": summary}
