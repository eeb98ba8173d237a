"""Health: `GET /health/` and `manage.py health` against real PostgreSQL and Redis.

Queue depths are read from a separate Redis DB number (13) so the shared broker DB is never
written or flushed.
"""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO

import pytest
import redis
from django.core.management import call_command
from django.urls import include, path

from mediation.core.clock import SHANGHAI
from mediation.escalation.models import SweepRun
from mediation.notifications.models import Delivery, Notification
from tests.factories.accounts import staff
from tests.factories.agencies import township_tree

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("tests.integration.test_health"),
    # The test client starts WhiteNoise, which warns while STATIC_ROOT has not been collected.
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

urlpatterns = [path("", include("mediation.escalation.urls"))]

BROKER = "redis://127.0.0.1:6379/13"
MARCH = dt.datetime(2026, 3, 11, 10, 0, tzinfo=SHANGHAI)  # calendar covers +180 days
NOVEMBER = dt.datetime(2026, 11, 27, 10, 0, tzinfo=SHANGHAI)  # data ends 2026-12-31


@pytest.fixture
def at(tmp_path, monkeypatch, settings):
    settings.CELERY_BROKER_URL = BROKER
    settings.SWEEP_INTERVAL_SECONDS = 30
    path_ = tmp_path / "now"
    monkeypatch.setenv("MEDIATION_FAKE_NOW_FILE", str(path_))

    def set_now(instant: dt.datetime) -> dt.datetime:
        path_.write_text(instant.isoformat())
        return instant

    return set_now


def swept(at_: dt.datetime) -> None:
    SweepRun.objects.create(
        started_at=at_, finished_at=at_, swept_until=at_, trigger="test", counts={}
    )


def get_health(client) -> tuple[int, dict]:
    response = client.get("/health/")
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    return response.status_code, response.json()


def test_healthy(client, at):
    now = at(MARCH)
    swept(now - dt.timedelta(seconds=20))

    status, body = get_health(client)

    assert status == 200
    assert (body["status"], body["failures"], body["warnings"]) == ("ok", [], [])
    checks = body["checks"]
    assert checks["broker"] == {"ok": True}
    assert checks["queues"] == {"sweeps": 0, "deliveries": 0}
    assert checks["last_sweep"]["age_seconds"] == 20.0
    assert checks["oldest_undelivered"]["age_seconds"] is None
    assert checks["calendar"] == {"ok": True, "warning": None}


def test_queue_depths_are_reported(client, at):
    at(MARCH)
    swept(MARCH)
    r = redis.Redis.from_url(BROKER)
    r.delete("deliveries", "deliveries\x06\x163")
    r.rpush("deliveries", "a", "b")
    r.rpush("deliveries\x06\x163", "c")
    try:
        _, body = get_health(client)
    finally:
        r.delete("deliveries", "deliveries\x06\x163")
        r.close()
    assert body["checks"]["queues"] == {"sweeps": 0, "deliveries": 3}


def test_broker_down_is_503(client, at, settings):
    at(MARCH)
    swept(MARCH)
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"

    status, body = get_health(client)

    assert status == 503
    assert body["failures"] == ["broker"]
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["queues"] is None


def test_no_recent_sweep_is_503(client, at):
    at(MARCH)
    assert get_health(client)[1]["failures"] == ["last_sweep"]  # never swept
    swept(MARCH - dt.timedelta(seconds=91))

    status, body = get_health(client)

    assert status == 503
    assert body["failures"] == ["last_sweep"]
    assert body["checks"]["last_sweep"]["max_age_seconds"] == 90


def test_old_undelivered_delivery_is_503(client, at):
    at(MARCH)
    swept(MARCH)
    user = staff(township_tree().centre, "mediator")
    note = Notification.objects.create(
        recipient=user, kind="reminder", subject="s", body="b", key="k", created_at=MARCH
    )
    Delivery.objects.create(
        notification=note,
        channel="email",
        next_attempt_at=MARCH,
        created_at=MARCH - dt.timedelta(minutes=11),
    )

    status, body = get_health(client)

    assert status == 503
    assert body["failures"] == ["oldest_undelivered"]
    assert body["checks"]["oldest_undelivered"]["age_seconds"] == 660.0


def test_calendar_horizon_is_a_warning_only(client, at):
    at(NOVEMBER)
    swept(NOVEMBER)

    status, body = get_health(client)

    assert status == 200
    assert (body["status"], body["warnings"], body["failures"]) == ("warn", ["calendar"], [])
    assert "2026-12-31" in body["checks"]["calendar"]["warning"]


def test_health_token(client, at, settings):
    at(MARCH)
    swept(MARCH)
    settings.HEALTH_TOKEN = "s3cret"

    assert client.get("/health/").status_code == 403
    assert client.get("/health/", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200


def test_health_command_exit_codes(at):
    at(NOVEMBER)
    swept(NOVEMBER)
    out = StringIO()
    call_command("health", "--json", stdout=out)  # a warning alone exits 0
    assert json.loads(out.getvalue())["status"] == "warn"

    with pytest.raises(SystemExit) as strict:
        call_command("health", "--strict", stdout=StringIO())
    assert strict.value.code == 1

    at(NOVEMBER + dt.timedelta(minutes=5))  # last sweep is now 300 s old
    text = StringIO()
    with pytest.raises(SystemExit) as failing:
        call_command("health", stdout=text)
    assert failing.value.code == 1
    lines = text.getvalue().splitlines()
    assert lines[0] == "status: fail"
    assert any(line.startswith("last_sweep: FAIL") for line in lines)
    assert any(line.startswith("calendar: WARN") for line in lines)
