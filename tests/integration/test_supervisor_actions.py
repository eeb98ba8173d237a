"""Supervisor actions on escalations: each is audited (case.version + CaseEvent), runs in one
transaction with the case row locked, and a refused action writes nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from mediation.accounts.models import Role
from mediation.cases.models import Case, CaseEvent, Custody, Extension
from mediation.core.clock import SHANGHAI, end_of_day
from mediation.core.errors import Conflict, InvalidInput, PermissionDenied
from mediation.deadlines import services as clock_services
from mediation.deadlines.calendar_source import current_calendar
from mediation.deadlines.models import Clock, ClockStatus, Reminder
from mediation.deadlines.reminders import plan_reminders_for_case
from mediation.escalation.models import Escalation
from mediation.escalation.selectors import (
    escalation_list_for_case,
    escalation_open_count_for,
    escalation_queue_for,
)
from mediation.escalation.services import (
    escalation_acknowledge,
    escalation_approve_extension,
    escalation_issue_note,
    escalation_reassign,
    escalation_resolve,
)
from mediation.escalation.sweeps import sweep_run
from mediation.notifications.models import Notification
from tests.factories.accounts import head_of, staff
from tests.factories.agencies import township_tree
from tests.factories.cases import register_dispute

pytestmark = pytest.mark.django_db

JUST_AFTER = dt.datetime(2026, 3, 13, 0, 0, 5, tzinfo=SHANGHAI)  # triage due 03-12 has passed
ACK_DUE_AT = dt.datetime(2026, 3, 17, 0, 0, tzinfo=SHANGHAI)
LATER = dt.datetime(2026, 3, 13, 9, 30, tzinfo=SHANGHAI)


@pytest.fixture
def town():
    return township_tree()


@pytest.fixture
def escalated(town, now):
    """A village dispute whose triage clock is overdue and escalated to level 1."""
    mediator = staff(town.village_committee, Role.MEDIATOR)
    head_of(town.village_committee)
    case = register_dispute(town, now=now, actor=mediator)
    sweep_run(now=JUST_AFTER, trigger="test")
    return Escalation.objects.get(case=case, level=1)


@pytest.fixture
def supervisor(town):
    return staff(town.centre, Role.SUPERVISOR)


def last_event(case_id: int) -> CaseEvent:
    return CaseEvent.objects.filter(case_id=case_id).order_by("-version").first()


def test_acknowledge_is_audited_and_stops_the_climb(escalated, supervisor):
    version = Case.objects.get(pk=escalated.case_id).version

    esc = escalation_acknowledge(
        escalation_id=escalated.pk, actor=supervisor, now=LATER, note="已签收，督促研判"
    )

    assert (esc.status, esc.acknowledged_at, esc.acknowledged_by) == (
        "acknowledged",
        LATER,
        supervisor,
    )
    case = Case.objects.get(pk=esc.case_id)
    assert case.version == version + 1
    event = last_event(case.pk)
    assert (event.version, event.transition, event.actor) == (
        case.version,
        "escalation_acknowledge",
        supervisor,
    )
    assert event.data == {"escalation_id": esc.pk, "level": 1, "clock_id": esc.clock_id}
    assert event.note == "已签收，督促研判"
    assert esc.data["notes"][0]["action"] == "acknowledge"
    assert sweep_run(now=ACK_DUE_AT + dt.timedelta(days=2), trigger="test").counts.escalated == 0
    with pytest.raises(Conflict):
        escalation_acknowledge(escalation_id=esc.pk, actor=supervisor, now=LATER)


def test_the_holder_head_may_act_on_level_1(escalated, town):
    head = town.village_committee.head
    esc = escalation_acknowledge(escalation_id=escalated.pk, actor=head, now=LATER)
    assert esc.acknowledged_by == head


def test_others_may_not_act_and_nothing_is_written(escalated, town):
    other_town = township_tree()
    outsider = staff(other_town.centre, Role.SUPERVISOR)
    mediator = staff(town.village_committee, Role.MEDIATOR)  # not a supervisor
    before = (Case.objects.get(pk=escalated.case_id).version, CaseEvent.objects.count())

    for actor in (outsider, mediator):
        with pytest.raises(PermissionDenied):
            escalation_acknowledge(escalation_id=escalated.pk, actor=actor, now=LATER)
        with pytest.raises(PermissionDenied):
            escalation_resolve(escalation_id=escalated.pk, actor=actor, now=LATER)

    assert (Case.objects.get(pk=escalated.case_id).version, CaseEvent.objects.count()) == before
    assert Escalation.objects.get(pk=escalated.pk).status == "open"


def test_reassign_to_another_agency_and_mediator(escalated, town, supervisor):
    target = town.judicial_office
    new_mediator = staff(target, Role.MEDIATOR)
    target_head = head_of(target)

    esc = escalation_reassign(
        escalation_id=escalated.pk,
        actor=supervisor,
        now=LATER,
        reason="村调委会无法按期研判",
        to_agency_id=target.pk,
        to_user_id=new_mediator.pk,
    )

    case = Case.objects.get(pk=esc.case_id)
    assert (case.holder_agency_id, case.assignee_id) == (target.pk, new_mediator.pk)
    assert esc.status == "acknowledged"
    assert Custody.objects.get(case=case, ended_at__isnull=True).agency_id == target.pk
    event = last_event(case.pk)
    assert event.transition == "escalation_reassign"
    assert event.data["to_agency"] == target.pk
    assert event.data["to_assignee"] == new_mediator.pk
    recipients = set(
        Notification.objects.filter(kind="reassigned").values_list("recipient_id", flat=True)
    )
    assert recipients == {new_mediator.pk, target_head.pk}


def test_reassign_rejects_a_mediator_of_another_agency(escalated, town, supervisor):
    stranger = staff(town.police_station, Role.POLICE_OFFICER)
    with pytest.raises(InvalidInput):
        escalation_reassign(
            escalation_id=escalated.pk,
            actor=supervisor,
            now=LATER,
            reason="改派",
            to_user_id=stranger.pk,
        )
    assert Case.objects.get(pk=escalated.case_id).assignee.agency_id == town.village_committee.pk


def test_approve_extension_moves_the_clock_replans_reminders_and_resolves(escalated, supervisor):
    clock = Clock.objects.get(pk=escalated.clock_id)
    generation = clock.generation

    esc = escalation_approve_extension(
        escalation_id=escalated.pk,
        actor=supervisor,
        now=LATER,
        extra_days=7,
        reason="当事人外出务工，需补充调查",
    )

    clock.refresh_from_db()
    # Triage: 1 working day from 03-11 = 03-12, + 7 days = Thu 03-19.
    assert clock.due == dt.date(2026, 3, 19)
    assert clock.due_at == end_of_day(dt.date(2026, 3, 19))
    assert clock.extra_days == 7
    assert clock.generation == generation + 1
    assert (esc.status, esc.resolution) == ("resolved", "extension_approved")
    extension = Extension.objects.get(case_id=esc.case_id)
    assert (extension.extra_days, extension.approved_by) == (7, supervisor)
    event = last_event(esc.case_id)
    assert event.transition == "escalation_approve_extension"
    assert (event.data["old_due"], event.data["new_due"]) == ("2026-03-12", "2026-03-19")
    planned = dict(
        Reminder.objects.filter(clock=clock, generation=clock.generation).values_list(
            "offset_code", "send_at"
        )
    )
    assert set(planned) == {"wd3", "wd1", "due"}  # 03-16, 03-18, 03-19 at 09:00
    # The sweep leaves it resolved, and does not escalate the clock again before 03-19.
    assert sweep_run(now=LATER + dt.timedelta(minutes=1), trigger="test").counts.escalated == 0


def test_extension_of_the_mediation_period_goes_to_the_case(escalated, supervisor, now):
    case = Case.objects.get(pk=escalated.case_id)
    Case.objects.filter(pk=case.pk).update(state="mediating", accepted_on=dt.date(2026, 2, 1))
    clock = clock_services.clock_start(
        case_id=case.pk,
        rule_code="dispute.mediate",
        start_date=dt.date(2026, 2, 1),
        entered_state="mediating",
        now=now,
        calendar=current_calendar(),
    )
    sweep_run(now=JUST_AFTER + dt.timedelta(hours=1), trigger="test")
    esc = Escalation.objects.get(clock=clock, level=1)

    escalation_approve_extension(
        escalation_id=esc.pk, actor=supervisor, now=LATER, extra_days=15, reason="鉴定"
    )

    case.refresh_from_db()
    clock.refresh_from_db()
    assert case.extension_days == 15
    assert clock.extra_days == 15
    assert clock.due == dt.date(2026, 3, 18)  # 03-03 + 15 days


def test_extension_is_validated(escalated, supervisor):
    for days in (0, -1, 400):
        with pytest.raises(InvalidInput):
            escalation_approve_extension(
                escalation_id=escalated.pk,
                actor=supervisor,
                now=LATER,
                extra_days=days,
                reason="x",
            )
    with pytest.raises(InvalidInput):
        escalation_approve_extension(
            escalation_id=escalated.pk, actor=supervisor, now=LATER, extra_days=3, reason=" "
        )


def test_extension_of_a_stopped_clock_is_refused(escalated, supervisor):
    Clock.objects.filter(pk=escalated.clock_id).update(status=ClockStatus.STOPPED)
    with pytest.raises(Conflict):
        escalation_approve_extension(
            escalation_id=escalated.pk, actor=supervisor, now=LATER, extra_days=3, reason="x"
        )


def test_supervision_note_marks_the_case_and_notifies_the_holder(escalated, town, supervisor):
    esc = escalation_issue_note(
        escalation_id=escalated.pk, actor=supervisor, now=LATER, text="请于明日前完成研判"
    )

    case = Case.objects.get(pk=esc.case_id)
    assert case.supervised is True
    assert esc.status == "open"
    assert esc.data["notes"][-1]["text"] == "请于明日前完成研判"
    event = last_event(case.pk)
    assert (event.transition, event.note) == ("escalation_note", "请于明日前完成研判")
    notes = Notification.objects.filter(kind="supervision_note")
    assert set(notes.values_list("recipient_id", flat=True)) == {
        case.assignee_id,
        town.village_committee.head_id,
    }
    assert all(n.key.startswith(f"supnote:{event.pk}:user:") for n in notes)


def test_resolve_closes_this_and_lower_levels(escalated, town, supervisor):
    staff(town.centre, Role.SUPERVISOR)
    sweep_run(now=ACK_DUE_AT, trigger="test")
    level2 = Escalation.objects.get(clock_id=escalated.clock_id, level=2)

    escalation_resolve(escalation_id=level2.pk, actor=supervisor, now=ACK_DUE_AT, note="已协调")

    statuses = dict(
        Escalation.objects.filter(clock_id=escalated.clock_id).values_list("level", "status")
    )
    assert statuses == {1: "resolved", 2: "resolved"}
    with pytest.raises(Conflict):
        escalation_issue_note(escalation_id=level2.pk, actor=supervisor, now=ACK_DUE_AT, text="x")


def test_queue_shows_the_agencys_escalations_with_their_ack_clock(escalated, town, supervisor):
    head = town.village_committee.head
    assert [e.pk for e in escalation_queue_for(user=head)] == [escalated.pk]
    assert list(escalation_queue_for(user=supervisor)) == []

    sweep_run(now=ACK_DUE_AT, trigger="test")
    queue = list(escalation_queue_for(user=supervisor))

    assert [(e.level, e.ack_due_at) for e in queue] == [
        (2, dt.datetime(2026, 3, 19, 0, 0, tzinfo=SHANGHAI))
    ]
    assert escalation_open_count_for(user=supervisor) == 1
    escalation_acknowledge(escalation_id=queue[0].pk, actor=supervisor, now=ACK_DUE_AT)
    assert escalation_open_count_for(user=supervisor) == 0
    assert len(escalation_queue_for(user=supervisor)) == 1  # acknowledged, still listed
    assert [e.level for e in escalation_list_for_case(case_id=escalated.case_id)] == [1, 2]


def test_planner_cancels_reminders_when_the_clock_stops(escalated, now):
    clock = Clock.objects.get(pk=escalated.clock_id)
    clock_services.clock_recompute(clock=clock, now=now, calendar=current_calendar(), extra_days=5)
    plan_reminders_for_case(clock.case_id, now)
    assert Reminder.objects.filter(clock=clock, status="planned").exists()

    clock_services.clock_stop(clock=clock, now=LATER, reason="test")
    result = plan_reminders_for_case(clock.case_id, LATER)

    assert result.cancelled >= 1
    assert not Reminder.objects.filter(clock=clock, status="planned").exists()
    cancelled = Reminder.objects.filter(clock=clock, status="cancelled")
    assert set(cancelled.values_list("cancel_reason", flat=True)) == {"clock_stopped"}
