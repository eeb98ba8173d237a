"""A holiday-data change re-dates every live clock it touches (issue 10), on real PostgreSQL.

Dates: `NOW` is Mon 2026-12-07 10:00 Asia/Shanghai. chinese-calendar covers 2026 but not 2027,
so a clock running into 2027 is provisional until the 2027 notice is entered.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.db import connection, connections, transaction

from mediation.accounts.models import Role
from mediation.cases.models import Case, CaseEvent, EventKind
from mediation.core.clock import SHANGHAI, end_of_day
from mediation.core.errors import Conflict
from mediation.deadlines import holidays
from mediation.deadlines import services as clock_services
from mediation.deadlines.calendar_source import current_calendar
from mediation.deadlines.holidays import HolidayDataBusy, holiday_change, holiday_notice_apply
from mediation.deadlines.models import (
    Clock,
    HolidayChange,
    HolidayChangeStatus,
    HolidayOverride,
    HolidayYear,
    Reminder,
    ReminderStatus,
)
from mediation.deadlines.notice import parse_notice_strict
from mediation.escalation.models import Escalation, EscalationStatus
from mediation.escalation.recalendar import holidays_recompute_pending
from mediation.escalation.selectors import escalation_queue_for
from mediation.escalation.services import escalation_issue_note
from mediation.escalation.sweeps import sweep_run
from mediation.notifications.models import Notification
from tests.factories.accounts import head_of, staff
from tests.factories.agencies import township_tree
from tests.factories.cases import register_dispute

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 12, 7, 10, 0, tzinfo=SHANGHAI)
D = dt.date.fromisoformat

NOTICE_2027 = """国务院办公厅关于2027年部分节假日安排的通知
国办发明电〔2026〕9号
经国务院批准，现将2027年元旦、春节放假调休日期的具体安排通知如下。
一、元旦：1月1日（周五）至3日（周日）放假，共3天。
二、春节：2月6日（农历正月初一、周六）至14日（农历正月初九、周日）放假调休，共9天。2月20日（周六）上班。
"""


@pytest.fixture
def town():
    t = township_tree()
    head_of(t.village_committee)
    return t


def dispute(town, now=NOW, n=0):
    mediator = staff(town.village_committee, Role.MEDIATOR, n)
    return register_dispute(town, now=now, actor=mediator)


def add_clock(case, rule_code: str, start: dt.date) -> Clock:
    return clock_services.clock_start(
        case_id=case.pk,
        rule_code=rule_code,
        start_date=start,
        entered_state=case.state,
        now=NOW,
        calendar=current_calendar(),
    )


def recompute(now=NOW):
    return holidays_recompute_pending(now=now)


def events(case) -> list[CaseEvent]:
    return list(
        CaseEvent.objects.filter(case=case, transition=EventKind.HOLIDAY_RECOMPUTE).order_by(
            "version"
        )
    )


def test_entering_the_years_notice_makes_a_provisional_clock_final(town):
    case = dispute(town)
    clock = add_clock(case, "dispute.mediate", D("2027-01-10"))
    assert (clock.due, clock.provisional) == (D("2027-02-09"), True)
    version = Case.objects.get(pk=case.pk).version

    applied = holiday_notice_apply(parse_notice_strict(NOTICE_2027), now=NOW)
    assert applied.change is not None
    assert applied.year_created
    counts = recompute()

    clock.refresh_from_db()
    assert (clock.nominal_due, clock.due, clock.provisional) == (
        D("2027-02-09"),
        D("2027-02-15"),
        False,
    )
    assert clock.due_at == end_of_day(D("2027-02-15"))
    assert "节假日数据齐全，结果非临时" in clock.explanation
    assert any("春节" in line for line in clock.explanation)
    (event,) = events(case)
    assert event.note == (
        "节假日调整：到期日由 2027-02-09 调整为 2027-02-15（依据：国办发明电〔2026〕9号）"
    )
    assert event.version == version + 1 == Case.objects.get(pk=case.pk).version
    assert event.data["clock_id"] == clock.pk
    assert counts.clocks_moved == 1
    assert counts.changes == 1
    assert HolidayChange.objects.get().status == HolidayChangeStatus.DONE


def test_a_rest_day_on_the_due_date_rolls_it_forward_and_replans_reminders(town):
    case = dispute(town)
    clock = add_clock(case, "dispute.mediate", D("2026-11-15"))
    assert clock.due == D("2026-12-15")
    from mediation.deadlines.reminders import plan_reminders_for_case

    plan_reminders_for_case(case.pk, NOW)
    old_generation = clock.generation
    assert Reminder.objects.filter(clock=clock, status=ReminderStatus.PLANNED).exists()

    with holiday_change(now=NOW, source="测试依据"):
        HolidayOverride.objects.create(date=D("2026-12-15"), is_workday=False, name="测试")
    recompute()

    clock.refresh_from_db()
    assert clock.due == D("2026-12-16")
    assert clock.generation == old_generation + 1
    old = Reminder.objects.filter(clock=clock, generation=old_generation)
    assert set(old.values_list("status", flat=True)) == {ReminderStatus.CANCELLED}
    new = Reminder.objects.filter(clock=clock, generation=clock.generation)
    assert new.filter(status=ReminderStatus.PLANNED).exists()
    assert Case.objects.get(pk=case.pk).next_due_at == min(
        Clock.objects.filter(case=case, status="running", kind="duty").values_list(
            "due_at", flat=True
        )
    )


def test_a_weekend_working_day_pulls_a_working_day_clock_earlier_and_deleting_restores(town):
    case = dispute(town)
    clock = add_clock(case, "dispute.assign_ack", D("2026-12-10"))  # Thu + 3 working days
    assert clock.due == D("2026-12-15")

    with holiday_change(now=NOW):  # the basis is the row's own source, also on deletion
        HolidayOverride.objects.create(
            date=D("2026-12-12"), is_workday=True, name="调休", source="调休"
        )
    recompute()
    clock.refresh_from_db()
    assert clock.due == D("2026-12-14")

    with holiday_change(now=NOW):
        HolidayOverride.objects.filter(date=D("2026-12-12")).delete()
    recompute()
    clock.refresh_from_db()
    assert clock.due == D("2026-12-15")
    notes = [e.note for e in events(case)]
    assert notes == [
        "节假日调整：到期日由 2026-12-15 调整为 2026-12-14（依据：调休）",
        "节假日调整：到期日由 2026-12-14 调整为 2026-12-15（依据：调休）",
    ]


def test_an_escalated_clock_gets_a_superseded_escalation_and_may_escalate_again(town):
    case = dispute(town)  # dispute.triage: due Tue 12-08, due_at 12-09 00:00
    clock = Clock.objects.get(case=case, rule_code="dispute.triage")
    assert clock.due == D("2026-12-08")
    later = dt.datetime(2026, 12, 9, 10, 0, tzinfo=SHANGHAI)
    sweep_run(now=later, trigger="test")
    esc = Escalation.objects.get(clock=clock)
    head = town.village_committee.head
    assert list(escalation_queue_for(user=head)) == [esc]

    with holiday_change(now=later, source="更正"):
        HolidayOverride.objects.create(date=D("2026-12-08"), is_workday=False, name="更正")
    counts = holidays_recompute_pending(now=later)

    assert counts.escalations_superseded == 1
    esc.refresh_from_db()
    clock.refresh_from_db()
    assert clock.due == D("2026-12-09")
    assert esc.status == EscalationStatus.SUPERSEDED
    assert esc.resolution == "holiday_recompute"
    assert "2026-12-08 调整为 2026-12-09" in esc.data["superseded"]["reason"]
    assert list(escalation_queue_for(user=head)) == []
    with pytest.raises(Conflict):  # no supervisor action on a superseded escalation
        escalation_issue_note(escalation_id=esc.pk, actor=head, now=later, text="请办理")
    (event,) = events(case)
    assert event.data["superseded_escalations"] == [esc.pk]

    # The new due date passes: the clock escalates again; the superseded one is kept.
    sweep_run(now=dt.datetime(2026, 12, 10, 0, 0, 5, tzinfo=SHANGHAI), trigger="test")
    statuses = sorted(Escalation.objects.filter(clock=clock).values_list("level", "status"))
    assert statuses == [(1, "open"), (1, "superseded")]


def test_the_sweep_recomputes_pending_changes_before_it_escalates(town):
    case = dispute(town)
    clock = Clock.objects.get(case=case, rule_code="dispute.triage")
    with holiday_change(now=NOW, source="更正"):
        HolidayOverride.objects.create(date=D("2026-12-08"), is_workday=False, name="更正")
    # Due Tue 12-08 by the old data; the sweep on Wed 12-09 first re-dates it to Wed 12-09.
    counts = sweep_run(now=dt.datetime(2026, 12, 9, 10, 0, tzinfo=SHANGHAI), trigger="t").counts
    clock.refresh_from_db()
    assert clock.due == D("2026-12-09")
    assert counts.holiday_clocks_moved == 1
    assert counts.escalated == 0
    assert not Escalation.objects.filter(clock=clock).exists()


def test_recomputing_twice_changes_nothing_the_second_time(town):
    cases = [dispute(town) for _ in range(3)]
    for case in cases:
        add_clock(case, "dispute.mediate", D("2027-01-10"))
    holiday_notice_apply(parse_notice_strict(NOTICE_2027), now=NOW)
    first = recompute()
    assert first.clocks_moved == 3
    snapshot = list(Clock.objects.order_by("pk").values())
    versions = list(Case.objects.order_by("pk").values_list("version", flat=True))
    n_events, n_notes = CaseEvent.objects.count(), Notification.objects.count()

    HolidayChange.objects.update(status=HolidayChangeStatus.PENDING, counts={})
    second = recompute()

    assert (second.clocks_recomputed, second.clocks_moved, second.digests) == (0, 0, 2)
    assert list(Clock.objects.order_by("pk").values()) == snapshot
    assert list(Case.objects.order_by("pk").values_list("version", flat=True)) == versions
    assert (CaseEvent.objects.count(), Notification.objects.count()) == (n_events, n_notes)


def test_the_holder_gets_one_digest_for_all_moved_clocks(town):
    cases = [dispute(town, n=i) for i in range(3)]
    for case in cases:
        add_clock(case, "dispute.mediate", D("2027-01-10"))
    holiday_notice_apply(parse_notice_strict(NOTICE_2027), now=NOW)
    recompute()

    head = town.village_committee.head
    notes = Notification.objects.filter(key__startswith="holiday:")
    per_user = {}
    for n in notes:
        per_user.setdefault(n.recipient_id, []).append(n)
    assert all(len(v) == 1 for v in per_user.values())
    (digest,) = per_user[head.pk]
    assert digest.subject == "【节假日调整】您有 3 项期限的到期日已调整"
    assert digest.body.count("到期日由 2027-02-09 调整为 2027-02-15") == 3
    # Each case's mediator (its assignee) is told about their own clock only.
    assignees = {Case.objects.get(pk=c.pk).assignee_id for c in cases} - {None}
    assert len(assignees) == 3
    for user_id in assignees:
        assert per_user[user_id][0].subject.startswith("【节假日调整】您有 1 项")


def test_applying_the_same_notice_twice_adds_nothing(town):
    notice = parse_notice_strict(NOTICE_2027)
    first = holiday_notice_apply(notice, now=NOW)
    assert (first.created, first.year_created) == (13, True)
    second = holiday_notice_apply(notice, now=NOW)
    assert (second.created, second.updated, second.year_created, second.change) == (
        0,
        0,
        False,
        None,
    )
    assert HolidayOverride.objects.count() == 13
    assert HolidayYear.objects.get().source == "国办发明电〔2026〕9号"
    assert HolidayChange.objects.count() == 1


def test_a_change_that_alters_no_day_records_nothing(town):
    with holiday_change(now=NOW) as record:
        # 2026-10-01 is already 国庆节 in the package: entering it changes only the source.
        HolidayOverride.objects.create(date=D("2026-10-01"), is_workday=False, name="国庆节")
    assert record.change is None
    assert HolidayChange.objects.count() == 0


# Real concurrency: two connections ----------------------------------------------------------


def _in_thread(fn):
    errors: list[BaseException] = []

    def run():
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


@pytest.mark.django_db(transaction=True)
def test_two_administrators_saving_at_once_are_applied_one_after_the_other():
    town = township_tree()
    head_of(town.village_committee)
    case = dispute(town)
    clock = add_clock(case, "dispute.mediate", D("2026-11-15"))  # due Tue 12-15
    day = D("2026-12-15")
    barrier = threading.Barrier(2)

    def toggle():
        barrier.wait()
        with holiday_change(now=NOW, source="并发"):
            row = HolidayOverride.objects.filter(date=day).first()
            time.sleep(0.3)  # both would read "absent" here without the lock
            if row is None:
                HolidayOverride.objects.create(date=day, is_workday=False, name="并发")
            else:
                row.delete()

    threads = [_in_thread(toggle) for _ in range(2)]
    for thread, _errors in threads:
        thread.join(10)
    assert [e for _t, errors in threads for e in errors] == []

    # Serial result: added, then removed. Both changes recorded against the state before them.
    assert not HolidayOverride.objects.filter(date=day).exists()
    changes = list(HolidayChange.objects.order_by("id").values_list("dates", flat=True))
    assert changes == [["2026-12-15"], ["2026-12-15"]]
    recompute()
    clock.refresh_from_db()
    assert clock.due == D("2026-12-15")


@pytest.mark.django_db(transaction=True)
def test_a_reader_waits_for_a_change_and_then_sees_it():
    day = D("2030-06-01")  # a Saturday of a year the package does not cover
    entered = threading.Event()

    def admin():
        with holiday_change(now=NOW):
            HolidayOverride.objects.create(date=day, is_workday=True, name="调休")
            entered.set()
            time.sleep(0.5)

    thread, errors = _in_thread(admin)
    assert entered.wait(5)
    started = time.monotonic()
    with transaction.atomic():
        info = current_calendar().day(day)
    waited = time.monotonic() - started
    thread.join(5)
    assert errors == []
    assert info.is_workday  # the committed change, not the data before it
    assert waited > 0.2


@pytest.mark.django_db(transaction=True)
def test_a_change_while_a_transaction_counts_with_the_calendar_times_out_cleanly(monkeypatch):
    monkeypatch.setattr(holidays, "LOCK_TIMEOUT", "200ms")
    holding, release = threading.Event(), threading.Event()

    def reader():
        with transaction.atomic():
            current_calendar()
            holding.set()
            release.wait(5)

    thread, errors = _in_thread(reader)
    assert holding.wait(5)
    try:
        with pytest.raises(HolidayDataBusy) as info, holiday_change(now=NOW):
            HolidayOverride.objects.create(date=D("2030-06-01"), is_workday=True)
    finally:
        release.set()
        thread.join(5)
    assert str(info.value) == "节假日数据正被其他操作使用，请稍后重试。"
    assert not HolidayOverride.objects.exists()
    assert errors == []
    assert connection.in_atomic_block is False
