"""Fault-test harness: real processes, recording sinks, a shared test clock and the invariants.

Everything here is real: a dedicated `redis-server` on a free port (so FLUSHALL and restarts
never touch the shared Redis), `celery worker` / `celery beat` subprocesses in their own
process groups (so `kill -9` takes a whole worker), an aiosmtpd SMTP server and an HTTP
server that log every message they receive (the sinks count what really arrived, not what
the application believes it sent), and a file holding the test clock that every process reads
through `mediation.core.clock.now()` (RELIABILITY.md §4.0, §4.4).

The invariants are the SQL of RELIABILITY.md §4.0 adapted to the engine's tables
(README "Reminders and escalation"): escalations and reminders exactly once, nothing overdue left
behind, nothing stuck in `sending`, every delivery at its sink under a distinct idempotency key.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import json
import logging
import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPO_ROOT = Path(__file__).resolve().parents[3]
# Things the harness had to do that the application should have (reported by the tests).
HARNESS_NOTES: Counter[str] = Counter()
SETPRIV = shutil.which("setpriv")
REDIS_SERVER = shutil.which("redis-server") or "redis-server"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WaitTimeout(AssertionError):
    pass


def wait_until(
    predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.2
) -> float:
    """Poll `predicate` until it returns something truthy; return the seconds it took.

    Raises WaitTimeout naming `what` and the last value seen.
    """
    start = time.monotonic()
    last: Any = None
    while True:
        last = predicate()
        if last:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


# Processes ------------------------------------------------------------------------------------


class _Spawner:
    """The one thread that forks every managed process; it lives as long as the test process.

    `setpriv --pdeathsig KILL` ties a child to the *thread* that forked it, not to the
    process: Linux sends the parent-death signal when that thread exits (prctl(2),
    PR_SET_PDEATHSIG). A worker started from a short-lived thread — the Redis fault test's
    `RestartPolicy` watcher, which ends with the fault rounds — was SIGKILLed the moment that
    thread ended, and the test then saw "both workers stopped consuming" (their main processes
    were zombies with no connection to Redis) while beat kept publishing. Forking from this
    thread keeps "dies with the test runner" and nothing else.
    """

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[tuple[Callable[[], Any], queue.SimpleQueue]] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, fork: Callable[[], Any]) -> Any:
        """Call `fork` on the spawner thread and return its result (or raise its exception)."""
        if threading.current_thread() is self._thread:
            return fork()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="fault-harness-spawner", daemon=True
                )
                self._thread.start()
        answer: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
        self._requests.put((fork, answer))
        ok, value = answer.get()
        if not ok:
            raise value
        return value

    def _serve(self) -> None:
        while True:  # never returns: the thread's end would kill every child it forked
            fork, answer = self._requests.get()
            try:
                answer.put((True, fork()))
            except BaseException as exc:  # handed to the caller
                answer.put((False, exc))


_SPAWNER = _Spawner()


class ManagedProcess:
    """A subprocess in its own session/process group, logging to one file across restarts.

    With `setpriv --pdeathsig KILL` the process dies with the test runner even if the runner is
    killed before its finalizers run; `kill()` SIGKILLs the whole process group (the Celery
    main process and its prefork children). `start()` may be called from any thread: the fork
    happens on `_SPAWNER`'s thread, which lives as long as the runner (see `_Spawner`).
    """

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path):
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> ManagedProcess:
        if self.alive():
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        argv = [SETPRIV, "--pdeathsig", "KILL", "--", *self.argv] if SETPRIV else self.argv
        with open(self.log_path, "ab") as log:
            stamp = dt.datetime.now().isoformat(timespec="milliseconds")
            log.write(f"\n===== {stamp} start #{self.starts + 1}: {self.argv}\n".encode())
            log.flush()
            self.proc = _SPAWNER.run(
                lambda: subprocess.Popen(
                    argv,
                    cwd=REPO_ROOT,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        self.starts += 1
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def children(self) -> list[int]:
        """Direct children (the prefork pool processes of a Celery worker)."""
        if not self.alive():
            return []
        try:
            text = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def kill(self) -> None:
        """SIGKILL the whole process group and reap the main process."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self._note("killed (SIGKILL to the process group)")

    def kill_child(self, rng: random.Random) -> int | None:
        """SIGKILL one pool child, chosen by `rng`; returns its pid (None if there is none)."""
        kids = self.children()
        if not kids:
            return None
        pid = rng.choice(kids)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        self._note(f"killed child {pid}")
        return pid

    def terminate(self, timeout: float = 10.0) -> None:
        """SIGTERM the group (warm shutdown), then SIGKILL what is left."""
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=timeout)  # type: ignore[union-attr]
        self.kill()

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _note(self, what: str) -> None:
        with open(self.log_path, "a") as log:
            log.write(f"\n===== {dt.datetime.now().isoformat(timespec='milliseconds')} {what}\n")


