"""Statutory clocks: rule table, holiday calendar and due-date arithmetic (DOMAIN.md §2, §7).

Pure Python: no Django. `now`, `today` and the calendar are always passed in.

Counting follows 民法典 Arts 201–203 and 民事诉讼法 Art 85: the start day is not counted; a
period in months ends on the corresponding day (the last day of the month if there is none);
a last day that is a rest day (ordinary weekend or announced holiday, but not a 调休 working
weekend day) moves to the next working day.
"""

from __future__ import annotations

import calendar as _stdlib_calendar
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")

Unit = Literal["days", "working_days", "months"]
_UNITS: tuple[str, ...] = ("days", "working_days", "months")
_ONE_DAY = timedelta(days=1)


class PolicyError(ValueError):
    """A user-correctable input error; the message is one line and names the bad value."""


class UnknownRule(PolicyError):
    pass


class InvalidPause(PolicyError):
    pass


class ClockKind(StrEnum):
    DUTY = "duty"  # an agency must act; escalates when overdue
    WINDOW = "window"  # a party's window (e.g. 复查 request); informational
    WATCH = "watch"  # another organ's clock, shown read-only (e.g. 司法确认 decision)


@dataclass(frozen=True)
class ReminderOffset:
    code: str
    working_days_before: int
    hour: int = 9


DEFAULT_REMINDER_OFFSETS: tuple[ReminderOffset, ...] = (
    ReminderOffset("wd3", 3),
    ReminderOffset("wd1", 1),
    ReminderOffset("due", 0),
)


@dataclass(frozen=True)
class Rule:
    code: str
    length: int
    unit: Unit
    label: str
    basis: str
    kind: ClockKind = ClockKind.DUTY
    roll_on_rest_day: bool = True
    reminder_offsets: tuple[ReminderOffset, ...] = DEFAULT_REMINDER_OFFSETS

    def __post_init__(self) -> None:
        if self.unit not in _UNITS:
            raise PolicyError(f"规则 {self.code} 的计算单位无效：{self.unit!r}")
        if self.length < 1:
            raise PolicyError(f"规则 {self.code} 的期间长度无效：{self.length!r}")


def _rule(
    code: str, length: int, unit: Unit, label: str, basis: str, kind: ClockKind = ClockKind.DUTY
) -> Rule:
    # Parties' windows and other organs' clocks send no reminders by default.
    offsets = DEFAULT_REMINDER_OFFSETS if kind is ClockKind.DUTY else ()
    return Rule(code, length, unit, label, basis, kind=kind, reminder_offsets=offsets)


_WINDOW, _WATCH = ClockKind.WINDOW, ClockKind.WATCH

