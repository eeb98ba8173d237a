"""`Case.next_due_at` (the case lists' urgency order) is kept equal to the clocks by every
service that changes a clock, and the list queries stay index-friendly at county scale."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.models import Min
from django.urls import reverse

from mediation.accounts.models import Role
from mediation.cases.models import Case, ReferralStatus
from mediation.cases.selectors import cases_visible_to
from mediation.cases.services import case_pause_clock, case_resume_clock
from mediation.deadlines.models import Clock, ClockStatus
from mediation.escalation.models import Escalation
from mediation.escalation.services import escalation_approve_extension
from mediation.escalation.sweeps import sweep_run
from mediation.web.views import common as web_common
from tests.factories.accounts import head_of, staff
from tests.factories.agencies import township_tree
from tests.factories.cases import (
    DISPUTE_PATHS,
    PETITION_PATHS,
    advance,
    dispute_in_state,
    petition_in_state,
    register_dispute,
)

pytestmark = pytest.mark.django_db


def expected_next_due(case_id: int) -> dt.datetime | None:
    return Clock.objects.filter(case_id=case_id, status=ClockStatus.RUNNING, kind="duty").aggregate(
        m=Min("due_at")
    )["m"]


def assert_in_step(case_id: int) -> None:
    stored = Case.objects.values_list("next_due_at", flat=True).get(pk=case_id)
    assert stored == expected_next_due(case_id)


@pytest.fixture
def town():
    return township_tree()


@pytest.mark.parametrize("state", sorted(DISPUTE_PATHS))
def test_every_dispute_state_stores_its_earliest_running_duty_due(town, now, state):
    case = dispute_in_state(state, township=town, now=now)

    assert_in_step(case.pk)
    if case.closed_at is not None:
        assert Case.objects.get(pk=case.pk).next_due_at is None


@pytest.mark.parametrize("state", sorted(PETITION_PATHS))
def test_every_petition_state_stores_its_earliest_running_duty_due(town, now, state):
    case = petition_in_state(state, township=town, now=now)

    assert_in_step(case.pk)


def test_a_transition_moves_the_stored_due_to_the_next_clock(town, now):
    case = register_dispute(town, now=now)
    triage_due = Case.objects.get(pk=case.pk).next_due_at
    assert triage_due is not None
    assert triage_due == expected_next_due(case.pk)

    advance(case, "triage", township=town, now=now + dt.timedelta(hours=1))
    advance(case, "assign", township=town, now=now + dt.timedelta(hours=2))

    after = Case.objects.get(pk=case.pk).next_due_at
    assert after != triage_due  # the triage clock stopped, the acceptance clock runs
    assert_in_step(case.pk)


def test_pausing_and_resuming_a_clock_updates_the_stored_due(town, now):
    petition = petition_in_state("under_rereview", township=town, now=now)
    officer = staff(petition.holder_agency, Role.PETITION_OFFICER)
    running = Case.objects.get(pk=petition.pk).next_due_at
    assert running is not None

    case_pause_clock(
        case_id=petition.pk,
        actor=officer,
        now=now + dt.timedelta(days=2),
        rule_code="petition.rereview",
        reason="组织听证",
        on=dt.date(2026, 3, 12),
    )
    paused = Case.objects.get(pk=petition.pk).next_due_at
    assert_in_step(petition.pk)
    assert paused != running  # a paused clock is not running: it no longer orders the list

    case_resume_clock(
        case_id=petition.pk,
        actor=officer,
        now=now + dt.timedelta(days=5),
        rule_code="petition.rereview",
        on=dt.date(2026, 3, 15),
    )
    resumed = Case.objects.get(pk=petition.pk).next_due_at
    assert_in_step(petition.pk)
    assert resumed is not None
    assert resumed > running


def test_an_approved_extension_updates_the_stored_due(town, now):
    mediator = staff(town.village_committee, Role.MEDIATOR)
    head_of(town.village_committee)
    case = register_dispute(town, now=now, actor=mediator)
    before = Case.objects.get(pk=case.pk).next_due_at
    later = before + dt.timedelta(seconds=5)
    sweep_run(now=later, trigger="test")
    escalation = Escalation.objects.get(case=case, level=1)

    escalation_approve_extension(
        escalation_id=escalation.pk,
        actor=staff(town.centre, Role.SUPERVISOR),
        now=later + dt.timedelta(hours=9),
        extra_days=7,
        reason="当事人外出务工",
    )

    after = Case.objects.get(pk=case.pk).next_due_at
    assert after is not None
    assert after > before
    assert_in_step(case.pk)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL plan")
def test_visibility_filter_can_use_indexes_instead_of_reading_every_case(town, now):
    # Given a supervisor whose agency has a pending referral in (the OR branch that, written
    # as EXISTS, forces a scan of the whole case table)
    register_dispute(town, now=now)
    referred = dispute_in_state("assigned", township=town, now=now)
    assert referred.referrals.filter(status=ReferralStatus.PENDING).exists()
    user = staff(town.committee, Role.MEDIATOR)
    qs = cases_visible_to(user).filter(closed_at__isnull=True)

    # When the planner may not scan the table sequentially
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    # Then it has an index plan for both branches (the EXISTS form had none: still a Seq Scan)
    assert "Seq Scan on cases_case" not in plan, plan
    assert "ANY" in plan, plan
    assert "InitPlan" in plan, plan
    # And the result is the holder's cases plus the referred one
    assert referred.pk in set(qs.values_list("pk", flat=True))


def test_a_list_longer_than_the_count_cap_pages_without_an_exact_total(
    town, now, client, monkeypatch
):
    monkeypatch.setattr(web_common.CappedPaginator, "cap", 3)
    monkeypatch.setattr(web_common, "PAGE_SIZE", 2)
    supervisor = staff(town.centre, Role.SUPERVISOR)
    for i in range(5):
        register_dispute(town, now=now, title=f"纠纷{i}")
    client.force_login(supervisor)

    response = client.get(reverse("web:cases_agency"))

    page = response.context["page"]
    assert page.paginator.capped is True
    assert page.paginator.count == 4  # counted up to cap + 1, not all five
    assert page.paginator.num_pages == 2
    assert "超过 3 条" in response.content.decode()


def test_a_list_within_the_cap_shows_the_exact_total(town, now, client):
    supervisor = staff(town.centre, Role.SUPERVISOR)
    for i in range(3):
        register_dispute(town, now=now, title=f"纠纷{i}")
    client.force_login(supervisor)

    response = client.get(reverse("web:cases_agency"))

    page = response.context["page"]
    assert page.paginator.capped is False
    assert page.paginator.count == 3
