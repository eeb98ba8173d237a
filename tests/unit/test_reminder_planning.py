"""Pure parts of the engine, no database: reminder planning, quiet hours, escalation routing,
the 督办单 text and the webhook payload. Table-driven."""

from __future__ import annotations

import datetime as dt

import pytest

from mediation.core.clock import SHANGHAI, end_of_day
from mediation.deadlines import policy
from mediation.deadlines.reminders import PlannedReminder, reminder_plan
from mediation.escalation.routing import AgencyNode, Ladder
from mediation.escalation.sweeps import escalation_text
from mediation.notifications.channels import OutboundMessage, webhook_payload

CAL = policy.ChineseCalendar()


def at(month: int, day: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


def plan(rule, start, due, now):
    return reminder_plan(
        rule=rule, start=start, due=due, due_at=end_of_day(due), now=now, calendar=CAL
    )


# Offsets -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("due", "expected"),
    [
        # Fri 04-10: 3 and 1 working days before are Tue 04-07 and Thu 04-09.
        (dt.date(2026, 4, 10), {"wd3": at(4, 7), "wd1": at(4, 9), "due": at(4, 10)}),
        # Wed 04-08: working days before skip 清明 (Sat 04-04 → Mon 04-06): 04-02, 04-07.
        (dt.date(2026, 4, 8), {"wd3": at(4, 2), "wd1": at(4, 7), "due": at(4, 8)}),
        # Tue 05-12: 调休 working Saturday 05-09 counts; 劳动节 05-01→05 does not.
        (dt.date(2026, 5, 12), {"wd3": at(5, 8), "wd1": at(5, 11), "due": at(5, 12)}),
    ],
)
def test_default_offsets_count_working_days(due, expected):
    result = plan("dispute.mediate", dt.date(2026, 3, 1), due, now=at(3, 1, 10))
    assert {r.offset_code: r.send_at for r in result} == expected
    assert [r.send_at for r in result] == sorted(r.send_at for r in result)


def test_only_duty_clocks_get_reminders():
    for code in ("petition.review_request", "confirmation.decide", "admin_review.apply"):
        assert plan(code, dt.date(2026, 3, 1), dt.date(2026, 4, 10), now=at(3, 1)) == []


def test_reminders_before_the_start_day_are_dropped():
    # Triage: registered Wed 03-11, due Thu 03-12. wd3 would be Mon 03-09.
    result = plan("dispute.triage", dt.date(2026, 3, 11), dt.date(2026, 3, 12), now=at(3, 11, 7))
    assert result == [PlannedReminder("wd1", at(3, 11)), PlannedReminder("due", at(3, 12))]


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Planned before any reminder: all of them.
        (at(4, 1, 10), ["wd3", "wd1", "due"]),
        # After wd3's time: wd3 is not created.
        (at(4, 7, 9, 1), ["wd1", "due"]),
        # On the due day after 09:00: the due-day reminder is kept, sent now.
        (at(4, 10, 15), ["due"]),
    ],
)
def test_reminders_already_past_at_planning_are_not_created(now, expected):
    result = plan("dispute.mediate", dt.date(2026, 3, 11), dt.date(2026, 4, 10), now=now)
    assert [r.offset_code for r in result] == expected
    assert all(r.send_at >= now for r in result)


def test_due_day_reminder_planned_late_goes_out_now_within_quiet_hours():
    due = dt.date(2026, 4, 10)
    [late] = plan("dispute.mediate", dt.date(2026, 3, 11), due, now=at(4, 10, 15, 30))
    assert late == PlannedReminder("due", at(4, 10, 15, 30))
    # At 22:00 the next 08:00 is already past the due time: nothing is planned.
    assert plan("dispute.mediate", dt.date(2026, 3, 11), due, now=at(4, 10, 22)) == []
    # At 06:00 on the due day: 09:00 is still ahead, planned normally.
    assert plan("dispute.mediate", dt.date(2026, 3, 11), due, now=at(4, 10, 6)) == [
        PlannedReminder("due", at(4, 10, 9))
    ]


def test_the_day_after_the_due_day_nothing_is_planned():
    assert plan("dispute.mediate", dt.date(2026, 3, 11), dt.date(2026, 4, 10), at(4, 11)) == []


