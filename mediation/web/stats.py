"""Statistics for supervisors, read from the rollups of `mediation.reports` (refreshed every
few minutes by the beat; the page says as of when), scoped to the user's agencies.

Every function returns a `Table` (headers and rows, also used for the CSV export). Nothing
here reads case, clock or event rows: each table is one indexed query on a small rollup
table (`reports.selectors`), summed over the period's days and the user's scope.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from mediation.accounts.models import User
from mediation.agencies.models import Agency
from mediation.cases import labels
from mediation.cases.models import CaseKind, Category, Channel
from mediation.core import clock
from mediation.core.clock import SHANGHAI, end_of_day
from mediation.reports import selectors as reports
from mediation.reports.models import StatsSnapshot
from mediation.reports.services import stats_refresh
from mediation.web.charts import bar_chart, line_chart

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


def scope_of(user: User) -> reports.StatsScope:
    """The agencies a user's statistics cover: their own and those below (superusers: all).

    Only supervisors and administrators see statistics, and for them this is the same set as
    `agencies.selectors.user_scope(user).below` (read from the agency tree as of the last
    refresh)."""
    if user.is_superuser:
        return reports.StatsScope(root_id=None)
    return reports.StatsScope(root_id=user.agency_id or 0)  # 0: no agency, no rows


def snapshot() -> StatsSnapshot:
    """The rollups' snapshot; computed here, once, if no refresh has run yet (a new
    installation before the beat's first tick)."""
    existing = reports.stats_snapshot_get()
    if existing is not None:
        return existing
    return stats_refresh(now=clock.now(), only_if_missing=True)


def _state_label(kind: str, state: str) -> str:
    return labels.state_label(kind, state)


def _kind_label(kind: str) -> str:
    return str(CaseKind(kind).label) if kind in CaseKind.values else kind


class _Memo(dict):
    """label(key), computed once per key: a county's table has thousands of rows but only a
    few distinct labels, and each lookup goes through gettext."""

    def __init__(self, label: Any) -> None:
        super().__init__()
        self.label = label

    def __missing__(self, key: Any) -> str:
        value = self[key] = self.label(*key) if isinstance(key, tuple) else self.label(key)
        return value


def _labels() -> tuple[_Memo, _Memo]:
    return _Memo(_state_label), _Memo(_kind_label)


def _agency_names(scope: reports.StatsScope) -> dict[int, str]:
    return dict(scope.by_agency(Agency.objects.all(), "pk").values_list("pk", "name"))


