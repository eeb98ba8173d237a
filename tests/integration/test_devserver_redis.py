"""`scripts/run` on a Redis that answers: it says so and keeps its keys and queues apart.

Real Redis (REDIS_URL, as for the rest of the suite). The publishing side runs in a
subprocess because the Celery app reads CELERY_KEY_PREFIX when it is imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis

from mediation import devserver

REPO_ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def test_joining_a_running_redis_is_announced_and_gets_a_key_prefix(monkeypatch, capsys):
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.delenv("CELERY_KEY_PREFIX", raising=False)
    monkeypatch.setenv("REDIS_URL", REDIS_URL)

    url, embedded = devserver.configure_redis()

    out = capsys.readouterr().out
    assert embedded is None
    assert url == REDIS_URL
    assert f"joining the Redis that answers at {REDIS_URL}" in out
    assert os.environ["CELERY_KEY_PREFIX"] == devserver.checkout_key_prefix()
    assert devserver.checkout_key_prefix() in out


def test_two_checkouts_get_different_prefixes(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"

    assert devserver.checkout_key_prefix(one) != devserver.checkout_key_prefix(two)
    assert devserver.checkout_key_prefix(one) == devserver.checkout_key_prefix(one)


PUBLISH = """
import json, sys
import django
django.setup()
from workers.celery import app
from django.conf import settings
from mediation.escalation.health import _broker
app.send_task("workers.sweeps.run_sweep", kwargs={"trigger": "prefix-test"})
print(json.dumps({"options": app.conf.broker_transport_options, "health": _broker(2.0)}))
"""


@pytest.mark.timeout(60)
def test_tasks_published_with_a_prefix_land_in_prefixed_queues_only():
    prefix = f"test-prefix-{uuid.uuid4().hex[:8]}:"
    env = {**os.environ, "CELERY_KEY_PREFIX": prefix, "REDIS_URL": REDIS_URL}
    env.pop("CELERY_BROKER_URL", None)
    env["DJANGO_SETTINGS_MODULE"] = "mediation.settings.test"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        result = subprocess.run(
            [sys.executable, "-c", PUBLISH],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=50,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout.strip().splitlines()[-1])

        assert report["options"]["global_keyprefix"] == prefix
        assert client.llen(f"{prefix}sweeps") == 1
        # /health/ reads the same prefixed queue.
        assert report["health"]["queues"]["sweeps"] == 1
    finally:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()
