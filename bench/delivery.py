"""Benchmark 2: 20,000 due reminders delivered end to end through Celery + Redis.

Per run, on the bench database:

1. A private redis-server (free port, no persistence), the SMTP sink (asyncio, PIPELINING) and the
   webhook sink (threaded HTTP/1.1 server), each its own process (`bench.sinks`).
2. Data: every engine row from earlier runs removed; the overdue clocks pre-escalated (their
   deliveries marked sent, so they do not take part); every village's group robot pointed at
   the webhook sink; 20,000 reminders due 30 s ago on running duty clocks of cases whose
   assignee is the holder's head (one recipient each). The sweep turns them into 20,000
   notifications with an e-mail and a webhook delivery each: 40,000 deliveries.
3. `celery worker -Q sweeps,deliveries,bench -c 2` (two prefork worker processes, the project's
   Celery settings), then the ceiling: 10,000 no-op tasks (`bench.celery_tasks.noop`, one
   Redis INCR each) published while the worker does not consume `bench`, then consumed.
4. t0: `workers.sweeps.run_sweep` is published; `celery beat` starts (SWEEP_INTERVAL_SECONDS,
   production default 30 s). The run ends when every delivery the sweep made is sent (or
   failed), or at the timeout. Deliveries/s = deliveries / (last sent_at - t0).
5. The sinks' counts: every idempotency key must have arrived, duplicates are reported.
   Peak RSS of every worker process is sampled (psutil, 5 Hz).
6. The null-channel ceiling, in the same run (before the real pass on even runs, after it on
   odd ones): steps 1-4 again with every channel's send a no-op (`BENCH_NULL_CHANNEL=1`, see
   bench.celery_tasks). Deliveries/s is reported as a ratio of it (`vs_null_channel`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench.common import REPO, VENV_BIN, bench_env, loadavg, log, median
from bench.procs import Proc, RssSampler, cpu_pressure, free_port, redis_server, wait_until

# The figure is 20,000; a smaller count (BENCH_DELIVERY_REMINDERS) is for iterating only.
REMINDERS = int(os.environ.get("BENCH_DELIVERY_REMINDERS", "20000"))
NOOP_TASKS = 10_000


def _cursor():
    from django.db import connection

    return connection.cursor()


def prepare(*, hook_url: str) -> int:
    """Engine rows reset, overdue clocks pre-escalated, 20,000 reminders due. Returns the id
    above which the deliveries of this run will be."""
    from bench import sweep as sweep_bench
    from mediation.core.clock import now as clock_now
    from mediation.escalation.sweeps import sweep_run

    sweep_bench.reset(cases=False)
    with _cursor() as cur:
        cur.execute("DELETE FROM deadlines_reminder WHERE offset_code = 'bench'")
        cur.execute(
            "UPDATE agencies_agency SET webhook_url = %s WHERE level = 'village'", [hook_url]
        )
    now = clock_now()
    sweep_run(now=now, trigger="bench-prepare")  # the overdue clocks: not this benchmark's
    with _cursor() as cur:
        cur.execute("UPDATE notifications_delivery SET status = 'sent', sent_at = %s", [now])
        cur.execute(
            """
            INSERT INTO deadlines_reminder (clock_id, generation, offset_code, send_at, status,
                                            created_at, cancel_reason, digested)
            SELECT c.id, c.generation, 'bench', %(now)s - interval '30 seconds', 'planned',
                   %(now)s, '', false
            FROM deadlines_clock c
            WHERE c.status = 'running' AND c.kind = 'duty' AND c.case_id %% 5 = 1
            ORDER BY c.case_id
            LIMIT %(n)s
            """,
            {"now": now, "n": REMINDERS},
        )
        inserted = cur.rowcount
        if inserted != REMINDERS:
            raise SystemExit(f"only {inserted} clocks for reminders (scale too small?)")
        for table in ("deadlines_reminder", "notifications_delivery", "notifications_notification"):
            cur.execute(f"VACUUM (ANALYZE) {table}")
        cur.execute("SELECT COALESCE(max(id), 0) FROM notifications_delivery")
        return cur.fetchone()[0]


def _statuses(after_id: int) -> dict[str, int]:
    with _cursor() as cur:
        cur.execute(
            "SELECT status, count(*) FROM notifications_delivery WHERE id > %s GROUP BY status",
            [after_id],
        )
        return dict(cur.fetchall())


def _sweep_done(since: dt.datetime) -> bool:
    with _cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM escalation_sweeprun WHERE trigger = 'celery' "
            "AND started_at >= %s AND finished_at IS NOT NULL",
            [since],
        )
        return cur.fetchone()[0] > 0


def _sent_window(after_id: int) -> tuple[dt.datetime | None, dt.datetime | None]:
    with _cursor() as cur:
        cur.execute(
            "SELECT min(sent_at), max(sent_at) FROM notifications_delivery WHERE id > %s "
            "AND status = 'sent'",
            [after_id],
        )
        return cur.fetchone()


def _celery(url: str):
    from celery import Celery

    app = Celery("bench-client", broker=url)
    app.conf.update(task_serializer="json", accept_content=["json"], broker_connection_retry=False)
    return app


def noop_ceiling(app: Any, url: str, worker_name: str, n: int = NOOP_TASKS) -> dict[str, Any]:
    """Trivial-task throughput of the same worker: n no-op tasks queued, then consumed."""
    import redis

    r = redis.Redis.from_url(url)
    r.delete("bench:noop")
    app.control.cancel_consumer("bench", destination=[worker_name], reply=True, timeout=5)
    started = time.perf_counter()
    with app.producer_or_acquire() as producer:
        for _ in range(n):
            app.send_task("bench.noop", queue="bench", producer=producer)
    publish_s = time.perf_counter() - started
    started = time.perf_counter()
    app.control.add_consumer("bench", destination=[worker_name], reply=True, timeout=5)
    wait_until(lambda: int(r.get("bench:noop") or 0) >= n, timeout=300, what="no-op tasks")
    took = time.perf_counter() - started
    return {
        "tasks": n,
        "publish_per_s": round(n / publish_s),
        "consume_s": round(took, 3),
        "tasks_per_s": round(n / took),
    }


def one_run(
    *,
    code_root: Path | None,
    beat_interval: float,
    timeout: float,
    profile: Path | None = None,
    null_channel: bool = False,
) -> dict[str, Any]:
    from mediation.core.clock import now as clock_now

    workdir = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    started_procs: list[Proc] = []
    base_env = bench_env()
    try:
        redis_proc, url = redis_server(workdir, base_env)
        started_procs.append(redis_proc)
        smtp_port, hook_port = free_port(), free_port()
        py = str(VENV_BIN / "python")
        for kind, port in (("smtp", smtp_port), ("webhook", hook_port)):
            started_procs.append(
                Proc(
                    f"sink-{kind}",
                    [
                        py,
                        "-m",
                        "bench.sinks",
                        kind,
                        "--port",
                        str(port),
                        "--status",
                        str(workdir / f"{kind}.json"),
                    ],
                    env=base_env,
                    log=workdir / f"sink-{kind}.log",
                    cwd=REPO,
                )
            )
        wait_until(
            lambda: all((workdir / f"{k}.json").exists() for k in ("smtp", "webhook")),
            timeout=20,
            what="sinks",
        )
        hook_url = f"http://127.0.0.1:{hook_port}/cgi-bin/webhook/send?key=bench"
        after_id = prepare(hook_url=hook_url)
        path = [str(code_root)] if code_root else []
        env = bench_env(
            CELERY_BROKER_URL=url,
            REDIS_URL=url,
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(smtp_port),
            SWEEP_INTERVAL_SECONDS=str(beat_interval),
            PYTHONPATH=":".join([*path, str(REPO)]),
            BENCH_NULL_CHANNEL="1" if null_channel else "0",
        )
        cwd = code_root or REPO
        celery = str(VENV_BIN / "celery")
        worker = Proc(
            "worker",
            [
                celery,
                "-A",
                "workers.celery",
                "worker",
                "-Q",
                "sweeps,deliveries,bench",
                "-c",
                "2",
                "-P",
                "prefork",
                "-n",
                "bench@%h",
                "-I",
                "bench.celery_tasks",
                "-l",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            env=env,
            log=workdir / "worker.log",
            cwd=cwd,
        )
        started_procs.append(worker)
        app = _celery(url)
        replies = wait_until(
            lambda: app.control.ping(timeout=0.5), timeout=60, what="celery worker"
        )
        worker_name = next(iter(replies[0]))
        ceiling = noop_ceiling(app, url, worker_name)
        load = loadavg()
        pressure = cpu_pressure()
        since = clock_now()
        cpu_before = psutil.cpu_times()
        proc_cpu_before = _cpu_seconds(started_procs)
        t0 = time.time()
        spy = None
        with RssSampler({"worker": worker}) as rss:
            app.send_task("workers.sweeps.run_sweep", queue="sweeps")
            beat = Proc(
                "beat",
                [
                    celery,
                    "-A",
                    "workers.celery",
                    "beat",
                    "-s",
                    str(workdir / "beat-schedule"),
                    "-l",
                    "WARNING",
                    "--pidfile=",
                ],
                env=env,
                log=workdir / "beat.log",
                cwd=cwd,
            )
            started_procs.append(beat)
            if profile is not None and not (VENV_BIN / "py-spy").exists():
                log("delivery: --profile needs py-spy in the virtualenv; not profiling")
            elif profile is not None:
                children = [p.pid for p in worker.tree()[1:]]
                if children:
                    spy = subprocess.Popen(
                        [
                            str(VENV_BIN / "py-spy"),
                            "record",
                            "-o",
                            str(profile),
                            "-f",
                            "speedscope",
                            "-d",
                            "20",
                            "-r",
                            "200",
                            "--idle",
                            "-p",
                            str(children[0]),
                            "--nonblocking",
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
            deadline = time.monotonic() + timeout
            statuses: dict[str, int] = {}
            while time.monotonic() < deadline:
                statuses = _statuses(after_id)
                total = sum(statuses.values())
                done = statuses.get("sent", 0) + statuses.get("failed", 0)
                if total and done == total and _sweep_done(since):
                    break
                time.sleep(0.2)
            t_end = time.time()
        cpu_after = psutil.cpu_times()
        proc_cpu = {
            k: round(v - proc_cpu_before.get(k, 0.0), 1)
            for k, v in _cpu_seconds(started_procs).items()
        }
        busy = sum(
            getattr(cpu_after, f) - getattr(cpu_before, f)
            for f in ("user", "system", "nice", "irq", "softirq")
        )
        idle = sum(getattr(cpu_after, f) - getattr(cpu_before, f) for f in ("idle", "iowait"))
        if spy is not None:
            spy.wait(60)
        first, last = _sent_window(after_id)
        time.sleep(0.8)  # sinks rewrite their status twice a second
        sinks = {k: json.loads((workdir / f"{k}.json").read_text()) for k in ("smtp", "webhook")}
        total = sum(statuses.values())
        sent = statuses.get("sent", 0)
        elapsed = (last.timestamp() - t0) if last else t_end - t0
        complete = sent == total and total > 0
        result = {
            "channels": "null (no-op sends)" if null_channel else "real",
            "load_before": load,
            "cpu_pressure_avg10": pressure,
            "beat_interval_s": beat_interval,
            "reminders": REMINDERS,
            "deliveries": total,
            "statuses": statuses,
            "complete": complete,
            "elapsed_s": round(elapsed, 3),
            "deliveries_per_s": round(sent / elapsed) if elapsed else None,
            "delivery_phase_s": round((last - first).total_seconds(), 3)
            if first and last
            else None,
            "sinks": sinks,
            "noop_ceiling": ceiling,
            "memory": rss.report(),
            "machine_cpu_busy_pct": round(100 * busy / (busy + idle), 1) if busy + idle else None,
            "cpu_seconds_by_process": proc_cpu,
            "load_after": loadavg(),
            "workdir": str(workdir),
        }
        if not complete:
            result["note"] = f"timed out after {timeout:.0f} s"
            result["worker_log_tail"] = worker.tail(15)
        return result
    finally:
        for proc in reversed(started_procs):
            proc.stop()


def _cpu_seconds(procs: list[Proc]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each started process tree, and by all
    PostgreSQL backends together."""
    out: dict[str, float] = {}
    for proc in procs:
        total = 0.0
        for p in proc.tree():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        out[proc.name] = total
    pg = 0.0
    for p in psutil.process_iter(["name", "username"]):
        try:
            if p.info["name"] == "postgres":
                t = p.cpu_times()
                pg += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    out["postgres (all backends)"] = pg
    return out


