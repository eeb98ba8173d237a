"""Helpers shared by the web views: the clock read once per request, 404 for out-of-scope
cases, pagination."""

from __future__ import annotations

import datetime as dt
from math import ceil
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.utils.functional import cached_property

from mediation.cases.models import Case
from mediation.cases.selectors import case_get_visible
from mediation.core import clock
from mediation.core.errors import NotFound
from mediation.deadlines.calendar_source import current_calendar
from mediation.deadlines.policy import Calendar

PAGE_SIZE = 25


class RequestClock:
    """`now`, `today` and the holiday calendar, read once per request (STYLE.md)."""

    def __init__(self) -> None:
        self.now: dt.datetime = clock.now()
        self.today: dt.date = clock.local_date(self.now)
        self._calendar: Calendar | None = None

    @property
    def calendar(self) -> Calendar:
        if self._calendar is None:
            self._calendar = current_calendar()
        return self._calendar


def visible_case_or_404(request: HttpRequest, case_id: int) -> Case:
    try:
        return case_get_visible(request.user, case_id)
    except NotFound as exc:
        raise Http404(exc.message) from None


# Lists count at most this many rows (see CappedPaginator).
COUNT_CAP = 10_000


class CappedPaginator(Paginator):
    """A paginator that counts at most `COUNT_CAP` + 1 rows (`SELECT COUNT(*) FROM (… LIMIT
    10001)`): a county supervisor's list of a million open cases needs no exact total to show
    its first, most urgent pages, and the exact count alone would read every row. Beyond the
    cap the page says "more than 10,000" and the last reachable page is page 400; filters
    narrow the list."""

    cap = COUNT_CAP

    @cached_property
    def count(self) -> int:
        if isinstance(self.object_list, QuerySet):
            return min(self.object_list[: self.cap + 1].count(), self.cap + 1)
        return len(self.object_list)

    @property
    def capped(self) -> bool:
        return self.count > self.cap

    @cached_property
    def num_pages(self) -> int:
        return super().num_pages if not self.capped else ceil(self.cap / self.per_page)


# Search results count at most this many (a search that finds more is refined, not paged).
SEARCH_COUNT_CAP = 1_000


def paginate(
    request: HttpRequest, items: Any, per_page: int | None = None, cap: int | None = None
) -> Page:
    paginator = CappedPaginator(items, per_page or PAGE_SIZE)
    if cap is not None:
        paginator.cap = cap
    return paginator.get_page(request.GET.get("page"))


def query_without_page(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()
