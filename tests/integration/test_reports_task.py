"""The periodic statistics refresh task: pinned, idempotent, on the beat with expires."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.forms.models import model_to_dict

from mediation.reports.models import (
    DueDaily,
    OnTimeDaily,
    OnTimeMonthly,
    OpenCaseCount,
    RegisteredDaily,
    StateTimeDaily,
    StatsSnapshot,
)
from tests.factories.agencies import township_tree
from tests.factories.cases import dispute_in_state, register_dispute
from workers.celery import VISIBILITY_TIMEOUT, app
from workers.reports import refresh_stats
from workers.schedule import STATS_REFRESH_SECONDS

pytestmark = pytest.mark.django_db

ROLLUPS = (OpenCaseCount, OnTimeDaily, OnTimeMonthly, DueDaily, RegisteredDaily, StateTimeDaily)


def rows() -> dict[str, list[dict]]:
    return {
        m.__name__: sorted(
            (tuple(sorted((k, str(v)) for k, v in model_to_dict(o).items() if k != "id")))
            for o in m.objects.all()
        )
        for m in ROLLUPS
    }


@pytest.fixture
def fake_now(tmp_path, monkeypatch, now):
    path = tmp_path / "now"
    path.write_text(now.isoformat())
    monkeypatch.setenv("MEDIATION_FAKE_NOW_FILE", str(path))


def test_refresh_task_twice_gives_the_same_rows(fake_now, now):
    township = township_tree()
    register_dispute(township, now=now - dt.timedelta(days=9))
    dispute_in_state("closed_resolved", township=township, now=now - dt.timedelta(days=3))

    refresh_stats.apply()
    first = rows()
    refresh_stats.apply()

    assert rows() == first
    assert all(first[m.__name__] for m in (OpenCaseCount, DueDaily, StateTimeDaily))
    assert StatsSnapshot.objects.get().as_of == now


def test_refresh_stats_command(fake_now, now, capsys):
    register_dispute(township_tree(), now=now)

    call_command("refresh_stats")

    assert "statistics as of 2026-03-11T10:00:00+08:00" in capsys.readouterr().out
    assert OpenCaseCount.objects.get().n == 1


def test_task_name_limits_and_beat_entry():
    assert refresh_stats.name == "workers.reports.refresh_stats"
    assert refresh_stats.acks_late is True
    assert refresh_stats.reject_on_worker_lost is True
    assert refresh_stats.soft_time_limit < refresh_stats.time_limit < VISIBILITY_TIMEOUT
    assert refresh_stats.__doc__
    entry = app.conf.beat_schedule["refresh-stats"]
    assert entry["task"] == refresh_stats.name
    assert entry["schedule"] == entry["options"]["expires"] == STATS_REFRESH_SECONDS
    assert entry["options"]["queue"] == "reports"  # not on the one-process sweeps worker
