"""Statistics for supervisors: one aggregate query per table, scoped to the user's agencies.

Every function returns a `Table` (headers and rows, also used for the CSV export). Nothing
here loads case rows: the database groups and counts.

Indexes relied on (see the report for the ones still to add):
- open cases by state: `case_holder_state_idx` (holder_agency, state);
- on-time rate: stopped duty clocks by `stopped_at`;
- overdue trend: duty clocks by `due_at`;
- cases by category and channel: cases by `registered_at`;
- time per state: case events by `at`, and the unique (case, version) index for the
  previous-event look-up.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import OperationalError, connection, transaction
from django.db.models import (
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import TruncMonth
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from mediation.accounts.models import User
from mediation.agencies.models import Agency
from mediation.cases.models import STATE_LABELS, TERMINAL_STATES, Case, CaseEvent, CaseKind
from mediation.cases.permissions import scope_agency_ids
from mediation.core.clock import SHANGHAI, end_of_day
from mediation.deadlines.models import Clock, ClockStatus
from mediation.deadlines.policy import ClockKind
from mediation.web.charts import bar_chart, line_chart

ALL_TERMINAL = sorted(set().union(*TERMINAL_STATES.values()))
TOP_ROWS = 50


@dataclass
class Table:
    slug: str
    title: str
    headers: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    chart: Any = None
    extra_chart: Any = None
    chart_kind: str = "bar"
    note: str = ""
    failed: bool = False


@dataclass(frozen=True)
class Period:
    date_from: dt.date
    date_to: dt.date

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.combine(self.date_from, dt.time(0, 0), tzinfo=SHANGHAI)

    @property
    def end(self) -> dt.datetime:
        return end_of_day(self.date_to)

    def months(self) -> list[dt.date]:
        out, d = [], self.date_from.replace(day=1)
        while d <= self.date_to:
            out.append(d)
            d = (d + dt.timedelta(days=32)).replace(day=1)
        return out


def default_period(today: dt.date) -> Period:
    """The current month and the two before it."""
    first = today.replace(day=1)
    for _i in range(2):
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return Period(first, today)


class Scope:
    """The agencies a user's statistics cover: their own and those below (superusers: all)."""

    def __init__(self, user: User) -> None:
        self.all = user.is_superuser
        self.ids = set() if self.all else scope_agency_ids(user)

    def cases(self, qs: QuerySet, prefix: str = "") -> QuerySet:
        if self.all:
            return qs
        return qs.filter(**{f"{prefix}holder_agency_id__in": self.ids})


def _state_label(kind: str, state: str) -> str:
    return str(STATE_LABELS.get(kind, {}).get(state, state))


def _kind_label(kind: str) -> str:
    return str(CaseKind(kind).label) if kind in CaseKind.values else kind


def _agency_names(ids: set[int]) -> dict[int, str]:
    return dict(Agency.objects.filter(pk__in=ids).values_list("pk", "name"))


