"""The sweep on real PostgreSQL: escalation ladder, reminders, digests; set-based and safe
to run concurrently.

Dates: the `now` fixture is Wed 2026-03-11 10:00 Asia/Shanghai. A dispute registered then
runs `dispute.triage` (1 working day): due Thu 03-12, due_at 03-13 00:00. `escalation.ack`
from Fri 03-13 is Mon 03-16, so its ack_due_at is 03-17 00:00.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from mediation.accounts.models import Role
from mediation.cases.services import case_transition
from mediation.core.clock import SHANGHAI, end_of_day
from mediation.deadlines import policy
from mediation.deadlines import services as clock_services
from mediation.deadlines.calendar_source import current_calendar
from mediation.deadlines.models import Clock, ClockStatus, Reminder
from mediation.deadlines.reminders import plan_reminders_for_case
from mediation.escalation import sweeps
from mediation.escalation.models import Escalation, EscalationStatus, SweepRun
from mediation.escalation.sweeps import make_context, sweep_run
from mediation.escalation.testing import overdue_clocks_bulk
from mediation.notifications.models import ChannelPreference, Delivery, Notification
from mediation.notifications.services import outbox as notification_services
from tests.factories.accounts import head_of, staff
from tests.factories.agencies import township_tree
from tests.factories.cases import register_dispute

pytestmark = pytest.mark.django_db


def at(month: int, day: int, hour: int = 10, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, second, tzinfo=SHANGHAI)


TRIAGE_DUE_AT = at(3, 13, 0)  # end of Thu 03-12
JUST_AFTER = TRIAGE_DUE_AT + dt.timedelta(seconds=5)
ACK_DUE_AT = at(3, 17, 0)  # end of Mon 03-16


@pytest.fixture
def town():
    return township_tree()


def village_dispute(town, now):
    """A dispute registered by the village committee's mediator (holder: the village)."""
    mediator = staff(town.village_committee, Role.MEDIATOR)
    head_of(town.village_committee)
    return register_dispute(town, now=now, actor=mediator)


def sweep(now, **kw):
    return sweep_run(now=now, trigger="test", **kw).counts


# Level 1 -------------------------------------------------------------------------------------


def test_overdue_duty_clock_escalates_to_level1_with_supervision_notice(town, now):
    case = village_dispute(town, now)
    head = town.village_committee.head
    clock = Clock.objects.get(case=case, rule_code="dispute.triage")
    assert clock.due_at == TRIAGE_DUE_AT

    assert sweep(TRIAGE_DUE_AT - dt.timedelta(seconds=1)).escalated == 0
    counts = sweep(JUST_AFTER)

    assert (counts.escalated, counts.escalated_level1) == (1, 1)
    esc = Escalation.objects.get()
    assert (esc.clock_id, esc.case_id, esc.level, esc.status) == (clock.pk, case.pk, 1, "open")
    assert esc.agency_id == town.village_committee.pk
    assert esc.created_at == JUST_AFTER
    assert esc.ack_due_at == ACK_DUE_AT
    notice = esc.data
    assert notice["title"] == "督办单"
    assert notice["case_number"] == case.number
    assert notice["rule_code"] == "dispute.triage"
    assert notice["rule_label"] == "矛盾纠纷研判分流期限"
    assert notice["due"] == "2026-03-12"
    assert notice["days_overdue"] == 1
    assert notice["level"] == 1
    assert notice["generation"] == clock.generation
    note = Notification.objects.get(kind="escalation")
    assert note.recipient == head
    assert note.case_id == case.pk
    assert note.key == f"escalation:{esc.pk}:user:{head.pk}"
    assert "督办单" in note.body
    assert "已超期：1 日" in note.body


def test_second_sweep_at_the_same_moment_does_nothing(town, now):
    village_dispute(town, now)
    first = sweep(JUST_AFTER)
    second = sweep(JUST_AFTER)

    assert first.escalated == 1
    assert second.escalated == second.notifications_queued == second.reminders_sent == 0
    assert Escalation.objects.count() == 1
    assert Notification.objects.filter(kind="escalation").count() == 1


def test_only_duty_clocks_escalate(town, now):
    case = village_dispute(town, now)
    calendar = current_calendar()
    window = clock_services.clock_start(
        case_id=case.pk,
        rule_code="petition.review_request",  # a party's window
        start_date=dt.date(2026, 2, 1),
        entered_state="registered",
        now=now,
        calendar=calendar,
    )
    assert window.kind == "window"
    assert window.due_at < now

    counts = sweep(JUST_AFTER)

    assert counts.escalated == 1
    assert not Escalation.objects.filter(clock=window).exists()


