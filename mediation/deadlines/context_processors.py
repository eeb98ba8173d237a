"""Shows the calendar-coverage warning to staff on admin pages (DOMAIN.md §2.3)."""

from __future__ import annotations

from django.db import DatabaseError
from django.http import HttpRequest

from mediation.core import clock
from mediation.deadlines.calendar_source import calendar_coverage_warning


def calendar_warning(request: HttpRequest) -> dict[str, str | None]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_staff:
        return {}
    if not request.path.startswith("/admin/"):
        return {}
    try:
        warning = calendar_coverage_warning(today=clock.local_date(clock.now()))
    except DatabaseError:
        return {}
    return {"calendar_coverage_warning": warning}