class RedisServer:
    """A throwaway `redis-server` without persistence, so a restart really loses everything."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.dir = workdir / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        self.process = ManagedProcess("redis", self._argv(), env, workdir / "redis.log")

    def _argv(self) -> list[str]:
        return [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            "--maxmemory-policy",
            "noeviction",
            "--loglevel",
            "warning",
        ]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self):  # -> redis.Redis
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def ping(self) -> bool:
        try:
            with contextlib.closing(self.client()) as c:
                return bool(c.ping())
        except Exception:
            return False

    def _ours(self) -> bool:
        """Our server answers on the port (not somebody else's that took it meanwhile)."""
        try:
            with contextlib.closing(self.client()) as c:
                return int(c.info("server")["process_id"]) == self.process.pid
        except Exception:
            return False

    def start(self, *, first: bool = False) -> None:
        """Start (or restart on the same port). The first start moves to another free port
        if the chosen one was taken between choosing and binding it."""
        for _attempt in range(3):
            self.process.start()
            wait_until(
                lambda: self._ours() or not self.process.alive(),
                timeout=10,
                what=f"redis on port {self.port}",
                interval=0.05,
            )
            if self._ours():
                return
            if not first:
                break
            self.port = free_port()
            self.process.argv = self._argv()
        raise RuntimeError(f"redis-server did not start:\n{self.process.log_tail()}")

    def flushall(self) -> None:
        with contextlib.closing(self.client()) as c:
            c.flushall()
        self.process._note("FLUSHALL")

    def dbsize(self) -> int:
        with contextlib.closing(self.client()) as c:
            return int(c.dbsize())

    def shutdown_nosave(self) -> None:
        """`SHUTDOWN NOSAVE`: the server exits and every queued message is gone."""
        import redis

        with contextlib.suppress(redis.ConnectionError), contextlib.closing(self.client()) as c:
            c.shutdown(nosave=True)
        if self.process.proc is not None:
            self.process.proc.wait(timeout=10)
        self.process._note("SHUTDOWN NOSAVE")

    def restart(self, down_seconds: float = 0.0) -> None:
        """SHUTDOWN NOSAVE, stay down `down_seconds`, start again on the same port."""
        self.shutdown_nosave()
        if down_seconds:
            time.sleep(down_seconds)
        self.start()

    def stop(self) -> None:
        self.process.kill()


# Sinks ----------------------------------------------------------------------------------------


class _Recorder:
    """Thread-safe append-only log of received messages, mirrored to a JSONL file."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []

    def record(self, entry: dict[str, Any]) -> None:
        entry = {"t": time.time(), **entry}
        line = json.dumps(entry, ensure_ascii=False)
        with self._lock:
            self._records.append(entry)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._records)

    def count(self) -> int:
        with self._lock:
            return len(self._records)

    def keys(self) -> Counter[str]:
        return Counter(r.get("key") or "" for r in self.records())

    def raw_duplicates(self) -> int:
        """Messages received beyond the first for their key."""
        return sum(n - 1 for n in self.keys().values() if n > 1)


class SmtpSink(_Recorder):
    """aiosmtpd on a free port; records Message-ID, X-Idempotency-Key, To and Subject."""

    def __init__(self, workdir: Path):
        super().__init__(workdir / "smtp.jsonl")
        self.port = free_port()
        self._controller: Any = None

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)

        def header(name: str) -> str:
            value = msg.get(name)
            return "" if value is None else " ".join(str(value).split())

        self.record(
            {
                "key": header("X-Idempotency-Key"),
                "message_id": header("Message-ID"),
                "to": list(envelope.rcpt_tos),
                "subject": header("Subject"),
            }
        )
        return "250 Message accepted for delivery"

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        logging.getLogger("mail.log").setLevel(logging.WARNING)
        for attempt in range(3):  # the free port may be taken before we bind it
            try:
                self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
                self._controller.start()
                return
            except (OSError, RuntimeError):
                if attempt == 2:
                    raise
                self.port = free_port()

    def stop(self) -> None:
        if self._controller is not None:
            with contextlib.suppress(Exception):
                self._controller.stop()
            self._controller = None


class WebhookSink(_Recorder):
    """ThreadingHTTPServer on a free port; records every POST (Idempotency-Key header + body)."""

    def __init__(self, workdir: Path):
        super().__init__(workdir / "webhook.jsonl")
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw.decode("utf-8"))
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                sink.record(
                    {
                        "key": self.headers.get("Idempotency-Key") or "",
                        "path": self.path,
                        "body_key": body.get("idempotency_key") if isinstance(body, dict) else None,
                        "body": body,
                    }
                )
                reply = b'{"errcode":0,"errmsg":"ok"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format, *args):  # noqa: A002 (signature of the base class)
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# The test clock --------------------------------------------------------------------------------


class FakeClock:
    """The file behind MEDIATION_FAKE_NOW_FILE.

    It always holds an offset from real time ("+seconds"), so the test clock keeps flowing
    (leases expire, sweeps see time pass) while it stands wherever the test put it. Writes are
    atomic (rename), so a reader never sees an empty file (which would mean "real time").
    """

    def __init__(self, path: Path):
        self.path = path

    def offset(self) -> float:
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            return 0.0
        return float(text) if text else 0.0

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.offset())

    def set(self, instant: dt.datetime) -> None:
        """From now on the test clock reads `instant` and runs on from there."""
        if instant.tzinfo is None:
            raise ValueError("the test clock needs an aware instant")
        self._write((instant - dt.datetime.now(dt.UTC)).total_seconds())

    def advance(self, seconds: float) -> None:
        self._write(self.offset() + seconds)

    def _write(self, offset: float) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{offset:+.3f}\n")
        os.replace(tmp, self.path)


# The cluster -----------------------------------------------------------------------------------


@dataclass
class EngineSettings:
    sweep_interval: float = 2.0
    lease_seconds: float = 5.0
    delivery_delay: float = 0.05
    digest_after_seconds: float = 600.0
    extra_env: dict[str, str] = field(default_factory=dict)


def _number(value: float) -> str:
    """Integral values without a decimal point (the engine reads some settings with env.int)."""
    return str(int(value)) if float(value).is_integer() else str(value)


def database_url(settings_dict: dict[str, Any]) -> str:
    """A DATABASE_URL for the database Django is connected to (the pytest test database)."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or "5432"
    return f"postgres://{auth}{host}:{port}/{quote(settings_dict['NAME'], safe='')}"


class FaultCluster:
    """Redis, the sinks, the test clock and the Celery processes of one fault test."""

    def __init__(self, workdir: Path, *, db_settings: dict[str, Any], engine: EngineSettings):
        self.workdir = workdir
        self.db_settings = dict(db_settings)
        self.engine = engine
        self.redis = RedisServer(workdir)
        self.smtp = SmtpSink(workdir)
        self.webhook = WebhookSink(workdir)
        self.clock = FakeClock(workdir / "fake-now")
        self.clock.advance(0)
        self.processes: dict[str, ManagedProcess] = {}
        # Wall-clock instants (time.time()) of injected faults, for judging raw duplicates.
        self.fault_times: list[float] = []

    # lifecycle

    def start_infrastructure(self) -> None:
        self.redis.start(first=True)
        self.smtp.start()
        self.webhook.start()

    def close(self) -> None:
        """Kill every process group we started, then stop the sinks. Never raises."""
        for proc in list(self.processes.values()):
            with contextlib.suppress(Exception):
                proc.kill()
        with contextlib.suppress(Exception):
            self.redis.stop()
        with contextlib.suppress(Exception):
            self.smtp.stop()
        with contextlib.suppress(Exception):
            self.webhook.stop()

    # processes

    def env(self, name: str) -> dict[str, str]:
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "mediation.settings.base",
                "DATABASE_URL": database_url(self.db_settings),
                "DB_APPLICATION_NAME": f"celery-{name}",
                "CELERY_BROKER_URL": self.redis.url,
                "REDIS_URL": self.redis.url,
                "EMAIL_HOST": "127.0.0.1",
                "EMAIL_PORT": str(self.smtp.port),
                "MEDIATION_FAKE_NOW_FILE": str(self.clock.path),
                "SWEEP_INTERVAL_SECONDS": _number(self.engine.sweep_interval),
                "DELIVERY_LEASE_SECONDS": _number(self.engine.lease_seconds),
                "DELIVERY_TEST_DELAY_SECONDS": str(self.engine.delivery_delay),
                "REMINDER_DIGEST_AFTER_SECONDS": _number(self.engine.digest_after_seconds),
                "LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        env.update(self.engine.extra_env)
        return env

    def start_worker(
        self, name: str, *, concurrency: int = 2, queues: str = "sweeps,deliveries"
    ) -> ManagedProcess:
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.celery",
            "worker",
            "-n",
            f"{name}@faults",
            "-Q",
            queues,
            "-c",
            str(concurrency),
            "-P",
            "prefork",
            "-l",
            "INFO",
            "--without-mingle",
            "--without-gossip",
        ]
        return self._start(name, argv)

    def start_beat(self, name: str = "beat") -> ManagedProcess:
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.celery",
            "beat",
            "-s",
            str(self.workdir / f"{name}-schedule"),
            "-l",
            "INFO",
        ]
        return self._start(name, argv)

    def _start(self, name: str, argv: list[str]) -> ManagedProcess:
        proc = self.processes.get(name)
        if proc is None:
            proc = ManagedProcess(name, argv, self.env(name), self.workdir / f"{name}.log")
            self.processes[name] = proc
        return proc.start()

    def restart(self, name: str) -> ManagedProcess:
        proc = self.processes[name]
        proc.kill()
        return proc.start()

    def kill(self, name: str) -> None:
        self.mark_fault()
        self.processes[name].kill()

    def workers(self) -> list[str]:
        return [n for n, p in self.processes.items() if "worker" in p.argv]

    def ping(self, timeout: float = 1.0) -> set[str]:
        """Node names of the workers that answer a broadcast `ping` through our Redis."""
        from celery import Celery

        app = Celery("fault-control", broker=self.redis.url)
        app.conf.broker_connection_retry_on_startup = False
        app.conf.broker_connection_max_retries = 1
        try:
            replies = app.control.ping(timeout=timeout) or []
        except Exception:
            return set()
        finally:
            with contextlib.suppress(Exception):
                app.close()
        return {name for reply in replies for name in reply}

    def wait_workers_ready(self, names: Iterable[str], timeout: float = 60.0) -> float:
        wanted = {f"{n}@faults" for n in names}

        def ready():
            for n in wanted:
                proc = self.processes[n.split("@")[0]]
                if not proc.alive():
                    raise AssertionError(f"{proc.name} exited:\n{proc.log_tail()}")
            return wanted <= self.ping(timeout=0.5)

        return wait_until(ready, timeout=timeout, what=f"workers {sorted(wanted)} to answer ping")

    # faults

    def mark_fault(self) -> None:
        self.fault_times.append(time.time())

    def terminate_db_backends(self, pattern: str = "celery%") -> int:
        """`pg_terminate_backend` every connection to the test database whose
        application_name matches `pattern`; returns how many were terminated."""
        import psycopg

        self.mark_fault()
        s = self.db_settings
        with psycopg.connect(
            host=s.get("HOST") or "127.0.0.1",
            port=int(s.get("PORT") or 5432),
            user=s.get("USER") or None,
            password=s.get("PASSWORD") or None,
            dbname=s["NAME"],
            application_name="fault-injector",
            autocommit=True,
        ) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name LIKE %s "
                "AND pid <> pg_backend_pid()",
                [pattern],
            ).fetchall()
        return sum(1 for (ok,) in rows if ok)

    # diagnostics

    def log_report(self, lines: int = 40) -> str:
        parts = [f"fault-test logs in {self.workdir}"]
        for proc in [self.redis.process, *self.processes.values()]:
            parts.append(f"----- {proc.name} ({proc.log_path}) -----\n{proc.log_tail(lines)}")
        return "\n".join(parts)