def test_a_paused_clock_is_not_escalated(town, now):
    case = village_dispute(town, now)
    clock = Clock.objects.get(case=case)
    Clock.objects.filter(pk=clock.pk).update(status=ClockStatus.PAUSED)

    assert sweep(JUST_AFTER).escalated == 0


# The ladder ----------------------------------------------------------------------------------


def test_ladder_climbs_once_per_level_to_township_then_county_supervisors(town, now):
    village_dispute(town, now)
    township_supervisor = staff(town.centre, Role.SUPERVISOR)
    county_supervisor = staff(town.county_centre, Role.SUPERVISOR)
    staff(town.centre, Role.MEDIATOR)  # not a supervisor: not notified

    sweep(JUST_AFTER)
    assert sweep(ACK_DUE_AT - dt.timedelta(seconds=1)).escalated == 0
    level2 = sweep(ACK_DUE_AT)
    again = sweep(ACK_DUE_AT + dt.timedelta(minutes=1))

    assert (level2.escalated, level2.escalated_level2) == (1, 1)
    assert again.escalated == 0
    esc2 = Escalation.objects.get(level=2)
    assert esc2.agency_id == town.centre.pk
    assert esc2.data["agency"] == town.centre.name
    assert esc2.data["days_overdue"] == 5  # due 03-12, swept on 03-17 (local date)
    # Tue 03-17: the next working day is Wed 03-18, so ack by 03-19 00:00.
    assert esc2.ack_due_at == at(3, 19, 0)
    assert [n.recipient for n in Notification.objects.filter(data__level=2)] == [
        township_supervisor
    ]

    level3 = sweep(at(3, 19, 0))
    assert (level3.escalated, level3.escalated_level3) == (1, 1)
    esc3 = Escalation.objects.get(level=3)
    assert esc3.agency_id == town.county_centre.pk
    assert [n.recipient for n in Notification.objects.filter(data__level=3)] == [county_supervisor]
    assert sweep(at(3, 30, 0)).escalated == 0
    assert sorted(Escalation.objects.values_list("level", flat=True)) == [1, 2, 3]


def test_acknowledged_escalation_does_not_climb(town, now):
    village_dispute(town, now)
    sweep(JUST_AFTER)
    Escalation.objects.update(status=EscalationStatus.ACKNOWLEDGED)

    assert sweep(ACK_DUE_AT + dt.timedelta(days=3)).escalated == 0
    assert Escalation.objects.count() == 1


def test_escalation_of_a_stopped_clock_is_resolved_by_the_sweep(town, now):
    case = register_dispute(town, now=now)  # held by the township centre
    sweep(JUST_AFTER)
    case_transition(
        case_id=case.pk,
        transition="triage",
        actor=staff(town.centre, Role.SUPERVISOR),
        now=JUST_AFTER + dt.timedelta(hours=9),
        data={"risk_level": "low"},
    )

    counts = sweep(JUST_AFTER + dt.timedelta(hours=9, seconds=1))

    assert counts.escalations_resolved == 1
    esc = Escalation.objects.get()
    assert (esc.status, esc.resolution) == ("resolved", "clock_stopped")
    # Nothing climbs from a resolved escalation.
    assert sweep(ACK_DUE_AT + dt.timedelta(days=5)).escalated == 0


def test_a_clock_jumping_backwards_un_escalates_nothing(town, now):
    village_dispute(town, now)
    sweep(JUST_AFTER)

    counts = sweep(JUST_AFTER - dt.timedelta(hours=1))

    assert counts.escalations_resolved == 0
    assert Escalation.objects.get().status == "open"


def test_escalation_without_head_goes_to_the_assignee(town, now):
    mediator = staff(town.village_committee, Role.MEDIATOR)
    register_dispute(town, now=now, actor=mediator)  # village committee has no head

    sweep(JUST_AFTER)

    assert Notification.objects.get(kind="escalation").recipient == mediator


# Reminders -----------------------------------------------------------------------------------


