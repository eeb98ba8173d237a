"""Processes the benchmarks start (Redis, sinks, Celery, gunicorn): started in their own process
group, stopped by their own pid only, memory sampled with psutil."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], Any], *, timeout: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


class Proc:
    """One started process (and its children), logging to `log`."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], log: Path, cwd: Path):
        self.name = name
        self.argv = argv
        self.log = log
        self.handle = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to this process (it stops its own children), SIGKILL to the tree if needed."""
        if self.alive():
            tree = self.tree()
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                for proc in tree:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        proc.kill()
                self.popen.wait(5)
            for proc in tree[1:]:  # orphans of ours (e.g. prefork children), by pid
                with contextlib.suppress(psutil.NoSuchProcess):
                    if proc.is_running():
                        proc.kill()
        self.handle.close()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class RssSampler:
    """Peak RSS per process of some process trees, sampled every `every` seconds."""

    def __init__(self, procs: dict[str, Proc], every: float = 0.2):
        self.procs = procs
        self.every = every
        self.peaks: dict[str, dict[int, int]] = {name: {} for name in procs}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, proc in self.procs.items():
                for p in proc.tree():
                    try:
                        rss = p.memory_info().rss
                    except psutil.NoSuchProcess:
                        continue
                    peaks = self.peaks[name]
                    peaks[p.pid] = max(peaks.get(p.pid, 0), rss)
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def report(self) -> dict[str, Any]:
        out = {}
        for name, peaks in self.peaks.items():
            out[name] = {
                "peak_rss_mib_per_process": sorted(
                    (round(v / 2**20, 1) for v in peaks.values()), reverse=True
                ),
                "peak_rss_mib_max": round(max(peaks.values(), default=0) / 2**20, 1),
            }
        return out


def redis_server(workdir: Path, env: dict[str, str]) -> tuple[Proc, str]:
    """A private redis-server on a free port (no persistence): never the shared one."""
    port = free_port()
    proc = Proc(
        "redis",
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--maxmemory-policy",
            "noeviction",
        ],
        env=env,
        log=workdir / "redis.log",
        cwd=workdir,
    )
    url = f"redis://127.0.0.1:{port}/0"

    def ping() -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(url, socket_timeout=0.5).ping())
        except Exception:
            return False

    wait_until(ping, timeout=10, what="redis-server")
    return proc, url


def cpu_pressure() -> str:
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return line.split()[1]  # avg10=…
    except (OSError, IndexError):
        return ""