# Data ------------------------------------------------------------------------------------------


@dataclass
class Township:
    """A village committee under a township under a county, each with a head and a webhook."""

    county: Any
    township: Any
    village: Any
    mediators: list[Any]
    heads: list[Any]
    channel: Any


def township_create(*, webhook: WebhookSink, prefix: str = "ft", mediators: int = 3) -> Township:
    from mediation.accounts.models import Role, User
    from mediation.agencies.models import Agency, AgencyKind, AgencyLevel
    from mediation.cases.models import Channel

    def agency(code, name, kind, level, parent):
        a = Agency.objects.create(
            code=f"{prefix}-{code}",
            name=name,
            kind=kind,
            level=level,
            parent=parent,
            case_number_prefix=name[:3],
            webhook_url=webhook.url(f"/hook/{prefix}-{code}"),
        )
        head = User.objects.create(
            username=f"{prefix}-{code}-head",
            email=f"{code}-head@{prefix}.example",
            display_name=f"{name}负责人",
            agency=a,
            role=Role.SUPERVISOR,
        )
        a.head = head
        a.save(update_fields=["head"])
        return a, head

    county, h1 = agency(
        "county", "测试县综治中心", AgencyKind.PEACE_OFFICE, AgencyLevel.COUNTY, None
    )
    # Level 2 of the ladder goes to the township-level peace office in the chain, level 3 to
    # the county one (mediation.escalation.routing); their heads are supervisors there.
    township, h2 = agency(
        "town", "测试镇综治中心", AgencyKind.PEACE_OFFICE, AgencyLevel.TOWNSHIP, county
    )
    village, h3 = agency(
        "village", "测试村调委会", AgencyKind.MEDIATION_COMMITTEE, AgencyLevel.VILLAGE, township
    )
    people = [
        User.objects.create(
            username=f"{prefix}-mediator-{i}",
            email=f"mediator-{i}@{prefix}.example",
            display_name=f"调解员{i}",
            agency=village,
            role=Role.MEDIATOR,
        )
        for i in range(mediators)
    ]
    channel, _ = Channel.objects.get_or_create(code=f"{prefix}-visit", defaults={"name": "来访"})
    return Township(county, township, village, people, [h1, h2, h3], channel)