def _month(value: dt.datetime | dt.date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = value.astimezone(SHANGHAI)
    return f"{value:%Y-%m}"


def open_cases(scope: Scope) -> Table:
    """Open cases now, by holder agency, kind and state."""
    rows = list(
        scope.cases(Case.objects.exclude(state__in=ALL_TERMINAL))
        .values("holder_agency_id", "kind", "state")
        .annotate(n=Count("pk"))
        .order_by("-n")
    )
    names = _agency_names({r["holder_agency_id"] for r in rows})
    by_state: dict[str, int] = defaultdict(int)
    table = Table(
        slug="open",
        title=_("在办案件：按承办机构和状态"),
        headers=[_("承办机构"), _("类别"), _("状态"), _("件数")],
    )
    for r in rows:
        label = _state_label(r["kind"], r["state"])
        by_state[f"{_kind_label(r['kind'])} · {label}"] += r["n"]
        table.rows.append(
            [names.get(r["holder_agency_id"], ""), _kind_label(r["kind"]), label, r["n"]]
        )
    table.chart = bar_chart(sorted(by_state.items(), key=lambda kv: -kv[1])[:20])
    return table


def on_time_rate(scope: Scope, period: Period) -> Table:
    """Duty clocks stopped in the period, on time if stopped by the end of their due day."""
    rows = list(
        scope.cases(
            Clock.objects.filter(
                kind=ClockKind.DUTY,
                status=ClockStatus.STOPPED,
                stopped_at__gte=period.start,
                stopped_at__lt=period.end,
            ),
            prefix="case__",
        )
        .annotate(month=TruncMonth("stopped_at", tzinfo=SHANGHAI))
        .values("case__holder_agency_id", "month")
        .annotate(total=Count("pk"), on_time=Count("pk", filter=Q(stopped_at__lte=F("due_at"))))
        .order_by("month", "case__holder_agency_id")
    )
    names = _agency_names({r["case__holder_agency_id"] for r in rows})
    table = Table(
        slug="ontime",
        title=_("按期办结率：按承办机构和月份"),
        headers=[_("承办机构"), _("月份"), _("办结期限数"), _("按期数"), _("按期率（%）")],
        chart_kind="line",
        note=_("期限停止时间不晚于到期日当日 24 时即为按期。"),
    )
    per_month: dict[str, list[int]] = {_month(m): [0, 0] for m in period.months()}
    for r in rows:
        month = _month(r["month"])
        rate = round(100 * r["on_time"] / r["total"], 1) if r["total"] else 0
        table.rows.append(
            [names.get(r["case__holder_agency_id"], ""), month, r["total"], r["on_time"], rate]
        )
        agg = per_month.setdefault(month, [0, 0])
        agg[0] += r["total"]
        agg[1] += r["on_time"]
    table.chart = line_chart(
        [(m, round(100 * ok / total, 1) if total else 0) for m, (total, ok) in per_month.items()],
        max_value=100,
        fmt=lambda v: f"{v:g}%",
    )
    return table


def overdue_trend(scope: Scope, period: Period, *, now: dt.datetime) -> Table:
    """Duty clocks due in each month that went overdue (stopped late, or running past due)."""
    late = Q(stopped_at__gt=F("due_at")) | Q(status=ClockStatus.RUNNING, due_at__lt=now)
    rows = list(
        scope.cases(
            Clock.objects.filter(
                kind=ClockKind.DUTY, due_at__gt=period.start, due_at__lte=period.end
            ),
            prefix="case__",
        )
        .annotate(month=TruncMonth("due"))
        .values("month")
        .annotate(due_count=Count("pk"), overdue=Count("pk", filter=late))
        .order_by("month")
    )
    per_month = {_month(m): [0, 0] for m in period.months()}
    for r in rows:
        per_month[_month(r["month"])] = [r["due_count"], r["overdue"]]
    table = Table(
        slug="overdue",
        title=_("超期趋势：按到期月份"),
        headers=[_("月份"), _("到期期限数"), _("超期数")],
        chart_kind="line",
    )
    for month, (due_count, overdue) in per_month.items():
        table.rows.append([month, due_count, overdue])
    table.chart = line_chart([(m, v[1]) for m, v in per_month.items()], integer=True)
    return table


def by_category_channel(scope: Scope, period: Period) -> Table:
    """Cases registered in the period, by category and intake channel."""
    rows = list(
        scope.cases(
            Case.objects.filter(registered_at__gte=period.start, registered_at__lt=period.end)
        )
        .values("kind", "category__name", "channel__name")
        .annotate(n=Count("pk"))
        .order_by("-n")
    )
    table = Table(
        slug="category",
        title=_("登记案件：按类型和来源"),
        headers=[_("类别"), _("类型"), _("来源"), _("件数")],
    )
    by_category: dict[str, int] = defaultdict(int)
    by_channel: dict[str, int] = defaultdict(int)
    for r in rows:
        category = r["category__name"] or _("未分类")
        table.rows.append([_kind_label(r["kind"]), category, r["channel__name"], r["n"]])
        by_category[category] += r["n"]
        by_channel[r["channel__name"]] += r["n"]
    table.chart = bar_chart(sorted(by_category.items(), key=lambda kv: -kv[1])[:20])
    table.extra_chart = bar_chart(sorted(by_channel.items(), key=lambda kv: -kv[1])[:20])
    return table


def _as_duration(value: Any) -> dt.timedelta | None:
    """AVG of an interval: a timedelta on PostgreSQL, microseconds on SQLite."""
    if value is None or isinstance(value, dt.timedelta):
        return value
    return dt.timedelta(microseconds=float(value))


def time_in_state(scope: Scope, period: Period) -> Table:
    """Average time spent in each state, from pairs of events: the one that left a state (in
    the period) and the latest earlier one that entered it.

    One correlated look-up per event on the unique (case, version) index. At county scale
    over a year this is the heaviest table; see the report for the stored-duration column
    that would make it a plain range scan.
    """
    entered = Subquery(
        CaseEvent.objects.filter(
            case_id=OuterRef("case_id"),
            version__lt=OuterRef("version"),
            to_state=OuterRef("from_state"),
        )
        .exclude(from_state=F("to_state"))
        .order_by("-version")
        .values("at")[:1],
        output_field=DateTimeField(),
    )
    # Aggregated around a derived table, so the look-up runs once per event (an ORM
    # aggregate over the annotation would repeat it for COUNT and for AVG).
    inner = (
        scope.cases(
            CaseEvent.objects.filter(at__gte=period.start, at__lt=period.end)
            .exclude(from_state="")
            .exclude(from_state=F("to_state")),
            prefix="case__",
        )
        .annotate(
            kind=F("case__kind"),
            spent=ExpressionWrapper(F("at") - entered, output_field=DurationField()),
        )
        .values("kind", "from_state", "spent")
    )
    sql, params = inner.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.kind, t.from_state, COUNT(t.spent), AVG(t.spent) "  # noqa: S608
            f"FROM ({sql}) t GROUP BY t.kind, t.from_state",
            params,
        )
        rows = [
            {"case__kind": k, "from_state": st, "n": n, "avg": _as_duration(avg)}
            for k, st, n, avg in cursor.fetchall()
        ]
    rows.sort(key=lambda r: (r["case__kind"], -(r["avg"] or dt.timedelta()).total_seconds()))
    table = Table(
        slug="state_time",
        title=_("各状态平均停留时间"),
        headers=[_("类别"), _("状态"), _("次数"), _("平均天数")],
    )
    items = []
    for r in rows:
        if not r["n"]:
            continue
        days = round(r["avg"].total_seconds() / 86400, 1) if r["avg"] is not None else 0
        label = _state_label(r["case__kind"], r["from_state"])
        table.rows.append([_kind_label(r["case__kind"]), label, r["n"], days])
        items.append((f"{_kind_label(r['case__kind'])} · {label}", days))
    table.chart = bar_chart(items[:20], fmt=lambda v: f"{v:g}")
    return table