RULES: Mapping[str, Rule] = {
    r.code: r
    for r in (
        _rule("petition.route", 15, "days", "信访事项登记转送交办期限", "信访工作条例 第二十二条"),
        _rule("petition.notify", 15, "days", "是否受理告知期限", "信访工作条例 第二十三条"),
        _rule(
            "petition.objection",
            5,
            "working_days",
            "不属于职权范围异议期限",
            "信访工作条例 第二十三条第三款",
        ),
        _rule("petition.handle", 60, "days", "信访事项办理期限", "信访工作条例 第三十四条"),
        # DOMAIN.md §2.2 ¶2: the extension is one 90-day period from 受理, rolled once.
        _rule(
            "petition.handle_extended",
            90,
            "days",
            "信访事项延长后办理期限",
            "信访工作条例 第三十四条（60 日 + 延长 30 日）",
        ),
        _rule(
            "petition.review_request",
            30,
            "days",
            "请求复查期限",
            "信访工作条例 第三十五条",
            _WINDOW,
        ),
        _rule("petition.review", 30, "days", "复查意见期限", "信访工作条例 第三十五条"),
        _rule(
            "petition.rereview_request",
            30,
            "days",
            "请求复核期限",
            "信访工作条例 第三十六条",
            _WINDOW,
        ),
        _rule(
            "petition.rereview",
            30,
            "days",
            "复核意见期限（听证时间不计入）",
            "信访工作条例 第三十六条",
        ),
        _rule("dispute.triage", 1, "working_days", "矛盾纠纷研判分流期限", "地方实践"),
        _rule(
            "dispute.assign_ack",
            3,
            "working_days",
            "交办签收确认期限",
            "人民法院在线调解规则 第十二条（参照）",
        ),
        _rule(
            "dispute.mediate",
            30,
            "days",
            "人民调解期限",
            "人民调解工作若干规定 第三十三条；深圳经济特区矛盾纠纷多元化解条例 第二十五条",
        ),
        _rule(
            "dispute.mediate_month",
            1,
            "months",
            "人民调解期限（一个月）",
            "人民调解工作若干规定 第三十三条；民法典 第二百零二条",
        ),
        _rule(
            "dispute.court_entrusted",
            30,
            "days",
            "委派调解期限",
            "最高人民法院关于人民法院特邀调解的规定 第二十七条；人民法院在线调解规则 第二十四条",
        ),
        _rule("dispute.labour", 15, "days", "劳动争议调解期限", "劳动争议调解仲裁法 第十四条"),
        _rule(
            "dispute.medical",
            30,
            "working_days",
            "医疗纠纷调解期限",
            "医疗纠纷预防和处理条例 第三十八条",
        ),
        _rule("dispute.followup", 7, "days", "履行情况回访期限", "地方实践"),
        _rule("referral.police_ack", 1, "working_days", "警调对接签收期限", "地方实践"),
        # The mediator reminds the parties of their 司法确认 window, so it keeps the defaults.
        Rule(
            "confirmation.apply",
            30,
            "days",
            "申请司法确认期限",
            "人民调解法 第三十三条；民事诉讼法 第二百零五条",
            kind=ClockKind.WINDOW,
        ),
        _rule(
            "confirmation.decide",
            30,
            "days",
            "司法确认审查期限（法定上限）",
            "民事诉讼法 第一百八十七条",
            _WATCH,
        ),
        _rule(
            "confirmation.decide_target",
            15,
            "days",
            "司法确认审查期限（目标）",
            "最高人民法院关于人民调解协议司法确认程序的若干规定 第五条",
            _WATCH,
        ),
        _rule("admin_review.apply", 60, "days", "申请行政复议期限", "行政复议法 第二十条", _WINDOW),
        _rule(
            "admin_review.accept",
            5,
            "working_days",
            "行政复议受理审查期限",
            "行政复议法 第三十条、第八十八条",
            _WATCH,
        ),
        _rule(
            "admin_review.decide", 60, "days", "行政复议决定期限", "行政复议法 第六十二条", _WATCH
        ),
        _rule(
            "online.appoint",
            3,
            "working_days",
            "法院指定调解员期限",
            "人民法院在线调解规则 第十条",
            _WATCH,
        ),
        _rule("escalation.ack", 1, "working_days", "督办签收期限", "系统规则"),
    )
}


def get_rule(code: str) -> Rule:
    try:
        return RULES[code]
    except KeyError:
        raise UnknownRule(f"未知的期限规则：{code!r}") from None


# ---------------------------------------------------------------------------------------------
# Calendars


@dataclass(frozen=True)
class DayInfo:
    """`known=False`: no holiday data for the date; it was judged by weekday alone."""

    is_workday: bool
    name: str | None
    known: bool


class Calendar(Protocol):
    def day(self, d: date) -> DayInfo: ...


HOLIDAY_NAMES: Mapping[str, str] = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "抗战胜利70周年纪念日",
}


def _weekday_only(d: date, *, known: bool) -> DayInfo:
    return DayInfo(is_workday=d.weekday() < 5, name=None, known=known)


class WeekendCalendar:
    """Saturdays and Sundays are rest days, nothing else; every date is known."""

    def day(self, d: date) -> DayInfo:
        return _weekday_only(d, known=True)


