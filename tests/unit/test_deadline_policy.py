"""Deadline policy: rule table, calendar arithmetic and reminders, without a database.

Expected dates are worked out by hand from the holiday table of DOMAIN.md §2.3 (chinese-calendar
1.11.0 data), not read back from the implementation.
"""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mediation.deadlines.policy import (
    DEFAULT_REMINDER_OFFSETS,
    RULES,
    ChineseCalendar,
    ClockKind,
    DayInfo,
    Deadline,
    InvalidPause,
    PolicyError,
    ReminderOffset,
    Rule,
    UnknownRule,
    WeekendCalendar,
    add_months,
    compute_deadline,
    get_rule,
    parse_date,
    parse_pause,
    reminder_times,
    shift_into_quiet_hours,
    working_days_between,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
CAL = ChineseCalendar()


def d(text: str) -> date:
    return date.fromisoformat(text)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


# --- the rule table (DOMAIN.md §7) ------------------------------------------------------------

RULE_TABLE = [
    # code, length, unit, kind
    ("petition.route", 15, "days", ClockKind.DUTY),
    ("petition.notify", 15, "days", ClockKind.DUTY),
    ("petition.objection", 5, "working_days", ClockKind.DUTY),
    ("petition.handle", 60, "days", ClockKind.DUTY),
    ("petition.handle_extended", 90, "days", ClockKind.DUTY),
    ("petition.review_request", 30, "days", ClockKind.WINDOW),
    ("petition.review", 30, "days", ClockKind.DUTY),
    ("petition.rereview_request", 30, "days", ClockKind.WINDOW),
    ("petition.rereview", 30, "days", ClockKind.DUTY),
    ("dispute.triage", 1, "working_days", ClockKind.DUTY),
    ("dispute.assign_ack", 3, "working_days", ClockKind.DUTY),
    ("dispute.mediate", 30, "days", ClockKind.DUTY),
    ("dispute.mediate_month", 1, "months", ClockKind.DUTY),
    ("dispute.court_entrusted", 30, "days", ClockKind.DUTY),
    ("dispute.labour", 15, "days", ClockKind.DUTY),
    ("dispute.medical", 30, "working_days", ClockKind.DUTY),
    ("dispute.followup", 7, "days", ClockKind.DUTY),
    ("referral.police_ack", 1, "working_days", ClockKind.DUTY),
    ("confirmation.apply", 30, "days", ClockKind.WINDOW),
    ("confirmation.decide", 30, "days", ClockKind.WATCH),
    ("confirmation.decide_target", 15, "days", ClockKind.WATCH),
    ("admin_review.apply", 60, "days", ClockKind.WINDOW),
    ("admin_review.accept", 5, "working_days", ClockKind.WATCH),
    ("admin_review.decide", 60, "days", ClockKind.WATCH),
    ("online.appoint", 3, "working_days", ClockKind.WATCH),
    ("escalation.ack", 1, "working_days", ClockKind.DUTY),
]


def test_rules_hold_exactly_the_codes_of_the_domain_table():
    assert sorted(RULES) == sorted(code for code, *_ in RULE_TABLE)


@pytest.mark.parametrize(("code", "length", "unit", "kind"), RULE_TABLE)
def test_rule_has_the_domain_length_unit_and_kind(code, length, unit, kind):
    rule = get_rule(code)

    assert (rule.code, rule.length, rule.unit, rule.kind) == (code, length, unit, kind)
    assert rule.label
    assert rule.basis
    assert rule.roll_on_rest_day is True


@pytest.mark.parametrize(("code", "length", "unit", "kind"), RULE_TABLE)
def test_only_duty_rules_and_the_confirmation_window_send_reminders(code, length, unit, kind):
    expected = (
        DEFAULT_REMINDER_OFFSETS if kind is ClockKind.DUTY or code == "confirmation.apply" else ()
    )

    assert get_rule(code).reminder_offsets == expected


def test_default_reminder_offsets_are_three_and_one_working_days_before_and_the_due_day():
    offsets = DEFAULT_REMINDER_OFFSETS

    assert offsets == (
        ReminderOffset("wd3", 3, 9),
        ReminderOffset("wd1", 1, 9),
        ReminderOffset("due", 0, 9),
    )


def test_get_rule_rejects_an_unknown_code_naming_it():
    with pytest.raises(UnknownRule) as excinfo:
        get_rule("petition.nope")

    assert str(excinfo.value) == "未知的期限规则：'petition.nope'"
    assert isinstance(excinfo.value, PolicyError)
    assert isinstance(excinfo.value, ValueError)


@pytest.mark.parametrize(("length", "unit"), [(0, "days"), (-1, "working_days"), (1, "weeks")])
def test_rule_rejects_a_non_positive_length_or_unknown_unit(length, unit):
    with pytest.raises(PolicyError):
        Rule("local.bad", length, unit, "测试", "测试依据")


# --- one hand-computed case per rule code -------------------------------------------------------

EVERY_RULE_CASES = [
    # code, start, nominal_due, due; the comment says why
    # 04-20 + 15 = 05-05, last day of the Labour Day block 05-01→05-05.
    ("petition.route", "2025-04-20", "2025-05-05", "2025-05-06"),
    # DOMAIN §7 worked example: 02-04 is the last day of Spring Festival 2025.
    ("petition.notify", "2025-01-20", "2025-02-04", "2025-02-05"),
    # DOMAIN §7: 10-09, 10-10, 10-11 (调休 Saturday), 10-13, 10-14.
    ("petition.objection", "2025-09-30", "2025-10-14", "2025-10-14"),
    # DOMAIN §2.2: day 60 is Sunday 05-04 inside Labour Day; rolls past 05-05.
    ("petition.handle", "2025-03-05", "2025-05-04", "2025-05-06"),
    # DOMAIN §2.2: 90 days in one period gives 06-03, a Tuesday after 端午 05-31→06-02.
    ("petition.handle_extended", "2025-03-05", "2025-06-03", "2025-06-03"),
    # DOMAIN §7: New Year 01-01→01-03; 01-04 is a 调休 working Sunday.
    ("petition.review_request", "2025-12-02", "2026-01-01", "2026-01-04"),
    # 09-01 + 30 = 10-01, National Day block 10-01→10-08.
    ("petition.review", "2025-09-01", "2025-10-01", "2025-10-09"),
    # 01-16 + 30 = 02-15, Spring Festival 2026 block 02-15→02-23.
    ("petition.rereview_request", "2026-01-16", "2026-02-15", "2026-02-24"),
    # 04-02 + 30 = 05-02, inside Labour Day 2025.
    ("petition.rereview", "2025-04-02", "2025-05-02", "2025-05-06"),
    # Friday start: Saturday 01-25 rests, Sunday 01-26 is a 调休 workday.
    ("dispute.triage", "2025-01-24", "2025-01-26", "2025-01-26"),
    # 02-13 (Fri), 02-14 (调休 Sat), then Spring Festival 02-15→02-23, then 02-24.
    ("dispute.assign_ack", "2026-02-12", "2026-02-24", "2026-02-24"),
    # DOMAIN §7: 02-14 is a 调休 working Saturday, no roll.
    ("dispute.mediate", "2026-01-15", "2026-02-14", "2026-02-14"),
    # DOMAIN §7: corresponding day 02-15 falls in Spring Festival 2026.
    ("dispute.mediate_month", "2026-01-15", "2026-02-15", "2026-02-24"),
    # 05-01 + 30 = 05-31, 端午 2025 block 05-31→06-02.
    ("dispute.court_entrusted", "2025-05-01", "2025-05-31", "2025-06-03"),
    # 09-23 + 15 = 10-08, last day of National Day 2025.
    ("dispute.labour", "2025-09-23", "2025-10-08", "2025-10-09"),
    # 30 working days across Spring Festival 2025 and two 调休 weekend days (01-26, 02-08).
    ("dispute.medical", "2025-01-20", "2025-03-07", "2025-03-07"),
    # 12-25 + 7 = 2026-01-01; New Year block ends 01-03; 01-04 is a 调休 Sunday.
    ("dispute.followup", "2025-12-25", "2026-01-01", "2026-01-04"),
    # Friday before 端午 2025: 05-31→06-02 rest.
    ("referral.police_ack", "2025-05-30", "2025-06-03", "2025-06-03"),
    # 09-05 + 30 = 10-05, National Day 2026 block 10-01→10-07.
    ("confirmation.apply", "2026-09-05", "2026-10-05", "2026-10-08"),
    # 03-06 + 30 = 04-05, 清明 2026 block 04-04→04-06.
    ("confirmation.decide", "2026-03-06", "2026-04-05", "2026-04-07"),
    # 04-16 + 15 = 05-01, Labour Day 2026 block 05-01→05-05.
    ("confirmation.decide_target", "2026-04-16", "2026-05-01", "2026-05-06"),
    # 07-27 + 60 = 09-25, 中秋 2026 block 09-25→09-27.
    ("admin_review.apply", "2026-07-27", "2026-09-25", "2026-09-28"),
    # 10-08, 10-09, 10-10 (调休 Sat), 10-12, 10-13.
    ("admin_review.accept", "2026-09-30", "2026-10-13", "2026-10-13"),
    # 12-18 + 60 = 2026-02-16, inside Spring Festival 2026.
    ("admin_review.decide", "2025-12-18", "2026-02-16", "2026-02-24"),
    # 2026-01-04 (调休 Sun), 01-05, 01-06.
    ("online.appoint", "2025-12-31", "2026-01-06", "2026-01-06"),
    # Friday before Spring Festival 2026: Saturday 02-14 is a 调休 workday.
    ("escalation.ack", "2026-02-13", "2026-02-14", "2026-02-14"),
]


def test_every_rule_code_has_a_hand_computed_case():
    assert sorted(code for code, *_ in EVERY_RULE_CASES) == sorted(RULES)


@pytest.mark.parametrize(("code", "start", "nominal_due", "due"), EVERY_RULE_CASES)
def test_rule_due_date_matches_the_hand_computed_date(code, start, nominal_due, due):
    deadline = compute_deadline(code, d(start), calendar=CAL)

    assert (deadline.nominal_due, deadline.due) == (d(nominal_due), d(due))
    assert deadline.provisional is False
    assert deadline.rule == code


# --- worked examples and holiday blocks ---------------------------------------------------------


def test_spring_festival_2025_rolls_the_last_block_day_forward():
    deadline = compute_deadline("petition.notify", d("2025-01-20"), calendar=CAL)

    assert deadline.explanation == (
        "起算日 2025-01-20 不计入；期间 15 日（信访工作条例 第二十三条）",
        "名义到期日 2025-02-04",
        "2025-02-04 为休息日（春节），顺延",
        "到期日 2025-02-05",
        "节假日数据齐全，结果非临时",
    )
    assert deadline.skipped == (d("2025-02-04"),)


def test_spring_festival_2026_rolls_over_the_whole_nine_day_block():
    deadline = compute_deadline("dispute.mediate_month", d("2026-01-15"), calendar=CAL)

    assert deadline.due == d("2026-02-24")
    assert deadline.skipped == tuple(d("2026-02-15") + timedelta(days=i) for i in range(9))
    assert "2026-02-15 为休息日（春节），顺延" in deadline.explanation
    assert "2026-02-23 为休息日（春节），顺延" in deadline.explanation


def test_new_year_2026_rolls_to_the_tiaoxiu_working_sunday():
    deadline = compute_deadline("petition.review_request", d("2025-12-02"), calendar=CAL)

    assert deadline.due == d("2026-01-04")
    assert deadline.skipped == (d("2026-01-01"), d("2026-01-02"), d("2026-01-03"))


def test_national_day_2025_working_day_count_uses_the_tiaoxiu_saturday():
    deadline = compute_deadline("petition.objection", d("2025-09-30"), calendar=CAL)

    assert deadline.explanation == (
        "起算日 2025-09-30 不计入；期间 5 个工作日（信访工作条例 第二十三条第三款）",
        "2025-10-01 至 2025-10-08 为休息日（国庆节、中秋节），不计入",
        "2025-10-11 为调休上班日（国庆节），计入",
        "2025-10-12 为休息日（周末），不计入",
        "第 5 个工作日 2025-10-14",
        "名义到期日 2025-10-14",
        "到期日 2025-10-14",
        "节假日数据齐全，结果非临时",
    )


def test_national_day_2025_tiaoxiu_saturday_is_not_rolled():
    deadline = compute_deadline("dispute.labour", d("2025-09-26"), calendar=CAL)

    assert (deadline.nominal_due, deadline.due) == (d("2025-10-11"), d("2025-10-11"))
    assert deadline.skipped == ()
    assert "2025-10-11 为调休上班日（国庆节），不顺延" in deadline.explanation


def test_tiaoxiu_working_saturday_2026_is_not_rolled():
    deadline = compute_deadline("dispute.mediate", d("2026-01-15"), calendar=CAL)

    assert deadline.due == d("2026-02-14")
    assert deadline.explanation[1:3] == (
        "名义到期日 2026-02-14",
        "2026-02-14 为调休上班日（春节），不顺延",
    )


def test_working_days_from_a_rest_day_avoid_the_find_workday_pitfall():
    # DOMAIN §2.3: find_workday(5, 2026-02-21) gives 03-02; the legal count gives 02-28.
    deadline = compute_deadline("admin_review.accept", d("2026-02-21"), calendar=CAL)

    assert deadline.due == d("2026-02-28")


def test_ordinary_weekend_is_named_zhoumo():
    # 2025-03-02 + 13 = 03-15, a Saturday.
    rule = Rule("local.thirteen", 13, "days", "测试", "测试依据")

    deadline = compute_deadline(rule, d("2025-03-02"), calendar=CAL)

    assert deadline.due == d("2025-03-17")
    assert deadline.explanation[2:4] == (
        "2025-03-15 为休息日（周末），顺延",
        "2025-03-16 为休息日（周末），顺延",
    )


def test_rule_without_roll_keeps_the_rest_day():
    rule = Rule("local.noroll", 15, "days", "测试", "测试依据", roll_on_rest_day=False)

    deadline = compute_deadline(rule, d("2025-01-20"), calendar=CAL)

    assert deadline.due == d("2025-02-04")
    assert deadline.skipped == ()
    assert "2025-02-04 为休息日（春节），本规则不顺延" in deadline.explanation


# --- months --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        ("2026-01-31", 1, "2026-02-28"),
        ("2024-01-31", 1, "2024-02-29"),
        ("2025-03-31", 1, "2025-04-30"),
        ("2025-11-30", 3, "2026-02-28"),
        ("2025-12-15", 1, "2026-01-15"),
        ("2025-01-15", 12, "2026-01-15"),
    ],
)
def test_add_months_clamps_to_the_last_day_of_the_month(start, months, expected):
    assert add_months(d(start), months) == d(expected)


