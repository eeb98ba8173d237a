"""The holiday calendar in force: the chinese-calendar package under the admins' rows.

Built afresh on every call: two indexed queries over a few hundred rows cost about as much as
a fingerprint query would, and a cache keyed on row counts would miss an edited row.
"""

from __future__ import annotations

from datetime import date, timedelta

from .models import HolidayOverride, HolidayYear
from .policy import ChineseCalendar


def current_calendar() -> ChineseCalendar:
    """Package data, overridden by `HolidayOverride` rows; `HolidayYear` years count as known.

    Raises `django.db.DatabaseError` when the tables cannot be read; callers decide the fallback.
    """
    overrides = {
        day: (is_workday, name)
        for day, is_workday, name in HolidayOverride.objects.values_list(
            "date", "is_workday", "name"
        )
    }
    years = HolidayYear.objects.values_list("year", flat=True)
    return ChineseCalendar(overrides, declared_years=list(years))


def calendar_coverage_warning(
    *, today: date, horizon_days: int = 180, calendar: ChineseCalendar | None = None
) -> str | None:
    """A one-line warning when holiday data stops before `today + horizon_days` (DOMAIN.md §2.3)."""
    calendar = calendar or current_calendar()
    covered_until = calendar.covered_until(today=today)
    horizon = today + timedelta(days=horizon_days)
    if covered_until >= horizon:
        return None
    return (
        f"节假日数据只覆盖到 {covered_until.isoformat()}，不足今后 {horizon_days} 日"
        f"（至 {horizon.isoformat()}）：{covered_until.year + 1} 年的期限将仅按周末计算并标记为"
        f"临时结果。请按国务院办公厅放假通知录入节假日调整，并登记该年度为已录入。"
    )