def disputes_register(
    town: Township,
    *,
    count: int,
    now: dt.datetime,
    rng: random.Random,
    tag: str = "",
    chunk: int = 25,
) -> list[int]:
    """Register `count` disputes through the case service as of `now` (backdate it to get
    overdue triage clocks); returns their case ids.

    `chunk` registrations share one transaction (one commit instead of one per statement
    group: a few seconds saved per round on a busy 2-core machine); the workers see each
    chunk when it commits.
    """
    from django.db import transaction

    from mediation.cases.services import PartyInput, dispute_register
    from mediation.core.clock import local_date
    from mediation.deadlines.calendar_source import current_calendar
    from mediation.deadlines.models import Clock
    from mediation.deadlines.reminders import plan_reminders_for_clock

    calendar = current_calendar()
    ids: list[int] = []
    while len(ids) < count:
        with transaction.atomic():
            for _ in range(min(chunk, count - len(ids))):
                i = len(ids)
                mediator = town.mediators[rng.randrange(len(town.mediators))]
                case = dispute_register(
                    actor=mediator,
                    title=f"相邻关系纠纷{tag}{i}",
                    channel_id=town.channel.pk,
                    received_on=local_date(now),
                    parties=[
                        PartyInput(name=f"甲{tag}{i}", role="applicant"),
                        PartyInput(name=f"乙{tag}{i}", role="respondent"),
                    ],
                    now=now,
                )
                # Planning is idempotent: anything planned here is something the service
                # should have planned itself (reported by the tests).
                clocks = Clock.objects.filter(case_id=case.pk, status="running", kind="duty")
                planned = sum(
                    plan_reminders_for_clock(c, now=now, calendar=calendar).planned for c in clocks
                )
                if planned:
                    HARNESS_NOTES["cases whose reminders the harness planned, not the service"] += 1
                ids.append(case.pk)
    return ids


