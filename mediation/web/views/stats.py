"""统计分析: aggregate tables with inline SVG charts and a CSV export of each table."""

from __future__ import annotations

import csv
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as HttpForbidden
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from mediation.accounts.models import Role, User
from mediation.web import stats
from mediation.web.forms import StatsFilterForm
from mediation.web.views.common import RequestClock


def _require_stats(user: User) -> None:
    if not (user.is_superuser or user.role in (Role.SUPERVISOR, Role.ADMINISTRATOR)):
        raise HttpForbidden(_("统计分析仅限督办人员和系统管理员使用。"))


def _period(request: HttpRequest, rc: RequestClock) -> tuple[StatsFilterForm, stats.Period]:
    default = stats.default_period(rc.today)
    form = StatsFilterForm(
        request.GET or None,
        initial={"date_from": default.date_from, "date_to": default.date_to},
        today=rc.today,
    )
    if form.is_bound and form.is_valid():
        period = stats.Period(
            form.cleaned_data.get("date_from") or default.date_from,
            form.cleaned_data.get("date_to") or default.date_to,
        )
        if period.date_from > period.date_to or (
            (period.date_to - period.date_from).days >= StatsFilterForm.MAX_DAYS
        ):
            period = default  # one end given, the other from the default: still bounded
    else:
        period = default
    return form, period


@never_cache
@login_required
def statistics(request: HttpRequest) -> HttpResponse:
    _require_stats(request.user)
    rc = RequestClock()
    form, period = _period(request, rc)
    snapshot = stats.snapshot()
    scope = stats.scope_of(request.user)
    tables = [stats.build(slug, scope=scope, period=period) for slug in stats.TABLES]
    return render(
        request,
        "web/stats/stats.html",
        {
            "nav": "stats",
            "form": form,
            "period": period,
            "tables": tables,
            "as_of": snapshot.as_of,
            "top_rows": stats.TOP_ROWS,
            "querystring": urlencode(
                {"date_from": period.date_from.isoformat(), "date_to": period.date_to.isoformat()}
            ),
        },
    )


@never_cache
@login_required
def export_csv(request: HttpRequest, table: str) -> HttpResponse:
    """One table as CSV (UTF-8 with BOM, so spreadsheet programs read the Chinese right)."""
    _require_stats(request.user)
    if table not in stats.TABLES:
        raise Http404
    rc = RequestClock()
    _form, period = _period(request, rc)
    stats.snapshot()
    data = stats.build(table, scope=stats.scope_of(request.user), period=period)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    filename = f"{table}_{period.date_from:%Y%m%d}-{period.date_to:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow(data.headers)
    for row in data.rows:
        writer.writerow([_csv_safe(v) for v in row])
    return response


def _csv_safe(value: object) -> object:
    """Neutralise spreadsheet formulas in text cells (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
