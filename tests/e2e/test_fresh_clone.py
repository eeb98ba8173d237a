"""A fresh clone without DATABASE_URL: bare `manage.py migrate` works on the embedded SQLite.

The repository's `var/` (where the default SQLite file lives) is ignored by git, so a clone
has none; the settings create it, whatever the entry point. The code is copied into a
temporary directory so the test sees exactly what a clone holds (no `var/`, no `.env`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _clone(into: Path) -> Path:
    root = into / "clone"
    root.mkdir()
    shutil.copy2(REPO_ROOT / "manage.py", root / "manage.py")
    shutil.copytree(
        REPO_ROOT / "mediation", root / "mediation", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(
        REPO_ROOT / "workers", root / "workers", ignore=shutil.ignore_patterns("__pycache__")
    )
    return root


def _env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "MEDIATION_SQLITE_PATH"}
    }
    env["DJANGO_SETTINGS_MODULE"] = "mediation.settings.base"
    return env


@pytest.mark.timeout(180)
def test_bare_migrate_on_a_fresh_clone_creates_var_and_the_sqlite_file(tmp_path):
    root = _clone(tmp_path)
    assert not (root / "var").exists()

    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=root,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert (root / "var" / "db.sqlite3").stat().st_size > 0


@pytest.mark.timeout(60)
def test_another_entry_point_on_a_fresh_clone_also_gets_var(tmp_path):
    # Not manage.py: a plain `django.setup()` and a query, as celery or gunicorn would do.
    root = _clone(tmp_path)
    code = (
        "import django; django.setup();"
        "from django.db import connection;"
        "connection.cursor().execute('SELECT 1')"
    )

    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert (root / "var" / "db.sqlite3").exists()