def _month(value: dt.datetime | dt.date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = value.astimezone(SHANGHAI)
    return f"{value:%Y-%m}"


def open_cases(scope: reports.StatsScope) -> Table:
    """Open cases at the snapshot, by holder agency, kind and state."""
    rows = [{"holder_agency_id": r["agency_id"], **r} for r in reports.open_cases_list(scope=scope)]
    names = _agency_names(scope)
    states, kinds = _labels()
    by_state: dict[str, int] = defaultdict(int)
    table = Table(
        slug="open",
        title=_("在办案件：按承办机构和状态"),
        headers=[_("承办机构"), _("类别"), _("状态"), _("件数")],
    )
    for r in rows:
        label, kind = states[(r["kind"], r["state"])], kinds[r["kind"]]
        by_state[f"{kind} · {label}"] += r["n"]
        table.rows.append([names.get(r["holder_agency_id"], ""), kind, label, r["n"]])
    table.chart = bar_chart(sorted(by_state.items(), key=lambda kv: -kv[1])[:20])
    return table


def on_time_rate(scope: reports.StatsScope, period: Period) -> Table:
    """Duty clocks stopped in the period, on time if stopped by the end of their due day."""
    rows = [
        {"case__holder_agency_id": r["agency_id"], **r}
        for r in reports.on_time_list(
            scope=scope, date_from=period.date_from, date_to=period.date_to
        )
    ]
    names = _agency_names(scope)
    table = Table(
        slug="ontime",
        title=_("按期办结率：按承办机构和月份"),
        headers=[_("承办机构"), _("月份"), _("办结期限数"), _("按期数"), _("按期率（%）")],
        chart_kind="line",
        note=_("期限停止时间不晚于到期日当日 24 时即为按期。"),
    )
    per_month: dict[str, list[int]] = {_month(m): [0, 0] for m in period.months()}
    months: dict[dt.date, str] = {}
    for r in rows:
        month = months.get(r["month"]) or months.setdefault(r["month"], _month(r["month"]))
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


def overdue_trend(scope: reports.StatsScope, period: Period) -> Table:
    """Duty clocks due in each month that went overdue (stopped late, or running past due)."""
    rows = reports.due_list(scope=scope, date_from=period.date_from, date_to=period.date_to)
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


def by_category_channel(scope: reports.StatsScope, period: Period) -> Table:
    """Cases registered in the period, by category and intake channel."""
    raw = reports.registered_list(scope=scope, date_from=period.date_from, date_to=period.date_to)
    categories = dict(Category.objects.values_list("pk", "name"))
    channels = dict(Channel.objects.values_list("pk", "name"))
    rows = [
        {
            "kind": r["kind"],
            "category__name": categories.get(r["category_id"]),
            "channel__name": channels.get(r["channel_id"], ""),
            "n": r["n"],
        }
        for r in raw
    ]
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


def time_in_state(scope: reports.StatsScope, period: Period) -> Table:
    """Average time spent in each state, over the stays that ended in the period (a stay runs
    from the event that entered the state to the one that left it)."""
    rows = [
        {
            "case__kind": r["kind"],
            "from_state": r["state"],
            "n": r["n"],
            "avg": dt.timedelta(seconds=r["seconds"] / r["n"]),
        }
        for r in reports.state_time_list(
            scope=scope, date_from=period.date_from, date_to=period.date_to
        )
    ]
    rows.sort(key=lambda r: (r["case__kind"], -r["avg"].total_seconds()))
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


def _satisfaction_table(slug: str, title: str, rows: list[dict[str, Any]], note: str) -> Table:
    table = Table(
        slug=slug,
        title=title,
        headers=[
            _("机构"),
            _("月份"),
            _("评价数"),
            _("满意"),
            _("基本满意"),
            _("不满意"),
            _("满意率"),
        ],
        note=note,
    )
    items = []
    for r in rows:
        rate = f"{r['rate'] * 100:.1f}%" if r["rate"] is not None else ""
        month = _month(r["month"])
        table.rows.append(
            [
                r["agency__name"],
                month,
                r["total"],
                r["satisfied"],
                r["basic"],
                r["unsatisfied"],
                rate,
            ]
        )
        if r["rate"] is not None:
            items.append((f"{r['agency__name']} {month}", round(r["rate"] * 100, 1)))
    table.chart = bar_chart(items[:20], fmt=lambda v: f"{v:g}%")
    return table


def satisfaction(scope: reports.StatsScope, period: Period) -> Table:
    """群众评价: the parties' own ratings (满意 + 基本满意 over all), by handling agency and
    month. Read from the ratings themselves (a few per closed case), not from a rollup."""
    from mediation.public.selectors import satisfaction_by_agency_month

    ids = None if scope.root_id is None else scope.agency_ids()
    rows = satisfaction_by_agency_month(
        agency_ids=ids, date_from=period.date_from, date_to=period.date_to
    )
    return _satisfaction_table(
        "satisfaction",
        _("群众评价满意率（当事人凭查询码评价）"),
        rows,
        _("满意率 =（满意 + 基本满意）÷ 评价数；按评价时的办理机构和首次评价月份统计。"),
    )


def followup_satisfaction(scope: reports.StatsScope, period: Period) -> Table:
    """The mediators' 回访 satisfaction, as recorded on the follow-up visits: shown apart."""
    from mediation.casefiles.selectors import followup_satisfaction_by_agency_month

    ids = None if scope.root_id is None else scope.agency_ids()
    rows = followup_satisfaction_by_agency_month(
        agency_ids=ids, date_from=period.date_from, date_to=period.date_to
    )
    return _satisfaction_table(
        "followup_satisfaction",
        _("回访满意度（调解员回访记录）"),
        rows,
        _("调解员回访时记录的当事人满意度，与当事人自行评价分开统计。"),
    )


TABLES = (
    "open",
    "ontime",
    "overdue",
    "category",
    "state_time",
    "satisfaction",
    "followup_satisfaction",
)


def build(slug: str, *, scope: reports.StatsScope, period: Period) -> Table:
    """One table, from the rollups."""
    if slug == "open":
        return open_cases(scope)
    if slug == "ontime":
        return on_time_rate(scope, period)
    if slug == "overdue":
        return overdue_trend(scope, period)
    if slug == "category":
        return by_category_channel(scope, period)
    if slug == "state_time":
        return time_in_state(scope, period)
    if slug == "satisfaction":
        return satisfaction(scope, period)
    if slug == "followup_satisfaction":
        return followup_satisfaction(scope, period)
    raise KeyError(slug)
