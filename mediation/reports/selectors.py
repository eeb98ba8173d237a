"""Reads of the statistics rollups, summed over a date range and a supervisor's scope.

A `StatsScope` is either everything (superusers) or one agency with everything below it
(supervisors and administrators: `permissions.scope_agency_ids`). Tables keyed by `scope`
are read at that one agency (or at the root agencies, for everything); tables keyed by
holder `agency` are filtered by the agency ids of the scope.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import TruncMonth

from mediation.agencies.models import Agency
from mediation.reports.models import (
    AgencyScope,
    DueDaily,
    OnTimeDaily,
    OnTimeMonthly,
    OpenCaseCount,
    RegisteredDaily,
    StateTimeDaily,
    StatsSnapshot,
)


@dataclass(frozen=True)
class StatsScope:
    """`root_id` and every agency below it (as of the last refresh); None: every agency."""

    root_id: int | None

    def agency_ids(self) -> QuerySet:
        """The scope's agencies, as a sub-select (a county has a thousand)."""
        return AgencyScope.objects.filter(scope_id=self.root_id).values("agency_id")

    def by_agency(self, qs: QuerySet, field: str = "agency_id") -> QuerySet:
        return qs if self.root_id is None else qs.filter(**{f"{field}__in": self.agency_ids()})

    def by_scope(self, qs: QuerySet) -> QuerySet:
        if self.root_id is None:
            return qs.filter(scope_id__in=Agency.objects.filter(parent__isnull=True).values("pk"))
        return qs.filter(scope_id=self.root_id)


def _days(qs: QuerySet, date_from: dt.date, date_to: dt.date) -> QuerySet:
    return qs.filter(day__gte=date_from, day__lte=date_to)


def stats_snapshot_get() -> StatsSnapshot | None:
    return StatsSnapshot.objects.filter(pk=1).first()


def open_cases_list(*, scope: StatsScope) -> list[dict[str, Any]]:
    return list(
        scope.by_agency(OpenCaseCount.objects.all())
        .values("agency_id", "kind", "state", "n")
        .order_by("-n", "agency_id", "kind", "state")
    )


def _month_parts(
    date_from: dt.date, date_to: dt.date
) -> tuple[list[dt.date], list[tuple[dt.date, dt.date]], list[tuple[dt.date, dt.date]]]:
    """Split a date range into whole months to read from the monthly table, and day ranges to
    add (`plus`) or subtract (`minus`, a month's days outside the range) from the daily one:
    a month cut by the range is read as its days inside, or as the whole month minus the days
    outside, whichever is fewer days."""
    months: list[dt.date] = []
    plus: list[tuple[dt.date, dt.date]] = []
    minus: list[tuple[dt.date, dt.date]] = []
    month = date_from.replace(day=1)
    while month <= date_to:
        nxt = (month + dt.timedelta(days=32)).replace(day=1)
        last = nxt - dt.timedelta(days=1)
        lo, hi = max(date_from, month), min(date_to, last)
        inside = (hi - lo).days + 1
        outside = (last - month).days + 1 - inside
        if outside == 0:
            months.append(month)
        elif inside <= outside:
            plus.append((lo, hi))
        else:
            months.append(month)
            if lo > month:
                minus.append((month, lo - dt.timedelta(days=1)))
            if hi < last:
                minus.append((hi + dt.timedelta(days=1), last))
        month = nxt
    return months, plus, minus


def _day_ranges(ranges: list[tuple[dt.date, dt.date]]) -> Q:
    q = Q(pk__in=[])
    for lo, hi in ranges:
        q |= Q(day__gte=lo, day__lte=hi)
    return q


def on_time_list(*, scope: StatsScope, date_from: dt.date, date_to: dt.date) -> list[dict]:
    """Per holder agency and month: duty clocks stopped, and how many on time.

    Whole months come from `OnTimeMonthly` (one row per agency and month), so a county-wide
    year is a few thousand rows; only the months the range cuts read daily rows.
    """
    months, plus, minus = _month_parts(date_from, date_to)
    totals: dict[tuple[int, dt.date], list[int]] = {}

    def add(rows: Any, sign: int) -> None:
        for r in rows:
            row = totals.setdefault((r["agency_id"], r["month"]), [0, 0])
            row[0] += sign * r["total"]
            row[1] += sign * r["on_time"]

    if months:
        add(
            scope.by_agency(OnTimeMonthly.objects.filter(month__in=months))
            .values("agency_id", "month")
            .annotate(total=Sum("stopped"), on_time=Sum("on_time")),
            1,
        )
    for ranges, sign in ((plus, 1), (minus, -1)):
        if ranges:
            add(
                scope.by_agency(OnTimeDaily.objects.filter(_day_ranges(ranges)))
                .annotate(month=TruncMonth("day"))
                .values("agency_id", "month")
                .annotate(total=Sum("stopped"), on_time=Sum("on_time")),
                sign,
            )
    by_month: dict[dt.date, list[int]] = {}
    for agency_id, month in totals:
        by_month.setdefault(month, []).append(agency_id)
    out = []
    for month in sorted(by_month):
        for agency_id in sorted(by_month[month]):
            total, on_time = totals[(agency_id, month)]
            if total:
                out.append(
                    {"agency_id": agency_id, "month": month, "total": total, "on_time": on_time}
                )
    return out


def due_list(*, scope: StatsScope, date_from: dt.date, date_to: dt.date) -> list[dict]:
    """Per due month: duty clocks due, and how many went overdue."""
    return list(
        _days(scope.by_scope(DueDaily.objects.all()), date_from, date_to)
        .annotate(month=TruncMonth("day"))
        .values("month")
        .annotate(due_count=Sum("due"), overdue=Sum("overdue"))
        .order_by("month")
    )


def registered_list(*, scope: StatsScope, date_from: dt.date, date_to: dt.date) -> list[dict]:
    """Per kind, category and channel: cases registered."""
    return list(
        _days(scope.by_scope(RegisteredDaily.objects.all()), date_from, date_to)
        .values("kind", "category_id", "channel_id")
        .annotate(n=Sum("n"))
        .order_by("-n", "kind", "category_id", "channel_id")
    )


def state_time_list(*, scope: StatsScope, date_from: dt.date, date_to: dt.date) -> list[dict]:
    """Per kind and state: stays that ended in the range, and their total seconds."""
    return list(
        _days(scope.by_scope(StateTimeDaily.objects.all()), date_from, date_to)
        .values("kind", "state")
        .annotate(n=Sum("n"), seconds=Sum("seconds"))
        .filter(~Q(n=0))
        .order_by("kind", "state")
    )