def test_month_end_clamp_lands_on_a_tiaoxiu_saturday_and_is_not_rolled():
    deadline = compute_deadline("dispute.mediate_month", d("2026-01-31"), calendar=CAL)

    assert (deadline.nominal_due, deadline.due) == (d("2026-02-28"), d("2026-02-28"))
    assert deadline.explanation[1] == "2026 年 2 月无对应日，取月末 2026-02-28"


def test_month_end_clamp_on_a_sunday_rolls_to_monday():
    deadline = compute_deadline("dispute.mediate_month", d("2025-10-31"), calendar=CAL)

    assert (deadline.nominal_due, deadline.due) == (d("2025-11-30"), d("2025-12-01"))


def test_month_end_clamp_in_a_leap_year_keeps_february_29():
    deadline = compute_deadline("dispute.mediate_month", d("2024-01-31"), calendar=CAL)

    assert (deadline.nominal_due, deadline.due) == (d("2024-02-29"), d("2024-02-29"))


# --- pauses and extensions -----------------------------------------------------------------------


def test_pause_counts_both_ends_before_rolling():
    # 03-02 + 30 = 04-01; + 5 paused days = 04-06, last day of 清明 2026; rolls to 04-07.
    deadline = compute_deadline(
        "petition.rereview",
        d("2026-03-02"),
        calendar=CAL,
        pauses=[(d("2026-03-10"), d("2026-03-14"))],
    )

    assert (deadline.nominal_due, deadline.due) == (d("2026-04-06"), d("2026-04-07"))
    assert deadline.paused_days == 5
    assert "暂停 2026-03-10 至 2026-03-14，计 5 日" in deadline.explanation


