"""What a transition's reminder re-planning does, and how many queries a transition costs
(issue 5, benchmark 3): the cheaper paths keep every piece of the work.

Dates: the `now` fixture is Wed 2026-03-11 10:00 Asia/Shanghai.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from knox.models import AuthToken
from rest_framework.test import APIClient

from mediation.accounts.models import Role
from mediation.cases.models import Case
from mediation.cases.selectors import case_detail_for
from mediation.cases.services import case_transition
from mediation.core.clock import SHANGHAI
from mediation.deadlines import services as clock_services
from mediation.deadlines.calendar_source import current_calendar
from mediation.deadlines.models import Clock, ClockStatus, Reminder, ReminderStatus
from mediation.deadlines.reminders import _cancel_stale, plan_reminders_for_case
from tests.factories.accounts import UserFactory, staff
from tests.factories.agencies import township_tree
from tests.factories.cases import register_dispute

pytestmark = pytest.mark.django_db

# The calendar is read through one statement: the fingerprint function (calendar_source).
CALENDAR_READ = "deadlines_calendar_fingerprint"


def at(month: int, day: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=SHANGHAI)


def _clock(case, rule_code: str, now: dt.datetime) -> Clock:
    return clock_services.clock_start(
        case_id=case.pk,
        rule_code=rule_code,
        start_date=now.date(),
        entered_state=case.state,
        now=now,
        calendar=current_calendar(),
    )


def _reminder(clock: Clock, now: dt.datetime, *, generation: int = 1, **kw) -> Reminder:
    return Reminder.objects.create(
        clock=clock,
        generation=generation,
        offset_code=kw.pop("offset_code", "wd1"),
        send_at=now + dt.timedelta(days=5),
        created_at=now,
        **kw,
    )


def test_stale_reminders_are_cancelled_with_the_first_reason_that_applies(now):
    case = register_dispute(township_tree(), now=now)
    Reminder.objects.all().delete()
    stopped = Clock.objects.get(case=case, rule_code="dispute.triage")
    paused, older, window, fine = (
        _clock(case, code, now)
        for code in (
            "dispute.assign_ack",
            "dispute.mediate",
            "dispute.followup",
            "referral.police_ack",
        )
    )
    Clock.objects.filter(pk=stopped.pk).update(status=ClockStatus.STOPPED, generation=3)
    Clock.objects.filter(pk=paused.pk).update(status=ClockStatus.PAUSED, generation=2)
    Clock.objects.filter(pk=older.pk).update(generation=2)
    Clock.objects.filter(pk=window.pk).update(kind="window")
    rows = {
        "stopped": _reminder(stopped, now),  # also an older generation: stopped wins
        "paused": _reminder(paused, now),  # also older: paused wins
        "older": _reminder(older, now),
        "window": _reminder(window, now),
        "fine": _reminder(fine, now),
        "sent": _reminder(stopped, now, offset_code="due", status=ReminderStatus.SENT),
    }

    with CaptureQueriesContext(connection) as queries:
        cancelled = _cancel_stale(case.pk, at(3, 11, 11))

    assert (cancelled, len(queries)) == (4, 1)
    got = {
        name: Reminder.objects.values_list("status", "cancel_reason").get(pk=r.pk)
        for name, r in rows.items()
    }
    assert got == {
        "stopped": ("cancelled", "clock_stopped"),
        "paused": ("cancelled", "clock_paused"),
        "older": ("cancelled", "superseded"),
        "window": ("cancelled", "not_duty"),
        "fine": ("planned", ""),
        "sent": ("sent", ""),
    }
    assert {r.cancelled_at for r in Reminder.objects.filter(status="cancelled")} == {at(3, 11, 11)}


def test_planning_from_the_callers_clocks_equals_planning_from_the_database(now):
    case = register_dispute(township_tree(), now=at(3, 11, 7))
    Reminder.objects.all().delete()
    clocks = list(Clock.objects.filter(case=case))

    from_caller = plan_reminders_for_case(case.pk, at(3, 11, 7), live_clocks=clocks)
    planned = set(Reminder.objects.values_list("clock_id", "generation", "offset_code", "send_at"))
    Reminder.objects.all().delete()
    from_db = plan_reminders_for_case(case.pk, at(3, 11, 7))

    assert from_caller == from_db
    assert planned
    assert planned == set(
        Reminder.objects.values_list("clock_id", "generation", "offset_code", "send_at")
    )


def test_triage_and_assign_keep_their_work_within_a_query_budget(now):
    town = township_tree()
    case = register_dispute(town, now=at(3, 11, 7))
    supervisor = staff(town.centre, Role.SUPERVISOR)
    current_calendar()  # warm this process's calendar, as a running server has

    with CaptureQueriesContext(connection) as triage:
        case_transition(
            case_id=case.pk,
            transition="triage",
            actor=supervisor,
            now=at(3, 11, 8),
            data={"risk_level": "low"},
        )
    with CaptureQueriesContext(connection) as assign:
        case_transition(
            case_id=case.pk,
            transition="assign",
            actor=supervisor,
            now=at(3, 11, 9),
            data={"to_agency": town.committee.pk},
        )

    # Every piece of work is still there: lock, event, clocks, reminders.
    sql = [q["sql"] for q in triage.captured_queries + assign.captured_queries]
    assert sum("FOR UPDATE" in s for s in sql) == 2
    assert sum(s.startswith('INSERT INTO "cases_caseevent"') for s in sql) == 2
    ack = Clock.objects.get(case=case, rule_code="dispute.assign_ack")
    assert ack.status == ClockStatus.RUNNING
    assert Reminder.objects.filter(clock=ack, status="planned").exists()
    triage_clock = Clock.objects.get(case=case, rule_code="dispute.triage")
    assert set(
        Reminder.objects.filter(clock=triage_clock).values_list("status", "cancel_reason")
    ) == {("cancelled", "clock_stopped")}
    # The case row is written once per transition, its stored next due time
    # (`Case.next_due_at`, the lists' urgency order) included: no UPDATE of its own.
    case_updates = [s for s in sql if s.startswith('UPDATE "cases_case"')]
    assert len(case_updates) == 2
    assert all('"next_due_at" = ' in s for s in case_updates)
    # A transition that only stops a clock computes no date, so it reads no calendar.
    assert not any(CALENDAR_READ in q["sql"] for q in triage.captured_queries)
    assert sum(CALENDAR_READ in q["sql"] for q in assign.captured_queries) == 1
    # Each count includes the transaction's SAVEPOINT and RELEASE (BEGIN and COMMIT outside
    # a test). Before issue 12: 14 and 18 (20 and 24 for the API request, below).
    assert (len(triage), len(assign)) == (9, 15)


def test_an_api_transition_keeps_its_work_within_the_statement_budget(now):
    """Issue 12's budget, for the whole API request: at most 12 statements for a plain
    transition (triage), 16 for one that opens a referral (assign), BEGIN and COMMIT (here:
    SAVEPOINT and RELEASE) included. Token, scope, the visible case locked, clocks, reminders,
    the case row with its next due time, the event, the receiver's notice, and the answer
    from the rows in hand."""
    town = township_tree()
    case = register_dispute(town, now=at(3, 11, 7))
    supervisor = staff(town.centre, Role.SUPERVISOR)
    _token_row, token = AuthToken.objects.create(user=supervisor)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    current_calendar()  # warm this process's calendar, as a running server has

    with CaptureQueriesContext(connection) as triage:
        answer = client.post(
            f"/api/cases/{case.pk}/transitions/triage/", {"risk_level": "low"}, format="json"
        )
    assert answer.status_code == 200, answer.content
    with CaptureQueriesContext(connection) as assign:
        answer = client.post(
            f"/api/cases/{case.pk}/transitions/assign/",
            {"to_agency": town.committee.pk},
            format="json",
        )
    assert answer.status_code == 200, answer.content

    ack = Clock.objects.get(case=case, rule_code="dispute.assign_ack")
    assert answer.json()["state"] == "assigned"
    assert answer.json()["version"] == 3
    assert answer.json()["next_due"] == ack.due.isoformat()
    assert answer.json()["holder_agency"]["id"] == town.centre.pk
    assert Case.objects.get(pk=case.pk).next_due_at == ack.due_at
    assert (len(triage), len(assign)) == (10, 16)


def test_case_serializers_build_their_fields_once_per_class(now, monkeypatch):
    from rest_framework import serializers

    from mediation.api.serializers import CaseDetailSerializer

    case = register_dispute(township_tree(), now=now)
    viewer = UserFactory(is_superuser=True)
    context = {"now": now, "detail": case_detail_for(viewer, case)}
    CaseDetailSerializer(case, context=context).data  # noqa: B018 (builds, if not yet)
    built = []
    original = serializers.ModelSerializer.get_fields

    def counting(self):
        built.append(type(self))
        return original(self)

    monkeypatch.setattr(serializers.ModelSerializer, "get_fields", counting)

    first = CaseDetailSerializer(case, context=context)
    second = CaseDetailSerializer(case, context=context)

    assert first.data == second.data
    assert built == []  # neither instance introspected the model again
    # Each instance has its own field objects (bound to it), as DRF's own copies are.
    assert first.fields["holder_agency"] is not second.fields["holder_agency"]
    assert first.fields["next_due"].parent is first

    class Uncached(CaseDetailSerializer):
        def get_fields(self):
            return original(self)

    assert first.data == Uncached(case, context=context).data