class ChineseCalendar:
    """The `chinese_calendar` package, under administrator overrides (DOMAIN.md §2.3).

    `overrides` (date → (is_workday, name)) win over the package for any year.
    `declared_years` are years whose rest days and 调休 workdays are all entered as overrides:
    their other dates are plain weekdays/weekends and count as known. Dates of any other year
    without package data fall back to weekends only, with `known=False`.
    """

    def __init__(
        self,
        overrides: Mapping[date, tuple[bool, str]] | None = None,
        declared_years: Iterable[int] = (),
    ) -> None:
        import chinese_calendar

        self._package = chinese_calendar
        self._overrides = {
            d: (bool(is_workday), name or None)
            for d, (is_workday, name) in (overrides or {}).items()
        }
        self._declared_years = frozenset(declared_years)
        package_dates = chinese_calendar.constants.holidays.keys()
        self._package_years = range(min(package_dates).year, max(package_dates).year + 1)
        # The answers so far: the data never changes after construction, and the package's
        # own look-up scans its whole table on every call (min/max over ~2,000 dates).
        self._memo: dict[date, DayInfo] = {}

    def day(self, d: date) -> DayInfo:
        info = self._memo.get(d)
        if info is None:
            info = self._memo[d] = self._day(d)
        return info

    def _day(self, d: date) -> DayInfo:
        if d in self._overrides:
            is_workday, name = self._overrides[d]
            return DayInfo(is_workday=is_workday, name=name, known=True)
        try:
            is_rest, name = self._package.get_holiday_detail(d)
        except NotImplementedError:
            return _weekday_only(d, known=d.year in self._declared_years)
        if name is not None:
            name = HOLIDAY_NAMES.get(name, name)
        return DayInfo(is_workday=not is_rest, name=name, known=True)

    def covered_years(self) -> frozenset[int]:
        return frozenset(self._package_years) | self._declared_years

    def covered_until(self, *, today: date | None = None) -> date:
        """Last day of the last year with known data, counting contiguously from `today`'s year.

        `today` defaults to the current date in Asia/Shanghai. Returns 31 December of the
        previous year when `today`'s own year is not covered.
        """
        covered = self.covered_years()
        year = (today or datetime.now(SHANGHAI).date()).year
        while year in covered:
            year += 1
        return date(year - 1, 12, 31)


# ---------------------------------------------------------------------------------------------
# Deadlines


@dataclass(frozen=True)
class Deadline:
    rule: str
    start: date
    nominal_due: date
    due: date
    provisional: bool
    explanation: tuple[str, ...]
    paused_days: int
    extra_days: int
    skipped: tuple[date, ...]  # rest days rolled over, from nominal_due onward

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "start": self.start.isoformat(),
            "nominal_due": self.nominal_due.isoformat(),
            "due": self.due.isoformat(),
            "provisional": self.provisional,
            "explanation": list(self.explanation),
            "paused_days": self.paused_days,
            "extra_days": self.extra_days,
        }

    def with_note(self, line: str) -> Deadline:
        return replace(self, explanation=(*self.explanation, line))


def _rest_name(d: date, info: DayInfo) -> str:
    if info.name:
        return info.name
    return "周末" if d.weekday() >= 5 else "节假日调整"


