"""The hot statements keep their intended plans on skewed data, after ANALYZE (issue 12).

A plan that flips with the statistics costs nothing in a small test database and everything at
a million rows. The data here is skewed the way a running system is: many clocks and reminders,
almost all reminders already sent (right after a sweep), few planned; a county tree with many
villages. After ANALYZE, each hot statement is EXPLAINed and must use its index:

- the transition's stale-reminder cancel: through the case's clocks (`reminder_one_per_offset`,
  led by `clock_id`), never by walking `reminder_planned_send_idx` over every planned reminder
  (the `IN (SELECT …)` form did: 42 ms instead of 0.2 ms, growing with the system);
- the sweep's level-1 candidates (`clock_running_due_idx`) and reminder candidates
  (`reminder_planned_send_idx`);
- the delivery hand-out (`delivery_pending_idx`);
- a case list (`case_open_urgency_idx` or the holder's index, never a sequential scan of cases);
- the escalation queue (`escalation_queue_idx`).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection

from mediation.accounts.models import Role
from mediation.cases.selectors import case_list_for
from mediation.deadlines import reminders
from mediation.escalation import sweeps
from mediation.escalation.selectors import escalation_queue_for
from tests.factories.accounts import staff
from tests.factories.agencies import township_tree
from tests.factories.cases import dispute_in_state

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 11, 2, 0, tzinfo=dt.UTC)


def _plan(sql: str, params: object = None) -> dict:
    with connection.cursor() as cur:
        cur.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        raw = cur.fetchone()[0]
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


def _nodes(plan: dict) -> list[dict]:
    out = [plan]
    for child in plan.get("Plans", []):
        out += _nodes(child)
    return out


def _indexes(plan: dict) -> set[str]:
    return {n["Index Name"] for n in _nodes(plan) if "Index Name" in n}


def _seq_scans(plan: dict) -> set[str]:
    return {n["Relation Name"] for n in _nodes(plan) if n["Node Type"] == "Seq Scan"}


@pytest.fixture
def skewed(now):
    """A real case, then bulk rows: 4,000 cases with a running clock each, 60,000 reminders of
    which 4 are planned, 20,000 deliveries of which 20 pending; ANALYZE."""
    town = township_tree("将官池")
    case = dispute_in_state("mediating", township=town, now=now)
    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO cases_case (kind, number, registering_agency_id, year, sequence,
                holder_agency_id, state, version, state_entered_at, title, description,
                channel_id, received_on, registered_at, risk_level, mediation_track,
                extension_days, petition_type, involves_accusation, collective, headcount,
                supervised, transfer_target, external_reference, outcome_note, created_at,
                updated_at, next_due_at)
            SELECT kind, number || '-' || g, registering_agency_id, year, sequence + g,
                holder_agency_id, state, version, state_entered_at, title, description,
                channel_id, received_on, registered_at, risk_level, mediation_track,
                extension_days, petition_type, involves_accusation, collective, headcount,
                supervised, transfer_target, external_reference, outcome_note, created_at,
                updated_at, next_due_at + g * interval '1 minute'
            FROM cases_case, generate_series(1, 4000) g WHERE id = %s
            """,
            [case.pk],
        )
        cur.execute(
            """
            INSERT INTO deadlines_clock (case_id, rule_code, kind, entered_state, start_date,
                nominal_due, due, due_at, provisional, extra_days, paused_days, explanation,
                status, started_at, generation, stop_reason)
            SELECT k.id, 'dispute.mediate', 'duty', 'mediating', '2026-03-01', '2026-03-31',
                '2026-03-31',
                '2026-04-01 00:00+08'::timestamptz + (k.id %% 4000) * interval '1 day',
                false, 0, 0, '[]', 'running', now(), 1, ''
            FROM cases_case k WHERE k.id <> %s
            """,
            [case.pk],
        )
        cur.execute(
            """
            INSERT INTO deadlines_reminder (clock_id, generation, offset_code, send_at, status,
                created_at, digested, cancel_reason)
            SELECT c.id, g, 'wd3', '2026-03-20 01:00+00',
                CASE WHEN c.id % 1000 = 0 AND g = 1 THEN 'planned' ELSE 'sent' END,
                now(), false, ''
            FROM deadlines_clock c, generate_series(1, 15) g
            ON CONFLICT DO NOTHING
            """
        )
        user = staff(town.committee, Role.MEDIATOR, n=7)
        cur.execute(
            """
            INSERT INTO notifications_notification (recipient_id, kind, case_id, subject, body,
                key, data, created_at)
            SELECT %s, 'reminder', NULL, '提醒', '正文', 'plan-test:' || g, '{}', now()
            FROM generate_series(1, 20000) g
            """,
            [user.pk],
        )
        cur.execute(
            """
            INSERT INTO notifications_delivery (notification_id, channel, status, attempts,
                next_attempt_at, claimed_by, address, created_at, last_error)
            SELECT n.id, 'email', CASE WHEN n.id % 1000 = 0 THEN 'pending' ELSE 'sent' END,
                1, '2026-03-10 00:00+00', '', 'x@example.org', now(), ''
            FROM notifications_notification n WHERE n.key LIKE 'plan-test:%'
            """
        )
        cur.execute(
            """
            INSERT INTO escalation_escalation (clock_id, case_id, level, status, agency_id,
                created_at, ack_due_at, resolution, data)
            SELECT c.id, c.case_id, 1, CASE WHEN c.id % 50 = 0 THEN 'open' ELSE 'resolved' END,
                k.holder_agency_id, now(), now(), '', '{}'
            FROM deadlines_clock c JOIN cases_case k ON k.id = c.case_id
            """
        )
        cur.execute("ANALYZE")
        # After the statistics were taken, a burst of planned reminders (a transition storm
        # before the next autoanalyze): the statistics still say almost none are planned.
        cur.execute(
            "UPDATE deadlines_reminder SET status = 'planned' WHERE generation BETWEEN 2 AND 9"
        )
    return town, case