def mediation_clock(town, now, *, start=dt.date(2026, 3, 11)):
    """A running 30-day mediation clock (due Fri 04-10) on a village dispute whose triage
    clock has been stopped."""
    case = village_dispute(town, now)
    for triage in Clock.objects.filter(case=case):
        clock_services.clock_stop(clock=triage, now=now, reason="test")
    clock = clock_services.clock_start(
        case_id=case.pk,
        rule_code="dispute.mediate",
        start_date=start,
        entered_state="mediating",
        now=now,
        calendar=current_calendar(),
    )
    return case, clock


def test_planned_reminders_go_to_assignee_and_holder_head_at_their_time(town, now):
    case, clock = mediation_clock(town, now)
    assert clock.due == dt.date(2026, 4, 10)
    plan_reminders_for_case(case.pk, now)
    rows = {r.offset_code: r.send_at for r in Reminder.objects.filter(clock=clock)}
    # 3 working days before Fri 04-10: Tue 04-07; 1 before: Thu 04-09; the day: 09:00.
    assert rows == {"wd3": at(4, 7, 9), "wd1": at(4, 9, 9), "due": at(4, 10, 9)}

    assert sweep(at(4, 7, 8, 59)).reminders_sent == 0
    counts = sweep(at(4, 7, 9, 0, 30))

    assert counts.reminders_sent == 1
    assert counts.digests == 0
    wd3 = Reminder.objects.get(clock=clock, offset_code="wd3")
    assert (wd3.status, wd3.sent_at, wd3.digested) == ("sent", at(4, 7, 9, 0, 30), False)
    recipients = set(
        Notification.objects.filter(kind="reminder").values_list("recipient_id", flat=True)
    )
    assert recipients == {case.assignee_id, town.village_committee.head_id}
    note = Notification.objects.filter(kind="reminder").first()
    assert "还有 3 个工作日" in note.body
    assert sweep(at(4, 7, 9, 0, 30)).reminders_sent == 0


def test_reminders_of_an_older_generation_are_cancelled_not_sent(town, now):
    case, clock = mediation_clock(town, now)
    plan_reminders_for_case(case.pk, now)
    clock_services.clock_recompute(clock=clock, now=now, calendar=current_calendar(), extra_days=10)
    # The planner is not called here (as if the case services were not wired yet): the sweep
    # still refuses to send reminders of the old generation.
    counts = sweep(at(4, 7, 9, 1))

    assert counts.reminders_sent == 0
    assert counts.reminders_cancelled == 1
    assert Reminder.objects.get(offset_code="wd3", generation=1).status == "cancelled"


def test_after_an_outage_due_reminders_arrive_as_one_digest_per_recipient(town, now):
    mediator = staff(town.village_committee, Role.MEDIATOR)
    head = head_of(town.village_committee)
    for _ in range(3):
        case, _clock = mediation_clock(town, now)
        plan_reminders_for_case(case.pk, now)
    assert Reminder.objects.filter(status="planned").count() == 9

    assert sweep(at(4, 6, 12)).reminders_sent == 0  # the last sweep before the outage
    # Down from 04-06 until 04-09 12:00: wd3 (04-07 09:00) and wd1 (04-09 09:00) of each
    # clock came due meanwhile; all are older than REMINDER_DIGEST_AFTER_SECONDS.
    counts = sweep(at(4, 9, 12))

    assert counts.reminders_sent == counts.reminders_digested == 6
    assert counts.digests == 2
    digests = Notification.objects.filter(kind="digest").order_by("recipient_id")
    assert [d.recipient for d in digests] == sorted([mediator, head], key=lambda u: u.pk)
    for digest in digests:
        assert len(digest.data["reminder_ids"]) == 6
        # Each clock once (its latest reminder), however many of its reminders fell due.
        assert len(digest.data["clock_ids"]) == 3
        assert digest.body.count("· ") == 3
        assert digest.body.startswith("系统恢复运行，以下期限提醒在停机期间到期")
    assert not Notification.objects.filter(kind="reminder").exists()
    assert Reminder.objects.filter(status="sent", digested=True).count() == 6
    assert sweep(at(4, 9, 12)).notifications_queued == 0


def test_a_fresh_reminder_is_sent_singly_even_when_old_ones_are_digested(town, now):
    case, _clock = mediation_clock(town, now)
    plan_reminders_for_case(case.pk, now)

    counts = sweep(at(4, 9, 9, 5))  # wd3 is two days late, wd1 five minutes

    assert counts.reminders_digested == 1
    assert counts.reminders_sent == 2
    assert Notification.objects.filter(kind="digest").count() == 2
    assert Notification.objects.filter(kind="reminder").count() == 2


# Deliveries queued with the notifications ----------------------------------------------------


