"""The holiday calendar in force: the chinese-calendar package under the admins' rows.

On PostgreSQL each process keeps the last calendar it built, keyed on a fingerprint of the
data: one query returns an md5 of every `HolidayOverride` row's date, workday flag and name
and the list of `HolidayYear` years, computed by the database from the rows the caller's
transaction sees. Any committed change (admin form, bulk `update()`, raw SQL, a migration)
changes the fingerprint, so the next call after it, in any process, sees it: there is no
staleness window and no invalidation signal to forget. The fingerprint query costs a fraction
of rebuilding (two ORM queries, the calendar object); building the calendar and counting with
it are unchanged. Other databases (the SQLite demo) build the calendar on every call.

Readers and holiday changes are serialized (issue 10). The fingerprint is read through the
database function `deadlines_calendar_fingerprint()` (migration deadlines 0005), which first
takes a shared transaction-level advisory lock: a transaction that counts with the calendar
holds it until it commits, and a change of the holiday data (`holidays.holiday_change`,
exclusive) waits for those readers and is waited for by new ones, which then see the change.
So no clock is ever computed with a calendar that a committed change has already replaced
without the recompute job seeing that clock. Same single statement as before: a transition
costs no extra query.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.db import connection

from .models import HolidayOverride, HolidayYear
from .policy import ChineseCalendar, DayInfo

# (fingerprint, calendar) of the last build in this process. A ChineseCalendar is never
# mutated after construction, so threads may share it; a race only builds it twice.
_cached: tuple[tuple[str, str], ChineseCalendar] | None = None


# md5 of the HolidayOverride rows (ROW(...)::text quotes values holding separators, so
# distinct data gives distinct text) and the HolidayYear years, after the shared lock.
_FINGERPRINT_SQL = "SELECT overrides, years FROM deadlines_calendar_fingerprint()"


def calendar_fingerprint() -> tuple[str, str] | None:
    """md5 of the override rows and the declared years; None where not supported (SQLite)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(_FINGERPRINT_SQL)
        overrides, years = cursor.fetchone()
    return overrides, years


def current_calendar() -> ChineseCalendar:
    """Package data, overridden by `HolidayOverride` rows; `HolidayYear` years count as known.

    Reuses this process's last calendar while the data's fingerprint is unchanged (module
    docstring). Raises `django.db.DatabaseError` when the tables cannot be read; callers
    decide the fallback.
    """
    global _cached
    stamp = calendar_fingerprint()
    cached = _cached
    if stamp is not None and cached is not None and cached[0] == stamp:
        return cached[1]
    calendar = _build_calendar()
    if stamp is not None:
        _cached = (stamp, calendar)
    return calendar


class LazyCalendar:
    """`current_calendar()`, read when a day is first asked for (`policy.Calendar`): a
    transition that computes no date (one that only stops clocks) reads no calendar."""

    def __init__(self) -> None:
        self._calendar: ChineseCalendar | None = None

    def day(self, d: date) -> DayInfo:
        if self._calendar is None:
            self._calendar = current_calendar()
        return self._calendar.day(d)


def build_calendar() -> ChineseCalendar:
    """A calendar from the rows this transaction sees now, bypassing the process cache."""
    return _build_calendar()


def _build_calendar() -> ChineseCalendar:
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