# Invariants ------------------------------------------------------------------------------------


def _table(app_label: str, model: str) -> str:
    from django.apps import apps

    return apps.get_model(app_label, model)._meta.db_table


def sql(query: str, params: dict[str, Any] | None = None) -> list[tuple]:
    """Run `query` on the test process' connection; `{clock}`-style names are table names."""
    from django.db import connection

    tables = {
        "clock": _table("deadlines", "Clock"),
        "reminder": _table("deadlines", "Reminder"),
        "escalation": _table("escalation", "Escalation"),
        "notification": _table("notifications", "Notification"),
        "delivery": _table("notifications", "Delivery"),
    }
    with connection.cursor() as cur:
        cur.execute(query.format(**tables), params or {})
        return cur.fetchall() if cur.description else []


def scalar(query: str, params: dict[str, Any] | None = None) -> Any:
    return sql(query, params)[0][0]


def outstanding(now: dt.datetime, grace: float) -> dict[str, int]:
    """Work the engine still owes as of `now` (anything due more than `grace` seconds ago)."""
    cutoff = now - dt.timedelta(seconds=grace)
    p = {"now": now, "cutoff": cutoff}
    return {
        "unescalated_overdue_clocks": scalar(
            "SELECT count(*) FROM {clock} c WHERE c.status = 'running' AND c.kind = 'duty' "
            "AND c.due_at < %(cutoff)s AND NOT EXISTS "
            "(SELECT 1 FROM {escalation} e WHERE e.clock_id = c.id AND e.level = 1)",
            p,
        ),
        "unclimbed_escalations": scalar(
            "SELECT count(*) FROM {escalation} e JOIN {clock} c ON c.id = e.clock_id "
            "WHERE e.status = 'open' AND e.level < 3 AND e.ack_due_at < %(cutoff)s "
            "AND c.status = 'running' AND c.due_at < %(cutoff)s AND NOT EXISTS "
            "(SELECT 1 FROM {escalation} x WHERE x.clock_id = e.clock_id "
            "AND (x.level > e.level OR x.status <> 'open'))",
            p,
        ),
        "overdue_planned_reminders": scalar(
            "SELECT count(*) FROM {reminder} WHERE status = 'planned' AND send_at < %(cutoff)s", p
        ),
        "deliveries_pending": scalar("SELECT count(*) FROM {delivery} WHERE status = 'pending'", p),
        "deliveries_sending": scalar("SELECT count(*) FROM {delivery} WHERE status = 'sending'", p),
    }


def totals() -> dict[str, int]:
    row = sql(
        "SELECT (SELECT count(*) FROM {escalation}), (SELECT count(*) FROM {reminder} "
        "WHERE status = 'sent'), (SELECT count(*) FROM {notification}), "
        "(SELECT count(*) FROM {delivery} WHERE status = 'sent')"
    )[0]
    names = ("escalations", "reminders_sent", "notifications", "deliveries_sent")
    return dict(zip(names, row, strict=True))


def wait_quiescent(
    cluster: FaultCluster, *, timeout: float, stable_for: float | None = None
) -> float:
    """Wait until nothing is owed (see `outstanding`) and the counts, including the sinks',
    stayed unchanged for `stable_for` seconds (default two sweep intervals)."""
    interval = cluster.engine.sweep_interval
    stable_for = 2 * interval if stable_for is None else stable_for
    start = time.monotonic()
    state: dict[str, Any] = {"snapshot": None, "since": start}

    def settled() -> bool:
        owed = outstanding(cluster.clock.now(), grace=2 * interval)
        snapshot = (tuple(totals().values()), cluster.smtp.count(), cluster.webhook.count())
        if any(owed.values()) or snapshot != state["snapshot"]:
            state["snapshot"], state["since"] = snapshot, time.monotonic()
            return False
        return time.monotonic() - state["since"] >= stable_for

    try:
        wait_until(settled, timeout=timeout, what="quiescence", interval=0.3)
    except WaitTimeout as exc:
        owed = outstanding(cluster.clock.now(), grace=2 * interval)
        raise WaitTimeout(f"{exc}; still owed: {owed}; totals: {totals()}") from None
    return time.monotonic() - start - stable_for