def test_notifications_get_email_and_webhook_deliveries_per_preferences(town, now):
    village = town.village_committee
    village.webhook_url = "http://127.0.0.1:9/robot"
    village.save(update_fields=["webhook_url"])
    mediator = staff(village, Role.MEDIATOR)
    mediator.email = "mediator@example.org"
    mediator.phone = "13800000001"
    mediator.save(update_fields=["email", "phone"])
    head = head_of(village)
    head.email = "head@example.org"
    head.save(update_fields=["email"])
    ChannelPreference.objects.create(user=head, email=False, sms=True)
    ChannelPreference.objects.create(user=mediator, email=True, sms=True)
    case = register_dispute(town, now=now, actor=mediator)
    case.refresh_from_db()

    sweep(JUST_AFTER)  # level 1 → the head only

    note = Notification.objects.get(kind="escalation")
    assert note.recipient == head
    channels = sorted(Delivery.objects.filter(notification=note).values_list("channel", flat=True))
    # The head turned e-mail off and has no phone: in-app plus the agency's group robot.
    assert channels == ["webhook"]
    assert Delivery.objects.get(notification=note).next_attempt_at == JUST_AFTER


# Set-based and concurrent --------------------------------------------------------------------


def test_escalation_sweep_is_set_based(town, now):
    mediator = staff(town.village_committee, Role.MEDIATOR)
    mediator.email = "m@example.org"
    mediator.save(update_fields=["email"])
    head_of(town.village_committee)
    overdue_clocks_bulk(
        holder=town.village_committee,
        count=2000,
        due=dt.date(2026, 3, 12),
        now=now,
        assignee_id=mediator.pk,
    )
    ctx = make_context(now=JUST_AFTER, batch_size=500)

    with CaptureQueriesContext(connection) as queries:
        escalated = sweeps.escalate_overdue(ctx)

    assert escalated == 2000
    assert Escalation.objects.filter(level=1).count() == 2000
    assert Notification.objects.filter(kind="escalation").count() == 2000
    batches = 2000 // 500 + 1  # the last, empty batch tells the loop to stop
    # A constant handful of statements per batch (claim+insert, users, preferences,
    # agencies, notifications, deliveries, savepoints), never one per row (2,000 rows).
    assert len(queries) <= 8 * batches, len(queries)  # measured: 31 for 5 batches


@pytest.mark.parametrize(("count", "passes"), [(200, 1), (201, 2)])
def test_the_overdue_clocks_are_read_again_only_when_a_pass_left_some(town, now, count, passes):
    head_of(town.village_committee)
    overdue_clocks_bulk(
        holder=town.village_committee, count=count, due=dt.date(2026, 3, 12), now=now
    )
    ctx = make_context(now=JUST_AFTER, batch_size=20)  # a window of 200 candidates per pass

    with CaptureQueriesContext(connection) as queries:
        escalated = sweeps.escalate_overdue(ctx)

    assert escalated == count
    reads = [q for q in queries if q["sql"].lstrip().startswith("SELECT c.id FROM deadlines_clock")]
    assert len(reads) == passes


def test_batches_are_split_evenly_over_the_parallel_connections():
    ids = list(range(10_000))

    two = sweeps._chunks(ids, 2000, workers=2)
    assert [len(c) for c in two] == [1667] * 5 + [1665]
    assert [i for c in two for i in c] == ids
    assert [len(c) for c in sweeps._chunks(ids, 1000, workers=2)] == [1000] * 10
    assert [len(c) for c in sweeps._chunks(ids, 2000, workers=1)] == [2000] * 5
    assert [len(c) for c in sweeps._chunks(ids[:700], 1000, workers=2)] == [700]
    assert sweeps._chunks([], 1000, workers=2) == []


def test_two_sweeps_at_once_escalate_each_clock_once(transactional_db, town, now):
    head_of(town.village_committee)
    overdue_clocks_bulk(holder=town.village_committee, count=600, due=dt.date(2026, 3, 12), now=now)
    results: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def worker():
        try:
            barrier.wait()
            results.append(sweep(JUST_AFTER, batch_size=50).escalated)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert sum(results) == 600
    assert Escalation.objects.count() == 600
    assert Notification.objects.filter(kind="escalation").count() == 600
    assert SweepRun.objects.filter(finished_at__isnull=False).count() == 2