def test_overlapping_pauses_are_counted_once():
    # Union 03-10..03-16 is 7 days: 04-01 + 7 = 04-08 (Wednesday).
    deadline = compute_deadline(
        "petition.rereview",
        d("2026-03-02"),
        calendar=CAL,
        pauses=[(d("2026-03-12"), d("2026-03-16")), (d("2026-03-10"), d("2026-03-14"))],
    )

    assert deadline.paused_days == 7
    assert deadline.due == d("2026-04-08")
    assert "暂停期间有重叠，合并后为 2026-03-10 至 2026-03-16，重叠日只计一次" in (
        deadline.explanation
    )


def test_identical_pauses_are_counted_once():
    pause = (d("2026-03-10"), d("2026-03-10"))

    deadline = compute_deadline(
        "petition.rereview", d("2026-03-02"), calendar=CAL, pauses=[pause, pause]
    )

    assert deadline.paused_days == 1
    assert deadline.due == d("2026-04-02")


def test_separate_pauses_add_up():
    deadline = compute_deadline(
        "petition.rereview",
        d("2026-03-02"),
        calendar=CAL,
        pauses=[(d("2026-03-10"), d("2026-03-11")), (d("2026-03-20"), d("2026-03-22"))],
    )

    assert deadline.paused_days == 5
    assert "暂停合计 5 日" in deadline.explanation