@dataclass
class InvariantReport:
    violations: list[str]
    stats: dict[str, Any]

    def __str__(self) -> str:
        lines = [f"  {k}: {v}" for k, v in self.stats.items()]
        if self.violations:
            lines.append("VIOLATIONS:")
            lines += [f"  - {v}" for v in self.violations]
        return "\n".join(lines)


def check_invariants(
    cluster: FaultCluster, *, duplicate_window: float | None = None
) -> InvariantReport:
    """I1–I4 of RELIABILITY.md §4.0 on the engine's tables, plus the sinks' view.

    `duplicate_window`: a raw duplicate at a sink is tolerated only if its first copy arrived
    within this many seconds of an injected fault, i.e. it was being sent at that instant (a
    kill lands before the row is marked sent; a terminated DB connection is noticed only after
    the send that had already passed its lease check). None tolerates none.
    """
    interval = cluster.engine.sweep_interval
    now = cluster.clock.now()
    cutoff = now - dt.timedelta(seconds=2 * interval)
    violations: list[str] = []
    stats: dict[str, Any] = {}

    # I1 internal effects exactly once
    dup_esc = sql(
        "SELECT clock_id, level, count(*) FROM {escalation} WHERE status <> 'superseded' "
        "GROUP BY 1, 2 HAVING count(*) > 1"
    )
    if dup_esc:
        violations.append(f"I1 duplicate escalations (clock, level, n): {dup_esc[:10]}")
    dup_rem = sql(
        "SELECT clock_id, generation, offset_code, count(*) FROM {reminder} "
        "GROUP BY 1, 2, 3 HAVING count(*) > 1"
    )
    if dup_rem:
        violations.append(f"I1 duplicate reminders (clock, gen, offset, n): {dup_rem[:10]}")
    owed = outstanding(now, grace=2 * interval)
    if owed["unescalated_overdue_clocks"]:
        sample = sql(
            "SELECT c.id, c.case_id, c.rule_code, c.due_at FROM {clock} c "
            "WHERE c.status = 'running' AND c.kind = 'duty' AND c.due_at < %(cutoff)s "
            "AND NOT EXISTS (SELECT 1 FROM {escalation} e WHERE e.clock_id = c.id "
            "AND e.level = 1) ORDER BY c.id LIMIT 5",
            {"cutoff": cutoff},
        )
        violations.append(
            f"I1 {owed['unescalated_overdue_clocks']} overdue duty clocks without a level-1 "
            f"escalation (as of {now.isoformat()}), e.g. {sample}"
        )
    if owed["unclimbed_escalations"]:
        violations.append(
            f"I1 {owed['unclimbed_escalations']} open escalations past their acknowledgement "
            "deadline did not climb to the next level"
        )
    gaps = sql(
        "SELECT e.clock_id, e.level FROM {escalation} e WHERE e.level > 1 AND NOT EXISTS "
        "(SELECT 1 FROM {escalation} p WHERE p.clock_id = e.clock_id AND p.level = e.level - 1)"
    )
    if gaps:
        violations.append(f"I1 escalations skipping a level (clock, level): {gaps[:10]}")

    # I2 reminders: nothing due left planned
    if owed["overdue_planned_reminders"]:
        sample = sql(
            "SELECT id, clock_id, offset_code, send_at FROM {reminder} WHERE status = 'planned' "
            "AND send_at < %(cutoff)s ORDER BY id LIMIT 5",
            {"cutoff": cutoff},
        )
        violations.append(
            f"I2 {owed['overdue_planned_reminders']} reminders still planned past their time, "
            f"e.g. {sample}"
        )

    # I3/I4 deliveries: nothing stuck, everything sent
    # Leases run on the real clock, not the test clock (notifications.services.lease_clock).
    stuck = scalar(
        "SELECT count(*) FROM {delivery} WHERE status = 'sending' AND lease_until < %(now)s",
        {"now": dt.datetime.now(dt.UTC)},
    )
    if stuck:
        violations.append(f"I4 {stuck} deliveries left 'sending' with an expired lease")
    by_status = dict(sql("SELECT status, count(*) FROM {delivery} GROUP BY 1"))
    stats["deliveries_by_status"] = by_status
    not_sent = {k: v for k, v in by_status.items() if k != "sent"}
    if not_sent:
        sample = sql(
            "SELECT id, notification_id, channel, status, attempts, last_error FROM {delivery} "
            "WHERE status <> 'sent' ORDER BY id LIMIT 5"
        )
        violations.append(f"I3 deliveries not sent: {not_sent}, e.g. {sample}")

    sinks = {"email": cluster.smtp, "webhook": cluster.webhook}
    raw_dups_total = 0
    for channel, sink in sinks.items():
        expected = {
            f"notification-{nid}"
            for (nid,) in sql(
                "SELECT notification_id FROM {delivery} WHERE channel = %(ch)s AND status = 'sent'",
                {"ch": channel},
            )
        }
        records = sink.records()
        keys = Counter(r.get("key") or "" for r in records)
        missing = expected - set(keys)
        unexpected = set(keys) - expected
        stats[f"{channel}_sent_rows"] = len(expected)
        stats[f"{channel}_distinct_keys"] = len(keys)
        stats[f"{channel}_received"] = len(records)
        if missing:
            violations.append(
                f"I3 {channel}: {len(missing)} sent deliveries never reached the sink, "
                f"e.g. {sorted(missing)[:5]}"
            )
        if unexpected:
            violations.append(
                f"I3 {channel}: {len(unexpected)} keys at the sink without a sent delivery, "
                f"e.g. {sorted(unexpected)[:5]}"
            )
        if "" in keys:
            violations.append(f"I3 {channel}: {keys['']} messages without an idempotency key")
        for r in records:
            key = r.get("key") or ""
            if channel == "email" and r.get("message_id") != f"<{key}@mediation.local>":
                violations.append(f"I3 email Message-ID {r.get('message_id')!r} ≠ key {key!r}")
                break
            if channel == "webhook" and r.get("body_key") != key:
                violations.append(f"I3 webhook body key {r.get('body_key')!r} ≠ header {key!r}")
                break
        dup_keys = {k: n for k, n in keys.items() if n > 1}
        raw_dups = sum(n - 1 for n in dup_keys.values())
        raw_dups_total += raw_dups
        stats[f"{channel}_raw_duplicates"] = raw_dups
        if dup_keys:
            unexplained = []
            for key in dup_keys:
                first = min(r["t"] for r in records if r.get("key") == key)
                in_flight = duplicate_window is not None and any(
                    abs(f - first) <= duplicate_window for f in cluster.fault_times
                )
                if not in_flight:
                    unexplained.append(key)
            if unexplained:
                violations.append(
                    f"I3 {channel}: {len(unexplained)} keys received more than once without a "
                    f"kill while in flight, e.g. {unexplained[:5]}"
                )
    stats["raw_duplicates"] = raw_dups_total
    stats.update(totals())
    return InvariantReport(violations, stats)


