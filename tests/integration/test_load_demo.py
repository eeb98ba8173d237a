"""`manage.py load_demo`: a realistic township, built through the services, loaded once."""

from __future__ import annotations

import datetime as dt
import random
import re
from collections import defaultdict
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from mediation.accounts.models import Role, User
from mediation.agencies.models import Agency
from mediation.cases.management.commands.load_demo import DemoBuilder
from mediation.cases.models import (
    Agreement,
    Case,
    CaseEvent,
    CaseParty,
    DisputeState,
    Extension,
    Opinion,
    PetitionState,
    Referral,
)
from mediation.core import clock
from mediation.core.clock import SHANGHAI
from mediation.deadlines.models import Clock, ClockStatus
from mediation.parties.models import Party

pytestmark = pytest.mark.django_db

ALL_STATES = {("dispute", s) for s in DisputeState.values} | {
    ("petition", s) for s in PetitionState.values
}


def _load(**options) -> str:
    out = StringIO()
    call_command("load_demo", stdout=out, **options)
    return out.getvalue()


def _counts() -> dict[str, object]:
    return {
        "agencies": Agency.objects.count(),
        "users": User.objects.count(),
        "groups": Group.objects.count(),
        "cases": Case.objects.count(),
        "events": CaseEvent.objects.count(),
        "clocks": Clock.objects.count(),
        "parties": Party.objects.count(),
        "case_parties": CaseParty.objects.count(),
        "referrals": Referral.objects.count(),
        "agreements": Agreement.objects.count(),
        "opinions": Opinion.objects.count(),
        "extensions": Extension.objects.count(),
        "states": sorted(Case.objects.values_list("kind", "state")),
    }


def test_loading_twice_changes_nothing():
    _load(cases=60, seed=1)
    first = _counts()

    output = _load(cases=60, seed=1)

    assert _counts() == first
    assert first["cases"] >= 60
    assert "演示乡镇已有案件，未新建案件。" in output


def test_demo_cases_cover_every_state_with_a_real_history():
    output = _load(cases=60, seed=1)

    states = set(Case.objects.values_list("kind", "state"))
    assert states >= ALL_STATES

    # Some clocks are overdue today, and only running clocks are counted as such.
    now = clock.now()
    overdue = Clock.objects.filter(status=ClockStatus.RUNNING, due_at__lt=now)
    assert overdue.exists()

    # Every case has its registration event and contiguous versions 1..version.
    versions: dict[int, list[int]] = defaultdict(list)
    for case_id, version in CaseEvent.objects.values_list("case_id", "version"):
        versions[case_id].append(version)
    for case in Case.objects.all():
        assert sorted(versions[case.pk]) == list(range(1, case.version + 1)), case.number
    first_events = CaseEvent.objects.filter(version=1)
    assert set(first_events.values_list("transition", flat=True)) == {"register"}

    # Back-dated: received 0–120 days ago, no event and no date field in the future.
    today = clock.local_date(now)
    for case in Case.objects.all():
        assert today - dt.timedelta(days=120) <= case.received_on <= today
        assert case.accepted_on is None or case.accepted_on <= today
    assert not CaseEvent.objects.filter(at__gt=now).exists()
    assert not Agreement.objects.filter(effective_on__gt=today).exists()
    assert not Opinion.objects.filter(served_on__gt=today).exists()

    # Parties carry checksum-valid 建安区 ID numbers, stored masked.
    masked = set(
        Party.objects.exclude(id_number_masked="").values_list("id_number_masked", flat=True)
    )
    assert masked
    assert all(m.startswith("411") and len(m) == 18 for m in masked)

    assert "演示账号（密码均为 demo12345）" in output
    assert "tiaojie1" in output


def test_demo_users_cover_every_role_and_can_use_the_admin():
    _load(cases=0)

    users = {u.username: u for u in User.objects.all()}
    assert {u.role for u in users.values()} == set(Role.values)
    assert all(u.is_staff for u in users.values())
    assert users["admin"].is_superuser
    assert users["tiaojie1"].check_password("demo12345")
    assert users["duban1"].has_perm("accounts.reveal_id_number")
    assert users["sifa1"].has_perm("accounts.reveal_id_number")
    assert not users["tiaojie1"].has_perm("accounts.reveal_id_number")
    assert users["jingcha1"].has_perm("cases.view_dispute")
    assert Agency.objects.get(code="jgc-pab").head == users["duban1"]
    assert Agency.objects.get(code="jgc-xfb").head == users["xinfang1"]
    township = Agency.objects.get(code="jgc-pab")
    assert Agency.objects.get(code="jgc-v-qh").pk in township.descendant_ids()


def test_the_default_count_is_planned_across_every_state_deterministically():
    _load(cases=0)
    now = dt.datetime(2026, 3, 11, 10, 0, tzinfo=SHANGHAI)

    plans = DemoBuilder(rng=random.Random(2025), now=now).plans(200)
    again = DemoBuilder(rng=random.Random(2025), now=now).plans(200)

    assert len(plans) == 200
    assert {(p.kind, p.target) for p in plans} == ALL_STATES
    assert [(p.target, p.texts["title"], p.times) for p in plans] == [
        (p.target, p.texts["title"], p.times) for p in again
    ]
    for plan in plans:
        assert plan.times == sorted(plan.times)
        assert (
            now - dt.timedelta(days=120)
            <= plan.times[0]
            < plan.times[-1] + dt.timedelta(seconds=1)
            <= now
        )


@pytest.mark.parametrize("days_later", [0, 1, 3, 6])
def test_the_readme_states_what_the_default_load_creates(monkeypatch, days_later):
    # README "scripts/run", step 3: the figures of a default `load_demo`, whatever day it is
    # loaded on (the dates are relative to today; the mix must not be).
    from mediation.cases.management.commands import load_demo

    real_now = clock.now()
    monkeypatch.setattr(
        load_demo.system_clock, "now", lambda: real_now + dt.timedelta(days=days_later)
    )
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    stated = re.search(
        r"(\d+) agencies, (\d+) users of every role, and (\d+)\s+cases: (\d+) registered, "
        r"(\d+) disputes and (\d+) petitions, plus (\d+) disputes that 访调对接 opened",
        " ".join(readme.split()),
    )
    assert stated, "README no longer states the demo figures in the expected words"

    _load()

    cases = Case.objects.all()
    spawned = cases.filter(spawned_from__isnull=False)
    figures = [
        Agency.objects.count(),
        User.objects.count(),
        cases.count(),
        cases.count() - spawned.count(),
        cases.filter(kind="dispute", spawned_from__isnull=True).count(),
        cases.filter(kind="petition").count(),
        spawned.filter(kind="dispute").count(),
    ]
    assert [int(n) for n in stated.groups()] == figures, figures
