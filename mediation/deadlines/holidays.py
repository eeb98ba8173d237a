"""Changes of the holiday data, serialized and recorded (issue 10).

Every write of `HolidayOverride` / `HolidayYear` rows goes through `holiday_change()`: the
admin pages (add, change, delete, the bulk delete action, the notice import), the
`holiday_notice --apply` command and any service. It
- takes the exclusive transaction-level advisory lock `CALENDAR_LOCK_KEY` (readers take it
  shared through `calendar_source.current_calendar`), waiting at most `LOCK_TIMEOUT`: a change
  never interleaves with a transaction that is counting with the calendar, and two
  administrators saving at once are applied one after the other;
- compares the calendar before and after, day by day, and records the dates whose day changed
  (workday flag, name, or whether the year's data is known) as one `HolidayChange` row in the
  same transaction. That row is the recompute job's queue entry: the sweep
  (`mediation.escalation.recalendar.holidays_recompute_pending`) re-dates every live clock
  whose counting span contains one of those dates, and marks it done. A change that alters no
  day (saving a row unchanged, applying the same notice twice) records nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import OperationalError, connection, transaction
from django.utils.translation import gettext as _

from mediation.core.errors import Conflict
from mediation.deadlines.models import HolidayChange, HolidayOverride, HolidayYear
from mediation.deadlines.policy import ChineseCalendar

# pg_advisory_xact_lock key: "holi" in ASCII. Also in deadlines migration 0005 (the readers'
# shared lock inside `deadlines_calendar_fingerprint()`).
CALENDAR_LOCK_KEY = 0x686F6C69
LOCK_TIMEOUT = "5s"
DEFAULT_SOURCE = "管理员调整节假日数据"


class HolidayDataBusy(Conflict):
    """The lock could not be had within LOCK_TIMEOUT (a long recompute batch, another change)."""

    code = "holiday_busy"


def busy_message() -> str:
    return _("节假日数据正被其他操作使用，请稍后重试。")


def lock_calendar_for_change() -> None:
    """Exclusive calendar lock until the caller's transaction ends (PostgreSQL; no-op else)."""
    if connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)",
                [LOCK_TIMEOUT],
            )
            (previous, _set) = cursor.fetchone()
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CALENDAR_LOCK_KEY])
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])
    except OperationalError as exc:
        if getattr(getattr(exc, "__cause__", None), "sqlstate", None) == "55P03":
            raise HolidayDataBusy(busy_message()) from exc
        raise


@dataclass(frozen=True)
class _Snapshot:
    overrides: dict[dt.date, tuple[bool, str, str]]
    years: dict[int, str]

    @classmethod
    def read(cls) -> _Snapshot:
        return cls(
            overrides={
                d: (w, n, s)
                for d, w, n, s in HolidayOverride.objects.values_list(
                    "date", "is_workday", "name", "source"
                )
            },
            years=dict(HolidayYear.objects.values_list("year", "source")),
        )

    def calendar(self) -> ChineseCalendar:
        return ChineseCalendar(
            {d: (w, n) for d, (w, n, _s) in self.overrides.items()}, declared_years=self.years
        )


def changed_dates(before: _Snapshot, after: _Snapshot) -> list[dt.date]:
    """Dates whose day differs between the two snapshots' calendars, ascending."""
    candidates = set(before.overrides) | set(after.overrides)
    for year in set(before.years) ^ set(after.years):
        d = dt.date(year, 1, 1)
        while d.year == year:
            candidates.add(d)
            d += dt.timedelta(days=1)
    old, new = before.calendar(), after.calendar()
    return sorted(d for d in candidates if old.day(d) != new.day(d))


def _sources(before: _Snapshot, after: _Snapshot, dates: list[dt.date]) -> str:
    found: list[str] = []
    for d in dates:
        for snap in (after, before):
            row = snap.overrides.get(d)
            if row and row[2]:
                found.append(row[2])
                break
    for year in set(before.years) ^ set(after.years):
        found.append(after.years.get(year) or before.years.get(year) or "")
    return "、".join(dict.fromkeys(s for s in found if s))[:200]


@dataclass
class ChangeRecord:
    """What `holiday_change` recorded: the HolidayChange row, or None when no day changed."""

    change: HolidayChange | None = None
    dates: list[dt.date] = field(default_factory=list)


@contextmanager
def holiday_change(
    *, now: dt.datetime, actor: Any = None, source: str = ""
) -> Iterator[ChangeRecord]:
    """Write holiday rows inside this block (module docstring). Raises HolidayDataBusy.

    One transaction (joins the caller's). `source`: the basis recorded on the change (the
    notice's document number); by default the changed rows' own `source` values.
    """
    record = ChangeRecord()
    with transaction.atomic():
        lock_calendar_for_change()
        before = _Snapshot.read()
        yield record
        after = _Snapshot.read()
        dates = changed_dates(before, after)
        record.dates = dates
        if dates:
            record.change = HolidayChange.objects.create(
                created_at=now,
                actor=actor if getattr(actor, "pk", None) else None,
                source=(source or _sources(before, after, dates) or DEFAULT_SOURCE)[:200],
                dates=[d.isoformat() for d in dates],
                first_date=dates[0],
                last_date=dates[-1],
            )


# The notice import ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NoticeApplied:
    created: int
    updated: int
    year_created: bool
    change: HolidayChange | None


def holiday_notice_apply(notice: Any, *, now: dt.datetime, actor: Any = None) -> NoticeApplied:
    """Write a parsed notice (`notice.ParsedNotice`): one `HolidayOverride` per rest day and
    调休 working day (with the notice's `source`), and its `HolidayYear`, in one transaction.

    Rows already equal are left alone, so applying the same notice twice adds and records
    nothing. Other override rows of the year are kept. Raises HolidayDataBusy.
    """
    wanted: dict[dt.date, tuple[bool, str]] = {}
    for holiday in notice.holidays:
        for d in holiday.rest_days:
            wanted[d] = (False, holiday.name)
        for d in holiday.work_days:
            wanted[d] = (True, holiday.name)
    created = updated = 0
    with holiday_change(now=now, actor=actor, source=notice.source) as record:
        existing = {o.date: o for o in HolidayOverride.objects.filter(date__in=list(wanted))}
        new_rows = []
        for d, (is_workday, name) in sorted(wanted.items()):
            row = existing.get(d)
            if row is None:
                new_rows.append(
                    HolidayOverride(date=d, is_workday=is_workday, name=name, source=notice.source)
                )
            elif (row.is_workday, row.name, row.source) != (is_workday, name, notice.source):
                row.is_workday, row.name, row.source = is_workday, name, notice.source
                row.save(update_fields=["is_workday", "name", "source"])
                updated += 1
        HolidayOverride.objects.bulk_create(new_rows)
        created = len(new_rows)
        _year, year_created = HolidayYear.objects.get_or_create(
            year=notice.year, defaults={"source": notice.source}
        )
    return NoticeApplied(
        created=created, updated=updated, year_created=year_created, change=record.change
    )