def test_pause_days_on_or_before_the_start_day_are_not_counted():
    # 02-27..03-02 are on or before the start day; only 03-03 counts.
    deadline = compute_deadline(
        "petition.rereview",
        d("2026-03-02"),
        calendar=CAL,
        pauses=[(d("2026-02-27"), d("2026-03-03"))],
    )

    assert deadline.paused_days == 1
    assert deadline.due == d("2026-04-02")
    assert "暂停 2026-02-27 至 2026-03-03，其中起算日及之前的 4 日不计入，计 1 日" in (
        deadline.explanation
    )


def test_pause_entirely_before_the_start_is_ignored():
    deadline = compute_deadline(
        "petition.rereview",
        d("2026-03-02"),
        calendar=CAL,
        pauses=[(d("2026-02-01"), d("2026-02-05"))],
    )

    assert deadline.paused_days == 0
    assert deadline.due == d("2026-04-01")
    assert "暂停 2026-02-01 至 2026-02-05 在起算日当日或之前，不计入" in deadline.explanation


def test_reversed_pause_is_rejected():
    with pytest.raises(InvalidPause, match="2026-03-14:2026-03-10"):
        compute_deadline(
            "petition.rereview",
            d("2026-03-02"),
            calendar=CAL,
            pauses=[(d("2026-03-14"), d("2026-03-10"))],
        )