def add_months(start: date, months: int) -> date:
    """The corresponding day `months` later, or that month's last day (民法典 Art 202)."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, _stdlib_calendar.monthrange(year, month)[1]))


def _merge_pauses(pauses: Sequence[tuple[date, date]]) -> tuple[list[tuple[date, date]], bool]:
    for first, last in pauses:
        if last < first:
            raise InvalidPause(f"暂停结束日早于开始日：{first.isoformat()}:{last.isoformat()}")
    merged: list[tuple[date, date]] = []
    overlapped = False
    for first, last in sorted(pauses):
        if merged and first <= merged[-1][1]:
            overlapped = True
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged, overlapped


def _count_pauses(start: date, pauses: Sequence[tuple[date, date]], lines: list[str]) -> int:
    merged, overlapped = _merge_pauses(pauses)
    if overlapped:
        spans = "、".join(f"{a.isoformat()} 至 {b.isoformat()}" for a, b in merged)
        lines.append(f"暂停期间有重叠，合并后为 {spans}，重叠日只计一次")
    total = 0
    for first, last in merged:
        span = f"暂停 {first.isoformat()} 至 {last.isoformat()}"
        counted_from = max(first, start + _ONE_DAY)
        if last < counted_from:
            lines.append(f"{span} 在起算日当日或之前，不计入")
            continue
        days = (last - counted_from).days + 1
        total += days
        if counted_from > first:
            dropped = (counted_from - first).days
            lines.append(f"{span}，其中起算日及之前的 {dropped} 日不计入，计 {days} 日")
        else:
            lines.append(f"{span}，计 {days} 日")
    if len(merged) > 1:
        lines.append(f"暂停合计 {total} 日")
    return total


def _nth_working_day(start: date, n: int, calendar: Calendar, lines: list[str]) -> date:
    """The n-th working day strictly after `start` (not find_workday: DOMAIN.md §2.3)."""
    d, counted = start, 0
    run: list[tuple[date, DayInfo]] = []

    def close_run() -> None:
        if not run:
            return
        names = list(dict.fromkeys(_rest_name(day, info) for day, info in run))
        first, last = run[0][0], run[-1][0]
        span = first.isoformat() if first == last else f"{first.isoformat()} 至 {last.isoformat()}"
        lines.append(f"{span} 为休息日（{'、'.join(names)}），不计入")
        run.clear()

    while counted < n:
        d += _ONE_DAY
        info = calendar.day(d)
        if not info.is_workday:
            run.append((d, info))
            continue
        close_run()
        counted += 1
        if d.weekday() >= 5:
            lines.append(f"{d.isoformat()} 为调休上班日（{_rest_name(d, info)}），计入")
    lines.append(f"第 {n} 个工作日 {d.isoformat()}")
    return d


def compute_deadline(
    rule: Rule | str,
    start: date,
    *,
    calendar: Calendar,
    pauses: Sequence[tuple[date, date]] = (),
    extra_days: int = 0,
) -> Deadline:
    """Compute a clock's nominal and rolled due dates (DOMAIN.md §7 "Counting").

    - days: nominal = start + N + paused + extra days.
    - working_days: the N-th working day strictly after `start`, then + paused + extra calendar
      days. Pauses are not re-counted in working days: simple and literal on purpose.
    - months: the corresponding day N months later (month-end clamp, 民法典 Art 202), then +
      paused + extra days.
    Pauses count both ends; overlaps are merged; pause days on or before `start` do not count.
    The nominal date rolls to the next working day when it is a rest day and the rule says so.
    `provisional` is set when any date from start + 1 to due had no holiday data.
    """
    if isinstance(rule, str):
        rule = get_rule(rule)
    if extra_days < 0:
        raise PolicyError(f"延长天数不能为负数：{extra_days}")
    try:
        return _compute(rule, start, calendar, pauses, extra_days)
    except OverflowError:
        raise PolicyError(f"日期超出可计算范围：{start.isoformat()}") from None


def _compute(
    rule: Rule,
    start: date,
    calendar: Calendar,
    pauses: Sequence[tuple[date, date]],
    extra_days: int,
) -> Deadline:
    unit_text = {"days": "日", "working_days": "个工作日", "months": "个月"}[rule.unit]
    lines = [f"起算日 {start.isoformat()} 不计入；期间 {rule.length} {unit_text}（{rule.basis}）"]
    if rule.unit == "days":
        base = start + timedelta(days=rule.length)
    elif rule.unit == "working_days":
        base = _nth_working_day(start, rule.length, calendar, lines)
    else:
        base = add_months(start, rule.length)
        if base.day == start.day:
            lines.append(f"对应日 {base.isoformat()}")
        else:
            lines.append(f"{base.year} 年 {base.month} 月无对应日，取月末 {base.isoformat()}")

    paused = _count_pauses(start, pauses, lines)
    if extra_days:
        lines.append(f"延长 {extra_days} 日")
    nominal = base + timedelta(days=paused + extra_days)
    lines.append(f"名义到期日 {nominal.isoformat()}")

    due, skipped = nominal, []
    info = calendar.day(due)
    if not info.is_workday and not rule.roll_on_rest_day:
        lines.append(f"{due.isoformat()} 为休息日（{_rest_name(due, info)}），本规则不顺延")
    elif info.is_workday and due.weekday() >= 5:
        lines.append(f"{due.isoformat()} 为调休上班日（{_rest_name(due, info)}），不顺延")
    while not info.is_workday and rule.roll_on_rest_day:
        lines.append(f"{due.isoformat()} 为休息日（{_rest_name(due, info)}），顺延")
        skipped.append(due)
        due += _ONE_DAY
        info = calendar.day(due)
    lines.append(f"到期日 {due.isoformat()}")

    unknown_years = sorted(
        {d.year for d in _dates_between(start, due) if not calendar.day(d).known}
    )
    for year in unknown_years:
        lines.append(f"{year} 年节假日数据未发布：仅按周末计算，结果为临时结果")
    if not unknown_years:
        lines.append("节假日数据齐全，结果非临时")
    return Deadline(
        rule=rule.code,
        start=start,
        nominal_due=nominal,
        due=due,
        provisional=bool(unknown_years),
        explanation=tuple(lines),
        paused_days=paused,
        extra_days=extra_days,
        skipped=tuple(skipped),
    )


def _dates_between(start: date, end: date) -> Iterable[date]:
    """Dates d with start < d <= end."""
    d = start
    while d < end:
        d += _ONE_DAY
        yield d


def working_days_between(start: date, end: date, *, calendar: Calendar) -> int:
    """Working days d with start < d <= end; 0 when end <= start."""
    return sum(1 for d in _dates_between(start, end) if calendar.day(d).is_workday)


# ---------------------------------------------------------------------------------------------
# Input parsing

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_date(text: str) -> date:
    """Strict YYYY-MM-DD."""
    if not _ISO_DATE.fullmatch(text):
        raise PolicyError(f"日期格式错误：{text!r}，应为 YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PolicyError(f"日期不存在：{text!r}") from None


def parse_pause(text: str) -> tuple[date, date]:
    """`FROM:TO` (both YYYY-MM-DD, both days counted)."""
    parts = text.split(":")
    if len(parts) != 2:
        raise PolicyError(f"暂停期间格式错误：{text!r}，应为 YYYY-MM-DD:YYYY-MM-DD")
    first, last = parse_date(parts[0]), parse_date(parts[1])
    if last < first:
        raise InvalidPause(f"暂停结束日早于开始日：{text!r}")
    return first, last


# ---------------------------------------------------------------------------------------------
# Reminders


def reminder_times(
    deadline: Deadline,
    rule: Rule | str,
    *,
    calendar: Calendar,
    tz: ZoneInfo = SHANGHAI,
) -> list[tuple[str, datetime]]:
    """(offset code, aware instant) per reminder offset of `rule`, ascending.

    Each reminder is at `hour`:00 local on the working day `working_days_before` working days
    before the due day (0: the due day itself). Reminders on a day before the clock's start day
    and repeated instants are dropped.
    """
    if isinstance(rule, str):
        rule = get_rule(rule)
    seen: set[datetime] = set()
    result: list[tuple[str, datetime]] = []
    for offset in rule.reminder_offsets:
        day = deadline.due
        remaining = offset.working_days_before
        while remaining > 0:
            day -= _ONE_DAY
            if calendar.day(day).is_workday:
                remaining -= 1
        if day < deadline.start:
            continue
        instant = datetime.combine(day, time(offset.hour), tzinfo=tz)
        if instant not in seen:
            seen.add(instant)
            result.append((offset.code, instant))
    result.sort(key=lambda item: item[1])
    return result


def shift_into_quiet_hours(
    instant: datetime, *, tz: ZoneInfo = SHANGHAI, start_hour: int = 8, end_hour: int = 21
) -> datetime:
    """Move an instant outside [start_hour:00, end_hour:00) local to the next start_hour:00.

    Before start_hour it moves to the same morning; from end_hour on, to the next morning.
    """
    if instant.tzinfo is None:
        raise PolicyError(f"需要带时区的时间：{instant.isoformat()}")
    local = instant.astimezone(tz)
    if local.hour < start_hour:
        return datetime.combine(local.date(), time(start_hour), tzinfo=tz)
    if local.hour >= end_hour:
        return datetime.combine(local.date() + _ONE_DAY, time(start_hour), tzinfo=tz)
    return local