def test_sqlite_fallback_path_gives_the_same_result(town, now, monkeypatch):
    monkeypatch.setattr(sweeps, "is_postgres", lambda: False)
    monkeypatch.setattr(notification_services, "is_postgres", lambda: False)
    village_dispute(town, now)
    staff(town.centre, Role.SUPERVISOR)
    # The triage clock's due-day reminder would come as a late digest: not this test's subject.
    Reminder.objects.filter(status="planned").update(status="cancelled")
    case, _clock = mediation_clock(town, now)
    plan_reminders_for_case(case.pk, now)

    first = sweep(JUST_AFTER)
    assert (first.escalated_level1, first.notifications_queued) == (1, 1)
    assert sweep(JUST_AFTER).escalated == 0
    assert sweep(ACK_DUE_AT).escalated_level2 == 1
    assert Escalation.objects.filter(level=2, agency=town.centre).count() == 1
    reminders = sweep(at(4, 7, 9, 1))
    assert reminders.reminders_sent == 1


def test_sweep_run_is_recorded(town, now):
    village_dispute(town, now)
    result = sweep_run(now=JUST_AFTER, trigger="test", wall_clock=lambda: JUST_AFTER)
    run = SweepRun.objects.get(pk=result.run_id)
    assert run.finished_at == JUST_AFTER
    assert run.swept_until == JUST_AFTER
    assert run.counts["escalated"] == 1
    assert run.trigger == "test"


def test_ack_due_follows_working_days(now):
    calendar = current_calendar()
    # Fri 04-03 → next working day Tue 04-07 (清明 Sat 04-04 → Mon 04-06).
    assert sweeps.ack_due_for(at(4, 3, 15), calendar) == end_of_day(dt.date(2026, 4, 7))
    assert policy.get_rule("escalation.ack").length == 1


def test_a_late_acknowledgement_of_a_lower_level_stops_the_climb(town, now):
    village_dispute(town, now)
    staff(town.centre, Role.SUPERVISOR)
    sweep(JUST_AFTER)
    sweep(ACK_DUE_AT)  # level 2
    level1 = Escalation.objects.get(level=1)
    assert level1.climb_done_at == ACK_DUE_AT
    Escalation.objects.filter(pk=level1.pk).update(status=EscalationStatus.ACKNOWLEDGED)

    assert sweep(at(3, 25)).escalated == 0
    level2 = Escalation.objects.get(level=2)
    assert (level2.status, level2.climb_done_at) == ("open", at(3, 25))
    assert not Escalation.objects.filter(level=3).exists()


def test_planner_wired_into_clock_reconciliation(town, now, monkeypatch):
    """The change proposed for mediation/cases/services.py::_reconcile_clocks, applied here
    by wrapping it: registering plans the triage reminders, triage cancels them."""
    from mediation.cases import services as case_services

    reconcile = case_services._reconcile_clocks

    def wired(case, *, now, **kwargs):
        changes = reconcile(case, now=now, **kwargs)
        plan_reminders_for_case(case.pk, now)
        return changes

    monkeypatch.setattr(case_services, "_reconcile_clocks", wired)
    registered_at = at(3, 11, 7)  # before 09:00: today's wd1 reminder is still ahead
    case = register_dispute(town, now=registered_at)
    triage = Clock.objects.get(case=case)

    assert dict(Reminder.objects.filter(clock=triage).values_list("offset_code", "status")) == {
        "wd1": "planned",
        "due": "planned",
    }
    case_transition(
        case_id=case.pk,
        transition="triage",
        actor=staff(town.centre, Role.SUPERVISOR),
        now=at(3, 11, 8),
        data={"risk_level": "low"},
    )
    assert set(Reminder.objects.filter(clock=triage).values_list("status", "cancel_reason")) == {
        ("cancelled", "clock_stopped")
    }
    assert sweep(at(3, 12, 9, 1)).reminders_sent == 0


def test_a_first_sweep_after_installation_digests_without_claiming_an_outage(town, now):
    staff(town.village_committee, Role.MEDIATOR)
    head_of(town.village_committee)
    case, _clock = mediation_clock(town, now)
    plan_reminders_for_case(case.pk, now)

    counts = sweep(at(4, 9, 12))  # no sweep ever ran before (a fresh install, demo data)

    assert counts.digests == 2
    for digest in Notification.objects.filter(kind="digest"):
        assert digest.body.startswith("以下期限提醒已到发送时间，合并发送：")
        assert "系统恢复运行" not in digest.body
        assert digest.body.count("· ") == 1