def test_pause_is_added_after_the_nth_working_day():
    # 5th working day after 2025-09-30 is 10-14; + 3 paused calendar days = 10-17 (Friday).
    deadline = compute_deadline(
        "petition.objection",
        d("2025-09-30"),
        calendar=CAL,
        pauses=[(d("2025-10-09"), d("2025-10-11"))],
    )

    assert (deadline.nominal_due, deadline.due) == (d("2025-10-17"), d("2025-10-17"))


def test_extra_days_extend_as_one_period_like_the_extended_rule():
    deadline = compute_deadline("petition.handle", d("2025-03-05"), calendar=CAL, extra_days=30)
    extended = compute_deadline("petition.handle_extended", d("2025-03-05"), calendar=CAL)

    assert (deadline.nominal_due, deadline.due) == (d("2025-06-03"), d("2025-06-03"))
    assert (deadline.nominal_due, deadline.due) == (extended.nominal_due, extended.due)
    assert deadline.extra_days == 30
    assert "延长 30 日" in deadline.explanation


def test_negative_extra_days_are_rejected():
    with pytest.raises(PolicyError, match="-1"):
        compute_deadline("petition.handle", d("2025-03-05"), calendar=CAL, extra_days=-1)


# --- beyond the package data, overrides, declared years ------------------------------------------


def test_2027_falls_back_to_weekends_only_and_is_provisional():
    deadline = compute_deadline("petition.handle", d("2026-11-20"), calendar=CAL)

    assert (deadline.nominal_due, deadline.due) == (d("2027-01-19"), d("2027-01-19"))
    assert deadline.provisional is True
    assert deadline.explanation[-1] == "2027 年节假日数据未发布：仅按周末计算，结果为临时结果"