def test_the_transitions_stale_reminder_cancel_goes_through_the_cases_clocks(skewed):
    _town, case = skewed
    sql = reminders._CANCEL_STALE_FOR_CASE_SQL
    params = ["cancelled", NOW, "stopped", "paused", "planned", case.pk, "stopped", "paused"]
    params.append("duty")

    plan = _plan(sql, params)

    by_clock = {"reminder_one_per_offset", "deadlines_reminder_clock_id_eb4dd57b"}
    assert _indexes(plan) & by_clock, plan
    assert "reminder_planned_send_idx" not in _indexes(plan)
    assert "deadlines_reminder" not in _seq_scans(plan)
    # (The form it replaced, `status = 'planned' AND clock_id IN (SELECT …)`, walked the
    # planned reminders of the whole system on such statistics in most runs; which plan it gets
    # depends on the statistics, which is the point: this one cannot.)


def test_the_sweeps_claims_use_their_partial_indexes(skewed):
    params = {
        "now": NOW + dt.timedelta(days=40),
        "duty": "duty",
        "window": 10_000,
        "upper": NOW + dt.timedelta(days=40),
        "lower": NOW - dt.timedelta(days=400),
    }

    level1 = _plan(sweeps._LEVEL1_CANDIDATES_SQL, params)
    due_reminders = _plan(sweeps._REMINDER_CANDIDATES_SQL, params)

    assert "clock_running_due_idx" in _indexes(level1)
    assert "deadlines_clock" not in _seq_scans(level1)
    assert "reminder_planned_send_idx" in _indexes(due_reminders)
    assert "deadlines_reminder" not in _seq_scans(due_reminders)


def test_the_delivery_hand_out_uses_the_pending_index(skewed):
    from mediation.notifications.models import Delivery
    from mediation.notifications.services.delivery import _claimable

    qs = Delivery.objects.filter(_claimable(NOW)).order_by("next_attempt_at", "id")[:100]
    sql, params = qs.values_list("id", flat=True).query.sql_with_params()

    plan = _plan(sql, params)

    assert Delivery.objects.filter(status="pending").count() == 20
    assert "notifications_delivery" not in _seq_scans(plan), plan
    # The partial indexes of live deliveries only (pending, sending, or both).
    assert _indexes(plan) & {"delivery_pending_idx", "delivery_undelivered_idx"}


@pytest.mark.parametrize("who", ["village", "county"])
def test_case_lists_never_read_the_whole_case_table(skewed, who):
    town, _case = skewed
    user = (
        staff(town.village_committee, Role.MEDIATOR)
        if who == "village"
        else staff(town.county_centre, Role.SUPERVISOR)
    )
    qs = case_list_for(user, scope="agency")[:25]
    sql, params = qs.query.sql_with_params()

    plan = _plan(sql, params)

    assert "cases_case" not in _seq_scans(plan), plan
    assert _indexes(plan) & {
        "case_open_urgency_idx",
        "case_holder_state_idx",
        "cases_case_holder_agency_id_e9987afe",
    }


def test_the_escalation_queue_is_found_through_its_index(skewed):
    town, _case = skewed
    user = staff(town.centre, Role.SUPERVISOR)
    sql, params = escalation_queue_for(user=user).query.sql_with_params()

    plan = _plan(sql, params)

    assert "escalation_queue_idx" in _indexes(plan)
