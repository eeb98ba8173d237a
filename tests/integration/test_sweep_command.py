"""`manage.py sweep --once [--json] [--now ISO] [--no-deliver]`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core import mail
from django.core.management import CommandError, call_command

from mediation.accounts.models import Role
from mediation.deadlines.models import Reminder
from mediation.escalation.models import Escalation, SweepRun
from mediation.notifications.models import Delivery
from tests.factories.accounts import head_of, staff
from tests.factories.agencies import township_tree
from tests.factories.cases import register_dispute

REPO_ROOT = Path(__file__).resolve().parents[2]
AFTER_DUE = "2026-03-13T00:00:05+08:00"


def sweep_json(*args: str) -> dict:
    out = StringIO()
    call_command("sweep", "--once", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture
def overdue(now):
    town = township_tree()
    head = head_of(town.village_committee)
    head.email = "head@example.org"
    head.save(update_fields=["email"])
    case = register_dispute(town, now=now, actor=staff(town.village_committee, Role.MEDIATOR))
    # This test is about escalation. Registration also planned the triage clock's due-day
    # reminder (09:00 on 03-12); swept 15 hours late it would arrive as a digest, which
    # tests/integration/test_sweeps.py covers. Take it out of the picture.
    Reminder.objects.filter(status="planned").update(status="cancelled")
    return case


@pytest.mark.django_db
def test_sweep_once_json_then_nothing_the_second_time(overdue):
    first = sweep_json("--now", AFTER_DUE)
    second = sweep_json("--now", AFTER_DUE)

    assert first["now"] == AFTER_DUE
    assert first["escalated"] == 1
    assert first["escalated_by_level"] == {"1": 1, "2": 0, "3": 0}
    assert first["notifications_queued"] == 1
    assert first["reminders_sent"] == 0
    assert (first["deliveries_sent"], first["deliveries_failed"]) == (1, 0)
    assert len(mail.outbox) == 1
    for key in ("escalated", "notifications_queued", "reminders_sent", "deliveries_sent"):
        assert second[key] == 0, key
    assert Escalation.objects.count() == 1
    assert SweepRun.objects.get(pk=first["sweep_run_id"]).counts["escalated"] == 1


@pytest.mark.django_db
def test_no_deliver_only_queues(overdue):
    result = sweep_json("--now", "2026-03-13T00:00:05", "--no-deliver")  # naive: Shanghai

    assert result["now"] == AFTER_DUE
    assert result["deliveries_queued"] == 1
    assert result["deliveries_sent"] == 0
    assert result["delivered_inline"] is False
    assert Delivery.objects.get().status == "pending"
    assert mail.outbox == []


@pytest.mark.django_db
def test_text_output(overdue):
    out = StringIO()
    call_command("sweep", "--once", "--now", AFTER_DUE, stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"sweep at {AFTER_DUE}")
    assert "escalated: 1 (level 1: 1, level 2: 0, level 3: 0)" in lines
    assert "deliveries sent: 1, failed: 0, retrying: 0" in lines


@pytest.mark.parametrize(
    "args",
    [
        ["--once", "--now", "yesterday"],
        ["--once", "--now", "2026-02-30T10:00:00"],
        ["--once", "--batch-size", "0"],
        ["--now", "2026-03-13T00:00:05"],
    ],
)
def test_bad_input_is_exit_2(args):
    with pytest.raises(CommandError) as exc:
        call_command("sweep", *args, stdout=StringIO())
    assert exc.value.returncode == 2


def test_bad_input_from_the_command_line_is_one_line_exit_2():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mediation.settings.test"}
    for args in (["--once", "--now", "nope"], ["--once", "--bogus"]):
        proc = subprocess.run(
            [sys.executable, "manage.py", "sweep", *args],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 2, proc.stderr
        assert proc.stdout == ""
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "Traceback" not in proc.stderr