def test_2027_weekend_rolls_to_monday_provisionally():
    # 2027-01-01 is a Friday; + 15 = Saturday 01-16.
    deadline = compute_deadline("petition.notify", d("2027-01-01"), calendar=CAL)

    assert (deadline.nominal_due, deadline.due) == (d("2027-01-16"), d("2027-01-18"))
    assert deadline.provisional is True


def test_2027_working_days_count_weekdays_only():
    # 2027-10-01 is a Friday; without data it is an ordinary working day.
    deadline = compute_deadline("petition.objection", d("2027-09-28"), calendar=CAL)

    assert deadline.due == d("2027-10-05")
    assert deadline.provisional is True


def test_before_2004_falls_back_without_crashing():
    deadline = compute_deadline("petition.notify", d("2003-12-20"), calendar=CAL)

    assert deadline.due == d("2004-01-05")
    assert deadline.provisional is True
    assert "2003 年节假日数据未发布：仅按周末计算，结果为临时结果" in deadline.explanation


def test_override_rest_day_wins_over_the_package():
    calendar = ChineseCalendar({d("2025-02-05"): (False, "临时调整")})

    deadline = compute_deadline("petition.notify", d("2025-01-20"), calendar=calendar)

    assert deadline.due == d("2025-02-06")
    assert "2025-02-05 为休息日（临时调整），顺延" in deadline.explanation


def test_override_workday_wins_over_the_package():
    calendar = ChineseCalendar({d("2025-02-04"): (True, "")})

    deadline = compute_deadline("petition.notify", d("2025-01-20"), calendar=calendar)

    assert deadline.due == d("2025-02-04")
    assert calendar.day(d("2025-02-04")) == DayInfo(is_workday=True, name=None, known=True)


def test_override_in_an_undeclared_year_applies_but_stays_provisional():
    calendar = ChineseCalendar({d("2027-01-19"): (False, "测试假日")})

    deadline = compute_deadline("petition.handle", d("2026-11-20"), calendar=calendar)

    assert deadline.due == d("2027-01-20")
    assert deadline.provisional is True


def test_declared_year_makes_2027_known():
    calendar = ChineseCalendar({d("2027-01-19"): (False, "测试假日")}, declared_years=[2027])

    deadline = compute_deadline("petition.handle", d("2026-11-20"), calendar=calendar)

    assert deadline.due == d("2027-01-20")
    assert deadline.provisional is False
    assert deadline.explanation[-1] == "节假日数据齐全，结果非临时"


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2025-02-08", DayInfo(is_workday=True, name="春节", known=True)),
        ("2025-02-03", DayInfo(is_workday=False, name="春节", known=True)),
        ("2025-10-06", DayInfo(is_workday=False, name="中秋节", known=True)),
        ("2025-03-15", DayInfo(is_workday=False, name=None, known=True)),
        ("2025-03-17", DayInfo(is_workday=True, name=None, known=True)),
        ("2026-01-01", DayInfo(is_workday=False, name="元旦", known=True)),
        ("2027-01-02", DayInfo(is_workday=False, name=None, known=False)),
        ("2027-01-04", DayInfo(is_workday=True, name=None, known=False)),
        ("2003-12-31", DayInfo(is_workday=True, name=None, known=False)),
    ],
)
def test_chinese_calendar_day_info(day, expected):
    assert CAL.day(d(day)) == expected


@pytest.mark.parametrize(
    ("declared", "today", "expected"),
    [
        ((), "2026-11-27", "2026-12-31"),
        ((2027,), "2026-11-27", "2027-12-31"),
        ((2027, 2028), "2026-11-27", "2028-12-31"),
        ((2028,), "2026-11-27", "2026-12-31"),
        ((), "2030-03-01", "2029-12-31"),
        ((2030,), "2030-03-01", "2030-12-31"),
    ],
)
def test_covered_until_counts_contiguous_years_from_today(declared, today, expected):
    calendar = ChineseCalendar(declared_years=declared)

    assert calendar.covered_until(today=d(today)) == d(expected)