def assert_invariants(
    cluster: FaultCluster, *, duplicate_window: float | None = None
) -> InvariantReport:
    report = check_invariants(cluster, duplicate_window=duplicate_window)
    assert not report.violations, f"invariants violated:\n{report}"
    return report


# Scenario steps --------------------------------------------------------------------------------


def deliveries_in_flight(cluster: FaultCluster) -> dict[str, int]:
    """Deliveries claimed right now (`sending` under a live lease), by `claimed_by`."""
    rows = sql(
        "SELECT claimed_by, count(*) FROM {delivery} WHERE status = 'sending' "
        "AND lease_until > %(now)s GROUP BY 1",
        {"now": dt.datetime.now(dt.UTC)},  # leases run on the real clock
    )
    return dict(rows)


def wait_deliveries_flowing(cluster: FaultCluster, *, since: int, timeout: float = 30.0) -> float:
    """Wait until the sinks received a few messages more than `since` (work is in flight)."""

    def flowing() -> bool:
        return cluster.smtp.count() + cluster.webhook.count() >= since + 5

    return wait_until(flowing, timeout=timeout, what="deliveries to start arriving", interval=0.05)


def wait_drained(cluster: FaultCluster, *, timeout: float) -> float:
    """Wait until nothing is owed: overdue clocks escalated, due reminders sent, no delivery
    pending or sending. Returns the seconds it took."""
    interval = cluster.engine.sweep_interval

    def drained() -> bool:
        return not any(outstanding(cluster.clock.now(), grace=0).values())

    try:
        return wait_until(drained, timeout=timeout, what="the backlog to drain", interval=0.2)
    except WaitTimeout as exc:
        owed = outstanding(cluster.clock.now(), grace=2 * interval)
        raise WaitTimeout(f"{exc}; still owed: {owed}; totals: {totals()}") from None


@dataclass
class ProbeResult:
    case_id: int
    clock_id: int
    due_at: dt.datetime
    seconds_after_due: float  # wall time from due to the escalation row being visible
    sweep_lag: float  # escalation.created_at (the sweep's `now`) − due_at