TABLES = ("open", "ontime", "overdue", "category", "state_time")
TITLES = {
    "open": _lazy("在办案件：按承办机构和状态"),
    "ontime": _lazy("按期办结率：按承办机构和月份"),
    "overdue": _lazy("超期趋势：按到期月份"),
    "category": _lazy("登记案件：按类型和来源"),
    "state_time": _lazy("各状态平均停留时间"),
}
# A statistics query that runs longer than this is cancelled and the card says so, rather
# than holding a database connection (and the page) for minutes.
QUERY_TIMEOUT_MS = 15_000


def _build(slug: str, scope: Scope, period: Period, now: dt.datetime) -> Table:
    if slug == "open":
        return open_cases(scope)
    if slug == "ontime":
        return on_time_rate(scope, period)
    if slug == "overdue":
        return overdue_trend(scope, period, now=now)
    if slug == "category":
        return by_category_channel(scope, period)
    if slug == "state_time":
        return time_in_state(scope, period)
    raise KeyError(slug)


def build(slug: str, *, scope: Scope, period: Period, now: dt.datetime) -> Table:
    """One table, under a statement timeout on PostgreSQL."""
    if connection.vendor != "postgresql":
        return _build(slug, scope, period, now)
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL statement_timeout = %s", [QUERY_TIMEOUT_MS])
            return _build(slug, scope, period, now)
    except OperationalError:
        return Table(
            slug=slug,
            title=str(TITLES[slug]),
            headers=[],
            note=_("统计超时：数据量过大，请缩小统计期间后重试。"),
            failed=True,
        )