def test_weekend_calendar_knows_every_date_and_ignores_holidays():
    deadline = compute_deadline("petition.notify", d("2025-01-20"), calendar=WeekendCalendar())

    assert deadline.due == d("2025-02-04")
    assert deadline.provisional is False


def test_deadline_as_dict_has_iso_dates_and_a_list_explanation():
    deadline = compute_deadline("petition.notify", d("2025-01-20"), calendar=CAL)

    assert deadline.as_dict() == {
        "rule": "petition.notify",
        "start": "2025-01-20",
        "nominal_due": "2025-02-04",
        "due": "2025-02-05",
        "provisional": False,
        "explanation": list(deadline.explanation),
        "paused_days": 0,
        "extra_days": 0,
    }


def test_compute_deadline_accepts_a_rule_object():
    deadline = compute_deadline(get_rule("petition.notify"), d("2025-01-20"), calendar=CAL)

    assert isinstance(deadline, Deadline)
    assert deadline.due == d("2025-02-05")


def test_a_date_beyond_the_representable_range_is_a_policy_error():
    with pytest.raises(PolicyError, match="9999-12-30"):
        compute_deadline("petition.notify", d("9999-12-30"), calendar=CAL)


# --- parsing -------------------------------------------------------------------------------------


def test_parse_date_accepts_strict_iso():
    assert parse_date("2025-01-20") == d("2025-01-20")


@pytest.mark.parametrize(
    "text",
    [
        "2025-13-01",
        "2025-02-30",
        "2025/01/01",
        "tomorrow",
        "2025-1-1",
        "",
        " 2025-01-01",
        "20250101",
        "２０２５-01-01",
        "2025-01-01T00:00",
    ],
)
def test_parse_date_rejects_anything_else_naming_the_text(text):
    with pytest.raises(PolicyError) as excinfo:
        parse_date(text)

    assert repr(text) in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_parse_pause_returns_both_ends():
    assert parse_pause("2026-03-10:2026-03-14") == (d("2026-03-10"), d("2026-03-14"))


def test_parse_pause_of_a_single_day():
    assert parse_pause("2026-03-10:2026-03-10") == (d("2026-03-10"), d("2026-03-10"))


def test_parse_pause_rejects_a_reversed_pause():
    with pytest.raises(InvalidPause) as excinfo:
        parse_pause("2026-03-14:2026-03-10")

    assert str(excinfo.value) == "暂停结束日早于开始日：'2026-03-14:2026-03-10'"


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-10",
        "2026-03-10:",
        ":2026-03-10",
        "2026-03-10:2026-03-14:2026-03-15",
        "2026-03-10~2026-03-14",
        "2026-03-10:2026-13-14",
    ],
)
def test_parse_pause_rejects_malformed_text(text):
    with pytest.raises(PolicyError) as excinfo:
        parse_pause(text)

    assert not isinstance(excinfo.value, InvalidPause)


# --- working days between ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2025-09-30", "2025-10-14", 5),
        ("2025-01-24", "2025-01-27", 2),
        ("2025-03-14", "2025-03-17", 1),
        ("2025-03-17", "2025-03-17", 0),
        ("2025-10-14", "2025-09-30", 0),
        ("2026-02-14", "2026-02-24", 1),
    ],
)
def test_working_days_between_counts_start_exclusive_end_inclusive(start, end, expected):
    assert working_days_between(d(start), d(end), calendar=CAL) == expected


# --- reminders -----------------------------------------------------------------------------------


def test_reminders_for_a_monday_due_day_skip_the_weekend():
    # 2025-03-02 + 15 = Monday 03-17.
    deadline = compute_deadline("petition.route", d("2025-03-02"), calendar=CAL)

    reminders = reminder_times(deadline, get_rule("petition.route"), calendar=CAL)

    assert reminders == [
        ("wd3", at("2025-03-12T09:00")),
        ("wd1", at("2025-03-14T09:00")),
        ("due", at("2025-03-17T09:00")),
    ]


def test_reminders_before_a_due_day_right_after_spring_festival_2025():
    # Due 02-05; 01-28→02-04 rest; 01-27 (Mon), 01-26 (调休 Sun), 01-24 (Fri).
    deadline = compute_deadline("petition.notify", d("2025-01-20"), calendar=CAL)

    reminders = reminder_times(deadline, get_rule("petition.notify"), calendar=CAL)

    assert reminders == [
        ("wd3", at("2025-01-24T09:00")),
        ("wd1", at("2025-01-27T09:00")),
        ("due", at("2025-02-05T09:00")),
    ]