@pytest.mark.parametrize(
    ("hour", "expected"),
    [
        (7, at(4, 9, 8)),  # before 08:00: same morning
        (8, at(4, 9, 8)),
        (20, at(4, 9, 20)),
        (21, at(4, 10, 8)),  # from 21:00: next morning
        (23, at(4, 10, 8)),
    ],
)
def test_quiet_hours_move_reminders_to_the_next_morning(hour, expected):
    rule = policy.Rule(
        "custom.rule",
        30,
        "days",
        "自定义",
        "test",
        reminder_offsets=(policy.ReminderOffset("wd1", 1, hour=hour),),
    )
    [r] = plan(rule, dt.date(2026, 3, 11), dt.date(2026, 4, 10), now=at(3, 11))
    assert r.send_at == expected


# Routing -------------------------------------------------------------------------------------


def ladder() -> Ladder:
    n = AgencyNode
    return Ladder(
        [
            n(1, None, "county", "peace_office", "县综治中心"),
            n(2, 1, "township", "peace_office", "镇综治中心", head_id=20),
            n(3, 2, "township", "mediation_committee", "镇调委会"),
            n(4, 3, "village", "mediation_committee", "村调委会", head_id=40),
            # A second county with a government root and no township peace office above
            # the committee, but one beside it under the township government.
            n(10, None, "county", "government", "县政府"),
            n(11, 10, "county", "peace_office", "县平安办"),
            n(12, 10, "township", "government", "镇政府"),
            n(13, 12, "township", "peace_office", "镇平安办"),
            n(14, 12, "township", "judicial_office", "镇司法所"),
            n(15, 14, "village", "mediation_committee", "村调委会"),
            # An orphan village.
            n(30, None, "village", "mediation_committee", "孤立村"),
        ]
    )


@pytest.mark.parametrize(
    ("holder", "targets"),
    [
        (4, (4, 2, 1)),
        (3, (3, 2, 1)),
        (2, (2, 2, 1)),
        (15, (15, 13, 11)),
        (14, (14, 13, 11)),
        (30, (30, None, None)),
    ],
)
def test_ladder_targets(holder, targets):
    lad = ladder()
    assert tuple(lad.target(holder, level) for level in (1, 2, 3)) == targets


def test_ladder_targets_map_for_sql_and_cycles_are_bounded():
    lad = ladder()
    assert lad.targets(2)["4"] == 2
    assert "30" not in lad.targets(2)
    looped = Ladder(
        [AgencyNode(1, 2, "village", "x"), AgencyNode(2, 1, "township", "peace_office")]
    )
    assert [a.id for a in looped.chain(1)] == [1, 2]
    with pytest.raises(ValueError, match=r"1\.\.3"):
        lad.target(4, 4)


# Texts ---------------------------------------------------------------------------------------


def test_supervision_notice_text():
    subject, body = escalation_text(
        {
            "level": 2,
            "case_number": "(2026)将官池人调字第0001号",
            "case_title": "宅基地纠纷",
            "holder_agency": "村调委会",
            "rule_label": "矛盾纠纷研判分流期限",
            "rule_code": "dispute.triage",
            "due": "2026-03-12",
            "days_overdue": 5,
            "ack_due_at": "2026-03-18T16:00:00+00:00",
        }
    )
    assert (
        subject == "【超期督办·乡镇综治中心】(2026)将官池人调字第0001号 矛盾纠纷研判分流期限已超期"
    )
    assert body.splitlines() == [
        "督办单",
        "案号：(2026)将官池人调字第0001号",
        "案件：宅基地纠纷",
        "责任机构：村调委会",
        "期限：矛盾纠纷研判分流期限（dispute.triage）",
        "到期日：2026-03-12",
        "已超期：5 日",
        "督办层级：第 2 级（乡镇综治中心）",
        "请于 2026-03-18 当日内签收。",
    ]


def test_webhook_payload_is_wecom_dingtalk_text():
    message = OutboundMessage(notification_id=7, subject="标题", body="正文")
    assert webhook_payload(message) == {
        "msgtype": "text",
        "text": {"content": "标题\n正文"},
        "idempotency_key": "notification-7",
    }
    assert message.message_id == "<notification-7@mediation.local>"
