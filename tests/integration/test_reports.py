"""Statistics rollups (mediation.reports): the refresh equals a direct computation from the
case, clock and event rows, whatever changed in between (holder, extension, time)."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

import pytest

from mediation.accounts.models import Role
from mediation.agencies.models import Agency
from mediation.cases.models import TERMINAL_STATES, Case, CaseEvent
from mediation.core.clock import SHANGHAI
from mediation.deadlines.models import Clock
from mediation.escalation import services as esc_services
from mediation.escalation.models import Escalation
from mediation.escalation.sweeps import sweep_run
from mediation.reports import selectors
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
from mediation.reports.services import stats_refresh
from tests.factories.accounts import staff
from tests.factories.agencies import township_tree
from tests.factories.cases import dispute_in_state, register_dispute

pytestmark = pytest.mark.django_db

TERMINAL = set().union(*TERMINAL_STATES.values())


def _day(instant: dt.datetime) -> dt.date:
    return instant.astimezone(SHANGHAI).date()


def _scopes(agency_id: int) -> list[int]:
    """The agency and every agency above it."""
    out, node = [], Agency.objects.get(pk=agency_id)
    while node is not None:
        out.append(node.pk)
        node = node.parent
    return out


def expected(as_of: dt.datetime) -> dict[str, dict]:
    """Every rollup computed row by row in Python, the definitions spelled out."""
    cases = {c.pk: c for c in Case.objects.all()}
    out: dict[str, dict] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    out["open"] = Counter(
        (c.holder_agency_id, c.kind, c.state) for c in cases.values() if c.state not in TERMINAL
    )
    for c in cases.values():
        for scope in _scopes(c.holder_agency_id):
            key = (scope, _day(c.registered_at), c.kind, c.category_id, c.channel_id)
            out["registered"][key][0] += 1
    for k in Clock.objects.filter(kind="duty"):
        holder = cases[k.case_id].holder_agency_id
        if k.status == "stopped":
            row = out["ontime"][(holder, _day(k.stopped_at))]
            row[0] += 1
            row[1] += k.stopped_at <= k.due_at
        late = (k.status == "stopped" and k.stopped_at > k.due_at) or (
            k.status == "running" and k.due_at < as_of
        )
        for scope in _scopes(holder):
            row = out["due"][(scope, k.due)]
            row[0] += 1
            row[1] += late
    events = defaultdict(list)
    for e in CaseEvent.objects.order_by("case_id", "version"):
        events[e.case_id].append(e)
    for case_id, evs in events.items():
        case = cases[case_id]
        for i, e in enumerate(evs):
            if not e.from_state or e.from_state == e.to_state:
                continue
            entered = [
                p for p in evs[:i] if p.to_state == e.from_state and p.from_state != p.to_state
            ]
            if not entered:
                continue
            seconds = (e.at - entered[-1].at).total_seconds()
            for scope in _scopes(case.holder_agency_id):
                row = out["state_time"][(scope, _day(e.at), case.kind, e.from_state)]
                row[0] += 1
                row[1] += seconds
    return out


def stored() -> dict[str, dict]:
    return {
        "open": Counter({(r.agency_id, r.kind, r.state): r.n for r in OpenCaseCount.objects.all()}),
        "ontime": {(r.agency_id, r.day): [r.stopped, r.on_time] for r in OnTimeDaily.objects.all()},
        "due": {(r.scope_id, r.day): [r.due, r.overdue] for r in DueDaily.objects.all()},
        "registered": {
            (r.scope_id, r.day, r.kind, r.category_id, r.channel_id): [r.n, 0]
            for r in RegisteredDaily.objects.all()
        },
        "state_time": {
            (r.scope_id, r.day, r.kind, r.state): [r.n, round(r.seconds, 3)]
            for r in StateTimeDaily.objects.all()
        },
    }


def assert_rollups_match(as_of: dt.datetime) -> None:
    want, got = expected(as_of), stored()
    for name in ("open", "ontime", "due", "registered"):
        assert got[name] == dict(want[name]), name
    assert {(r.scope_id, r.agency_id) for r in AgencyScope.objects.all()} == {
        (scope, a.pk) for a in Agency.objects.all() for scope in _scopes(a.pk)
    }
    monthly = defaultdict(lambda: [0, 0])
    for (agency_id, day), (stopped, on_time) in got["ontime"].items():
        monthly[(agency_id, day.replace(day=1))][0] += stopped
        monthly[(agency_id, day.replace(day=1))][1] += on_time
    assert {
        (r.agency_id, r.month): [r.stopped, r.on_time] for r in OnTimeMonthly.objects.all()
    } == dict(monthly)
    assert got["state_time"] == {k: [n, round(s, 3)] for k, (n, s) in want["state_time"].items()}


@pytest.fixture
def busy(now):
    """Two townships: closed, mediating and overdue disputes, one reassigned to another
    agency and one with an approved extension; each step on a different day."""
    t1, t2 = township_tree("甲镇"), township_tree("乙镇")
    supervisor = staff(t1.centre, Role.SUPERVISOR)
    dispute_in_state("closed_resolved", township=t1, now=now - dt.timedelta(days=20))
    dispute_in_state("mediating", township=t1, now=now - dt.timedelta(days=12))
    dispute_in_state("mediating", township=t2, now=now - dt.timedelta(days=6))
    late = [
        register_dispute(t1, now=now - dt.timedelta(days=9, hours=i), title=f"超期{i}")
        for i in range(2)
    ]
    sweep_run(now=now - dt.timedelta(days=1), trigger="test")
    return {"t1": t1, "t2": t2, "supervisor": supervisor, "late": late}


def test_refresh_equals_the_direct_computation(busy, now):
    stats_refresh(now=now)

    assert_rollups_match(now)
    assert OpenCaseCount.objects.exists()
    assert StateTimeDaily.objects.exists()
    assert DueDaily.objects.filter(overdue__gt=0).exists()


def test_refresh_follows_a_holder_change_an_extension_and_the_passing_of_time(busy, now):
    t1 = busy["t1"]
    stats_refresh(now=now)
    moved, extended = busy["late"]

    esc_services.escalation_reassign(
        escalation_id=Escalation.objects.get(case=moved).pk,
        actor=busy["supervisor"],
        now=now,
        reason="改由司法所承办",
        to_agency_id=t1.judicial_office.pk,
    )
    esc_services.escalation_approve_extension(
        escalation_id=Escalation.objects.get(case=extended).pk,
        actor=busy["supervisor"],
        now=now,
        extra_days=10,
        reason="当事人外出务工",
    )
    extended_clock = Clock.objects.get(case=extended, status="running", kind="duty")
    stats_refresh(now=now)

    assert RegisteredDaily.objects.filter(scope_id=t1.judicial_office.pk).exists()
    assert extended_clock.due_at > now  # no longer overdue ...
    assert_rollups_match(now)
    later = extended_clock.due_at + dt.timedelta(hours=1)
    stats_refresh(now=later)  # ... until its new due time passes
    assert_rollups_match(later)
    row = DueDaily.objects.get(scope_id=t1.centre.pk, day=extended_clock.due)
    assert row.overdue >= 1


def test_refreshing_twice_gives_the_same_rows(busy, now):
    stats_refresh(now=now)
    first = stored()
    snapshot = stats_refresh(now=now)

    assert stored() == first
    assert StatsSnapshot.objects.count() == 1
    assert snapshot.as_of == now


def test_refresh_only_if_missing_keeps_an_existing_snapshot(busy, now):
    stats_refresh(now=now)

    again = stats_refresh(now=now + dt.timedelta(hours=1), only_if_missing=True)

    assert again.as_of == now


def test_a_scope_sums_its_agency_and_everything_below_it(busy, now):
    t1, t2 = busy["t1"], busy["t2"]
    stats_refresh(now=now)
    period = {"date_from": (now - dt.timedelta(days=60)).date(), "date_to": now.date()}

    def registered(root: Agency) -> int:
        scope = selectors.StatsScope(root_id=root.pk)
        return sum(r["n"] for r in selectors.registered_list(scope=scope, **period))

    everything = selectors.StatsScope(root_id=None)
    total = sum(r["n"] for r in selectors.registered_list(scope=everything, **period))
    assert registered(t1.county_centre) == 4
    assert registered(t1.centre) == 4
    assert registered(t2.centre) == 1
    assert total == Case.objects.count() == 5


@pytest.mark.parametrize(
    ("date_from", "date_to"),
    [
        ("2026-02-01", "2026-03-31"),  # whole months
        ("2026-02-20", "2026-03-11"),  # two cut months, read as their days
        ("2026-02-02", "2026-03-30"),  # two cut months, read as month minus days outside
        ("2026-03-05", "2026-03-05"),  # one day
    ],
)
def test_on_time_by_month_sums_exactly_the_days_of_the_range(busy, now, date_from, date_to):
    stats_refresh(now=now)
    lo, hi = dt.date.fromisoformat(date_from), dt.date.fromisoformat(date_to)
    want: dict[tuple[int, dt.date], list[int]] = defaultdict(lambda: [0, 0])
    for r in OnTimeDaily.objects.filter(day__gte=lo, day__lte=hi):
        want[(r.agency_id, r.day.replace(day=1))][0] += r.stopped
        want[(r.agency_id, r.day.replace(day=1))][1] += r.on_time

    rows = selectors.on_time_list(
        scope=selectors.StatsScope(root_id=None), date_from=lo, date_to=hi
    )

    assert want
    assert {(r["agency_id"], r["month"]): [r["total"], r["on_time"]] for r in rows} == dict(want)


def test_month_parts_read_the_fewest_days():
    months, plus, minus = selectors._month_parts(dt.date(2026, 1, 3), dt.date(2026, 3, 5))

    assert months == [dt.date(2026, 1, 1), dt.date(2026, 2, 1)]
    assert minus == [(dt.date(2026, 1, 1), dt.date(2026, 1, 2))]
    assert plus == [(dt.date(2026, 3, 1), dt.date(2026, 3, 5))]