def test_reminders_before_a_due_day_right_after_spring_festival_2026():
    # Due 02-24; 02-15→02-23 rest; 02-14 is a 调休 Saturday, 02-12 a Thursday.
    deadline = compute_deadline("dispute.mediate_month", d("2026-01-15"), calendar=CAL)

    reminders = reminder_times(deadline, get_rule("dispute.mediate_month"), calendar=CAL)

    assert reminders == [
        ("wd3", at("2026-02-12T09:00")),
        ("wd1", at("2026-02-14T09:00")),
        ("due", at("2026-02-24T09:00")),
    ]


def test_reminders_are_aware_shanghai_times():
    deadline = compute_deadline("petition.route", d("2025-03-02"), calendar=CAL)

    (_, first), *_ = reminder_times(deadline, get_rule("petition.route"), calendar=CAL)

    assert first.astimezone(UTC) == datetime(2025, 3, 12, 1, 0, tzinfo=UTC)


def test_window_rules_have_no_reminders():
    deadline = compute_deadline("petition.review_request", d("2025-12-02"), calendar=CAL)

    assert reminder_times(deadline, get_rule("petition.review_request"), calendar=CAL) == []


def test_confirmation_window_keeps_the_default_reminders():
    # Due 2026-10-08 after National Day; 09-30 (Wed), 09-29, 09-28 before the block.
    deadline = compute_deadline("confirmation.apply", d("2026-09-05"), calendar=CAL)

    reminders = reminder_times(deadline, get_rule("confirmation.apply"), calendar=CAL)

    assert reminders == [
        ("wd3", at("2026-09-28T09:00")),
        ("wd1", at("2026-09-30T09:00")),
        ("due", at("2026-10-08T09:00")),
    ]


def test_reminders_before_the_start_day_are_dropped():
    # Start Thursday 03-13, due Friday 03-14: wd3 would be 03-11, before the clock started.
    deadline = compute_deadline("dispute.triage", d("2025-03-13"), calendar=CAL)

    reminders = reminder_times(deadline, get_rule("dispute.triage"), calendar=CAL)

    assert reminders == [("wd1", at("2025-03-13T09:00")), ("due", at("2025-03-14T09:00"))]


def test_reminders_at_the_same_instant_are_sent_once_in_ascending_order():
    rule = Rule(
        "local.dup",
        15,
        "days",
        "测试",
        "测试依据",
        reminder_offsets=(
            ReminderOffset("late", 0, 15),
            ReminderOffset("due", 0),
            ReminderOffset("again", 0),
        ),
    )
    deadline = compute_deadline(rule, d("2025-03-02"), calendar=CAL)

    reminders = reminder_times(deadline, rule, calendar=CAL)

    assert reminders == [("due", at("2025-03-17T09:00")), ("late", at("2025-03-17T15:00"))]


# --- quiet hours ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        ("2025-03-17T07:00", "2025-03-17T08:00"),
        ("2025-03-17T00:00", "2025-03-17T08:00"),
        ("2025-03-17T08:00", "2025-03-17T08:00"),
        ("2025-03-17T20:59", "2025-03-17T20:59"),
        ("2025-03-17T21:00", "2025-03-18T08:00"),
        ("2025-03-17T21:30", "2025-03-18T08:00"),
        ("2025-03-31T23:59", "2025-04-01T08:00"),
    ],
)
def test_shift_into_quiet_hours(instant, expected):
    assert shift_into_quiet_hours(at(instant)) == at(expected)


def test_shift_into_quiet_hours_reads_utc_instants_in_shanghai_time():
    # 23:30 UTC is 07:30 the next morning in Shanghai.
    shifted = shift_into_quiet_hours(datetime(2025, 3, 16, 23, 30, tzinfo=UTC))

    assert shifted == at("2025-03-17T08:00")


def test_shift_into_quiet_hours_rejects_a_naive_datetime():
    with pytest.raises(PolicyError):
        shift_into_quiet_hours(datetime(2025, 3, 17, 7, 0))