class LivenessProbe:
    """A case whose duty clock is due `due_in` seconds (test clock) after it is registered;
    `wait()` requires its level-1 escalation within two sweep intervals of that
    (RELIABILITY.md §4.0: catches workers that stopped consuming after a reconnect).

    Started right after a fault is repaired, it runs while the backlog drains, so sweeps
    starved by deliveries would show too.
    """

    def __init__(
        self, cluster: FaultCluster, town: Township, *, rng: random.Random, due_in: float = 5.0
    ):
        from mediation.deadlines.models import Clock

        self.cluster = cluster
        self.due_in = due_in
        (self.case_id,) = disputes_register(
            town, count=1, now=cluster.clock.now(), rng=rng, tag="探针"
        )
        self.clock_id = Clock.objects.get(case_id=self.case_id, status="running", kind="duty").pk
        self.due_at = cluster.clock.now() + dt.timedelta(seconds=due_in)
        Clock.objects.filter(pk=self.clock_id).update(due_at=self.due_at)
        self.due_real = time.monotonic() + due_in

    def _escalation(self):
        from mediation.escalation.models import Escalation

        return Escalation.objects.filter(clock_id=self.clock_id, level=1).first()

    def wait(self) -> ProbeResult:
        """The escalation must exist, and its sweep must have started (created_at is the
        sweep's `now`) within two sweep intervals of the due time. A probe checked late (the
        backlog took longer to drain than the probe's due time) is judged by created_at."""
        interval = self.cluster.engine.sweep_interval
        limit = self.due_real + 2 * interval + 0.5
        try:
            wait_until(
                self._escalation,
                timeout=max(0.0, limit - time.monotonic()),
                what=f"the liveness probe (clock {self.clock_id}) to escalate within 2 sweep "
                "intervals of its due time",
                interval=0.1,
            )
        except WaitTimeout as exc:
            raise WaitTimeout(f"{exc}\n{self.cluster.log_report(25)}") from None
        seen = time.monotonic() - self.due_real
        lag = (self._escalation().created_at - self.due_at).total_seconds()
        assert lag <= 2 * interval, (
            f"liveness probe (clock {self.clock_id}) escalated by a sweep {lag:.1f}s after its "
            f"due time (more than 2 sweep intervals)\n{self.cluster.log_report(25)}"
        )
        return ProbeResult(self.case_id, self.clock_id, self.due_at, round(seen, 2), round(lag, 2))


def liveness_probe(
    cluster: FaultCluster, town: Township, *, rng: random.Random, due_in: float = 5.0
) -> ProbeResult:
    return LivenessProbe(cluster, town, rng=rng, due_in=due_in).wait()


def sweep_overlaps() -> int:
    """Pairs of sweep runs whose [started_at, finished_at] overlap (two beats racing)."""
    from django.db import connection

    from mediation.escalation.models import SweepRun

    table = SweepRun._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT count(*) FROM {table} a JOIN {table} b ON a.id < b.id "
            "AND a.started_at < b.finished_at AND b.started_at < a.finished_at"
        )
        return cur.fetchone()[0]


class SmsSink(_Recorder):
    """An SMS provider on loopback speaking the template-SMS API of
    `mediation.notifications.sms`: it checks every request's HMAC signature, answers with the
    provider's codes, and deduplicates by `OutId` as providers do (a repeat gets the first
    answer's BizId and reaches no phone again).

    Every request is recorded (`records`, with `accepted` and `duplicate`); `delivered()` maps
    each OutId to the number of times it reached the "phone" (exactly once when all is well).
    `script` queues answers per phone number (e.g. `["isv.BUSINESS_LIMIT_CONTROL"]` first),
    `fail_rate` answers that share of first attempts with a flow-control code (seeded).
    """

    def __init__(self, workdir: Path, *, secret: str, fail_rate: float = 0.0, seed: int = 0):
        super().__init__(workdir / "sms.jsonl")
        self.secret = secret
        self.script: dict[str, list[str]] = {}
        self.fail_rate = fail_rate
        self._rng = random.Random(seed)
        self._accepted: dict[str, str] = {}
        self._state_lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                answer, status = sink.handle(raw, self.headers.get("X-Sms-Signature") or "")
                reply = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format, *args):  # noqa: A002 (signature of the base class)
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sms/send"

    def handle(self, raw: bytes, signature: str) -> tuple[dict[str, Any], int]:
        import hashlib
        import hmac

        expected = hmac.new(self.secret.encode(), raw, hashlib.sha256).hexdigest()
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            body = {}
        out_id = str(body.get("OutId") or "")
        phone = str(body.get("PhoneNumbers") or "")
        entry: dict[str, Any] = {
            "key": out_id,
            "phone": phone,
            "template": body.get("TemplateCode"),
            "params": json.loads(body.get("TemplateParam") or "{}"),
            "signed": hmac.compare_digest(expected, signature),
            "accepted": False,
            "duplicate": False,
        }
        with self._state_lock:
            if not entry["signed"]:
                code = "SignatureDoesNotMatch"
            elif out_id in self._accepted:
                entry["duplicate"] = True
                code = "OK"
            elif self.script.get(phone):
                code = self.script[phone].pop(0)
            elif self.fail_rate and self._rng.random() < self.fail_rate:
                code = "isv.BUSINESS_LIMIT_CONTROL"
            else:
                code = "OK"
            if code == "OK" and not entry["duplicate"]:
                self._accepted[out_id] = f"biz-{len(self._accepted) + 1:06d}"
                entry["accepted"] = True
            biz = self._accepted.get(out_id, "")
        entry["code"] = code
        self.record(entry)
        if code == "HTTP503":
            return {"Code": "ServiceUnavailable", "Message": "busy"}, 503
        answer: dict[str, Any] = {"Code": code, "Message": "OK" if code == "OK" else code}
        if code == "OK":
            answer["BizId"] = biz
        return answer, 200

    def delivered(self) -> Counter[str]:
        """OutId → times it reached a phone (accepted, not a provider-side duplicate)."""
        return Counter(r["key"] for r in self.records() if r["accepted"])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
