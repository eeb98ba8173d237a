"""A small HTTP load generator: threads, one kept-alive `http.client` connection each, bounded
in time and in requests, traffic only to 127.0.0.1.

Each client repeatedly takes the next *job* (a short list of requests run in order, e.g. two
transitions of one case) from a shared iterator and records every request's latency and
status. Requests of the warm-up period are run but not counted.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    name: str = ""


@dataclass
class Sample:
    name: str
    status: int
    ms: float
    at: float


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return round(values[lo] + (values[hi] - values[lo]) * (k - lo), 2)


def run(
    *,
    port: int,
    jobs: Iterator[list[Request]],
    clients: int,
    duration: float,
    warmup: float = 2.0,
    max_requests: int = 1_000_000,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Run `clients` threads for `warmup + duration` seconds (or until `max_requests` or the
    jobs run out); returns throughput and latency percentiles of the counted requests."""
    host = "127.0.0.1"
    lock = threading.Lock()
    samples: list[Sample] = []
    errors: Counter[str] = Counter()
    started = time.perf_counter()
    measure_from = started + warmup
    stop_at = measure_from + duration
    sent = [0]
    client_cpu = [0.0]  # CPU seconds of the client threads themselves (time.thread_time)

    def next_job() -> list[Request] | None:
        with lock:
            if sent[0] >= max_requests:
                return None
            try:
                job = next(jobs)
            except StopIteration:
                return None
            sent[0] += len(job)
            return job

    def client() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        local: list[Sample] = []
        while time.perf_counter() < stop_at:
            job = next_job()
            if job is None:
                break
            for req in job:
                body = json.dumps(req.body).encode() if req.body is not None else None
                headers = {"Content-Type": "application/json", **req.headers}
                t0 = time.perf_counter()
                try:
                    conn.request(req.method, req.path, body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    status = response.status
                    if response.will_close:
                        conn.close()
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=timeout)
                    with lock:
                        errors[type(exc).__name__] += 1
                    status = 0
                t1 = time.perf_counter()
                local.append(Sample(req.name or req.method, status, (t1 - t0) * 1000, t1))
                if status != 200:
                    break  # the rest of the job depends on this step
        conn.close()
        with lock:
            samples.extend(local)
            client_cpu[0] += time.thread_time()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ended = time.perf_counter()
    counted = [s for s in samples if measure_from <= s.at <= stop_at]
    window = min(ended, stop_at) - measure_from
    ok = [s for s in counted if s.status == 200]
    latencies = [s.ms for s in counted]
    by_name: dict[str, Any] = {}
    for name in sorted({s.name for s in counted}):
        ms = [s.ms for s in counted if s.name == name]
        by_name[name] = {
            "requests": len(ms),
            "p50_ms": percentile(ms, 50),
            "p99_ms": percentile(ms, 99),
        }
    return {
        "clients": clients,
        "window_s": round(window, 2),
        "requests": len(counted),
        "ok": len(ok),
        "ok_per_s": round(len(ok) / window, 1) if window > 0 else None,
        "statuses": dict(Counter(s.status for s in counted)),
        "errors": dict(errors),
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "max_ms": round(max(latencies), 2) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies), 2) if latencies else None,
        "by_request": by_name,
        "warmup_requests": len(samples) - len(counted),
        "client_cpu_s": round(client_cpu[0], 3),
        "client_cpu_ms_per_request": (
            round(1000 * client_cpu[0] / len(samples), 3) if samples else None
        ),
    }
