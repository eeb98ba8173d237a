"""Shared helpers: Django setup against the bench database, load average, medians, results."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
VENV_BIN = REPO / ".venv" / "bin"
DB_NAME = os.environ.get("BENCH_DATABASE_NAME", "mediation_bench")
DB_URL = os.environ.get("BENCH_DATABASE_URL", f"postgres://root@127.0.0.1:5432/{DB_NAME}")
SCALES = {"100k": 100_000, "1m": 1_000_000, "5m": 5_000_000}
OVERDUE_TARGET = 10_000  # newly overdue clocks at every scale


def bench_env(**extra: str) -> dict[str, str]:
    """Environment for the bench process and the servers/workers it starts."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "mediation.settings.base",
            "DATABASE_URL": DB_URL,
            "DJANGO_DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO),
        }
    )
    env.update(extra)
    return env


def setup_django() -> None:
    """Configure Django for the bench database (base settings, DEBUG off)."""
    os.environ.update({k: v for k, v in bench_env().items() if k != "PYTHONPATH"})
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import django

    django.setup()


def loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def machine() -> dict[str, Any]:
    def cmd(*argv: str) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return ""

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "postgres": cmd(
            "psql", "-h", "127.0.0.1", "-U", "root", "-d", DB_NAME, "-Atc", "show server_version"
        ),
        "redis": cmd("redis-server", "--version"),
    }


def save(name: str, payload: dict[str, Any]) -> Path:
    """Write bench/results/<name>-<timestamp>.json and print a one-line summary."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"{name}-{stamp}.json"
    payload = {"benchmark": name, "at": stamp, "argv": sys.argv, "machine": machine(), **payload}
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2, default=str))
    print(f"[bench] {name}: results in {path.relative_to(REPO)}")
    return path


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')} load {loadavg()}] {message}", flush=True)
