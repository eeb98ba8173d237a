"""Helpers shared by the web views: the clock read once per request, 404 for out-of-scope
cases, pagination."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.paginator import Page, Paginator
from django.http import Http404, HttpRequest

from mediation.cases.access import case_get_visible
from mediation.cases.models import Case
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


def paginate(request: HttpRequest, items: Any, per_page: int = PAGE_SIZE) -> Page:
    paginator = Paginator(items, per_page)
    return paginator.get_page(request.GET.get("page"))


def query_without_page(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()