def sink_alone(n: int = 20_000) -> dict[str, Any]:
    """The sinks by themselves: two client processes over kept-alive connections."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-sinks-"))
    py = str(VENV_BIN / "python")
    env = bench_env()
    out: dict[str, Any] = {"load_before": loadavg()}
    for kind in ("smtp", "webhook"):
        port = free_port()
        sink = Proc(
            f"sink-{kind}",
            [
                py,
                "-m",
                "bench.sinks",
                kind,
                "--port",
                str(port),
                "--status",
                str(workdir / f"{kind}.json"),
            ],
            env=env,
            log=workdir / f"{kind}.log",
            cwd=REPO,
        )
        try:
            status = workdir / f"{kind}.json"
            wait_until(status.exists, timeout=20, what="sink")
            res = subprocess.run(
                [
                    py,
                    "-m",
                    "bench.sinks",
                    f"load-{kind}",
                    "--port",
                    str(port),
                    "-n",
                    str(n),
                    "--clients",
                    "2",
                ],
                env=env,
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            )
            out[kind] = json.loads(res.stdout.strip().splitlines()[-1])
        finally:
            sink.stop()
    out["load_after"] = loadavg()
    return out


def run(
    *,
    scale: str,
    runs: int,
    baseline: str | None = None,
    beat_interval: float = 30.0,
    timeout: float = 300.0,
    profile: bool = False,
) -> dict[str, Any]:
    from bench.sweep import _baseline_tree

    base_root = _baseline_tree(baseline) if baseline else None
    if base_root:  # the delivery path also spans the dispatching task and the Celery app
        for name in ("workers/sweeps.py", "workers/celery.py"):
            text = subprocess.run(
                ["git", "-C", str(REPO), "show", f"{baseline}:{name}"],
                capture_output=True,
                check=True,
            ).stdout
            (base_root / name).write_bytes(text)
    rows = []
    for i in range(runs):
        row: dict[str, Any] = {"run": i + 1}
        row["sink_alone"] = sink_alone()
        if base_root:
            row["baseline"] = one_run(
                code_root=base_root, beat_interval=beat_interval, timeout=timeout
            )
        prof = REPO / "bench" / "results" / "delivery-pyspy.json" if profile and i == 0 else None
        # The null-channel ceiling in the same run, first on even runs and second on odd ones
        # (a drift of the shared machine's load then biases neither).
        if i % 2 == 0:
            row["null_channel"] = one_run(
                code_root=None, beat_interval=beat_interval, timeout=timeout, null_channel=True
            )
        row.update(
            one_run(code_root=None, beat_interval=beat_interval, timeout=timeout, profile=prof)
        )
        if i % 2 == 1:
            row["null_channel"] = one_run(
                code_root=None, beat_interval=beat_interval, timeout=timeout, null_channel=True
            )
        ceiling_rate = row["null_channel"]["deliveries_per_s"]
        row["vs_null_channel"] = (
            round(row["deliveries_per_s"] / ceiling_rate, 3)
            if row["deliveries_per_s"] and ceiling_rate
            else None
        )
        log(f"delivery run {i + 1}/{runs}: " + json.dumps(_brief(row), ensure_ascii=False))
        rows.append(row)
    summary = {
        "deliveries_per_s": median(r["deliveries_per_s"] for r in rows),
        "null_channel_per_s": median(r["null_channel"]["deliveries_per_s"] for r in rows),
        "vs_null_channel": median(r["vs_null_channel"] for r in rows),
        "null_channel_complete": all(r["null_channel"]["complete"] for r in rows),
        "noop_tasks_per_s": median(r["noop_ceiling"]["tasks_per_s"] for r in rows),
        "sink_alone_smtp_per_s": median(r["sink_alone"]["smtp"]["per_second"] for r in rows),
        "sink_alone_webhook_per_s": median(r["sink_alone"]["webhook"]["per_second"] for r in rows),
        "peak_worker_rss_mib": max(r["memory"]["worker"]["peak_rss_mib_max"] for r in rows),
        "all_complete": all(r["complete"] for r in rows),
        "duplicates_at_sinks": sum(
            r["sinks"][k]["duplicates"] for r in rows for k in ("smtp", "webhook")
        ),
        "loads": [r["load_before"] for r in rows],
    }
    if base_root:
        summary["baseline"] = baseline
        summary["baseline_deliveries_per_s"] = median(
            r["baseline"]["deliveries_per_s"] for r in rows
        )
    log(f"delivery {scale} medians of {runs}: {json.dumps(summary, ensure_ascii=False)}")
    return {"scale": scale, "runs": rows, "median": summary}


def _brief(row: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "reminders",
        "deliveries",
        "complete",
        "elapsed_s",
        "deliveries_per_s",
        "delivery_phase_s",
        "load_before",
    )
    out = {k: row.get(k) for k in keys}
    out["noop_per_s"] = row["noop_ceiling"]["tasks_per_s"]
    if "null_channel" in row:
        out["null_channel_per_s"] = row["null_channel"]["deliveries_per_s"]
        out["vs_null_channel"] = row.get("vs_null_channel")
    out["sinks"] = {k: (v["messages"], v["duplicates"]) for k, v in row["sinks"].items()}
    out["worker_peak_rss_mib"] = row["memory"]["worker"]["peak_rss_mib_max"]
    if "baseline" in row:
        out["baseline"] = {k: row["baseline"].get(k) for k in keys}
    return out


if __name__ == "__main__":
    sys.exit("use python -m bench.run delivery")
