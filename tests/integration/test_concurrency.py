"""Races on real PostgreSQL with real threads: one winner, one event, one version bump.

Each thread has its own database connection (Django gives every thread its own) and
closes it when done. A `threading.Barrier` releases all threads at once, and every race is
repeated for several rounds on fresh cases, so an unlocked read-modify-write would show.

`transaction=True`: the services must commit for other connections to see their rows and
locks. The flush between transactional tests removes the seeded categories and channels;
tests/conftest.py seeds them again before each transactional test.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection

from mediation.accounts.models import Role, User
from mediation.cases.models import Case, CaseEvent, CaseNumberSequence, Custody, Referral
from mediation.cases.services import case_transition
from mediation.core.clock import SHANGHAI
from mediation.deadlines.models import Clock
from tests.factories.accounts import staff
from tests.factories.agencies import township_tree
from tests.factories.cases import dispute_in_state, register_dispute

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]

THREADS = 8
ROUNDS = 10
JOIN_TIMEOUT = 60


@dataclass
class Outcome:
    index: int
    value: Any = None
    error: BaseException | None = None


def race(n: int, action: Callable[[int], Any], prepare: Callable[[int], Any] = lambda i: i) -> list:
    """Run `action(prepare(i))` in n threads released together; one Outcome per thread.

    `prepare` runs before the barrier (re-reading rows opens the thread's connection), so
    the threads hit the service as close together as the barrier allows.
    """
    barrier = threading.Barrier(n, timeout=JOIN_TIMEOUT)
    outcomes = [Outcome(i) for i in range(n)]

    def worker(i: int) -> None:
        try:
            arg = prepare(i)
            barrier.wait()
            outcomes[i].value = action(arg)
        except BaseException as exc:  # reported to the main thread, asserted there
            outcomes[i].error = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert [t.name for t in threads if t.is_alive()] == []
    return outcomes


def winners(outcomes: list[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if o.error is None]


def loser_errors(outcomes: list[Outcome]) -> list[tuple[str, str]]:
    return [(type(o.error).__name__, getattr(o.error, "code", "")) for o in outcomes if o.error]


def live_rules(case_id: int) -> list[str]:
    return sorted(
        Clock.objects.filter(case_id=case_id, status__in=["running", "paused"]).values_list(
            "rule_code", flat=True
        )
    )


def at(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, 0, tzinfo=SHANGHAI)


def test_the_same_transition_started_by_many_mediators_at_once_succeeds_once(now):
    township = township_tree()
    mediators = [staff(township.committee, Role.MEDIATOR, n=i) for i in range(THREADS)]

    for round_ in range(ROUNDS):
        case = dispute_in_state("accepted", township=township, now=now)
        events_before = CaseEvent.objects.filter(case=case).count()
        clocks_before = list(Clock.objects.filter(case=case).order_by("pk").values())
        when = at(12, 9)

        outcomes = race(
            THREADS,
            lambda user, case_id=case.pk, when=when: (
                case_transition(
                    case_id=case_id, transition="start_mediation", actor=user, now=when
                ).version
            ),
            prepare=lambda i: User.objects.get(pk=mediators[i].pk),
        )

        case.refresh_from_db()
        assert (round_, [o.value for o in winners(outcomes)]) == (round_, [case.version])
        assert (round_, loser_errors(outcomes)) == (
            round_,
            [("Conflict", "transition_not_allowed")] * (THREADS - 1),
        )
        assert (case.state, case.version) == ("mediating", 5)
        assert CaseEvent.objects.filter(case=case).count() == events_before + 1
        assert list(
            CaseEvent.objects.filter(case=case, version=5).values_list("transition", "at")
        ) == [("start_mediation", when)]
        # start_mediation keeps the mediation clock as it was: one live clock, untouched.
        assert list(Clock.objects.filter(case=case).order_by("pk").values()) == clocks_before
        assert live_rules(case.pk) == ["dispute.mediate"]


def test_accept_and_decline_racing_on_one_referral_have_exactly_one_winner(now):
    township = township_tree()
    receivers = [staff(township.committee, Role.MEDIATOR, n=i) for i in range(THREADS)]
    # Even threads accept, odd threads decline.
    moves = [
        ("accept", {}) if i % 2 == 0 else ("decline", {"reason": f"第{i}号调解员退回"})
        for i in range(THREADS)
    ]

    for round_ in range(ROUNDS):
        case = dispute_in_state("assigned", township=township, now=now)
        when = at(12, 9)

        def act(arg: tuple[User, str, dict], case_id: int = case.pk, when=when) -> str:
            user, transition, data = arg
            case_transition(case_id=case_id, transition=transition, actor=user, now=when, data=data)
            return transition

        outcomes = race(
            THREADS,
            act,
            prepare=lambda i: (User.objects.get(pk=receivers[i].pk), *moves[i]),
        )

        case.refresh_from_db()
        [winner] = winners(outcomes)
        assert (round_, loser_errors(outcomes)) == (
            round_,
            [("Conflict", "transition_not_allowed")] * (THREADS - 1),
        )
        assert case.version == 4
        assert list(
            CaseEvent.objects.filter(case=case)
            .order_by("version")
            .values_list("version", "transition", "actor")
        )[3:] == [(4, winner.value, receivers[winner.index].pk)]
        referral = Referral.objects.get(case=case)
        open_custody = list(
            Custody.objects.filter(case=case, ended_at__isnull=True).values_list(
                "agency", flat=True
            )
        )
        if winner.value == "accept":
            assert (case.state, case.holder_agency_id, referral.status) == (
                "accepted",
                township.committee.pk,
                "accepted",
            )
            assert open_custody == [township.committee.pk]
            assert live_rules(case.pk) == ["dispute.mediate"]
        else:
            assert (case.state, case.holder_agency_id, referral.status) == (
                "triaged",
                township.centre.pk,
                "returned",
            )
            assert referral.return_reason == f"第{winner.index}号调解员退回"
            assert open_custody == [township.centre.pk]
            assert live_rules(case.pk) == []
        assert referral.responded_by_id == receivers[winner.index].pk
        assert Clock.objects.filter(case=case, rule_code="dispute.assign_ack").count() == 1
        assert Clock.objects.get(case=case, rule_code="dispute.assign_ack").status == "stopped"


def test_registrations_racing_in_one_agency_get_distinct_sequential_numbers(now):
    rounds = 5
    for round_ in range(rounds):
        township = township_tree()
        registrars = [staff(township.centre, Role.SUPERVISOR, n=i) for i in range(THREADS)]
        prefix = township.centre.case_number_prefix

        outcomes = race(
            THREADS,
            lambda user, township=township: register_dispute(township, now=now, actor=user).number,
            prepare=lambda i, registrars=registrars: User.objects.get(pk=registrars[i].pk),
        )

        assert (round_, loser_errors(outcomes)) == (round_, [])
        assert sorted(o.value for o in outcomes) == [
            f"(2026){prefix}人调字第{n:04d}号" for n in range(1, THREADS + 1)
        ]
        cases = Case.objects.filter(registering_agency=township.centre)
        assert sorted(cases.values_list("sequence", flat=True)) == list(range(1, THREADS + 1))
        assert CaseNumberSequence.objects.get(agency=township.centre).last_value == THREADS
        assert CaseEvent.objects.filter(case__in=cases).count() == THREADS
        assert Clock.objects.filter(case__in=cases, rule_code="dispute.triage").count() == THREADS


def test_a_racing_loser_is_a_conflict_not_a_partial_write(now):
    """Different transitions from one state (suspend vs extend vs agreement): one wins."""
    township = township_tree()
    mediators = [staff(township.committee, Role.MEDIATOR, n=i) for i in range(THREADS)]
    moves = [
        ("suspend", {"reason": "鉴定"}),
        ("extend", {"reason": "同意", "extra_days": 10, "parties_consented": True}),
        (
            "record_agreement",
            {"form": "oral", "text": "李四于本月底前赔偿张三医疗费三千元，双方不再追究。"},
        ),
        ("close_failed", {"reason": "不成", "routes_explained": True}),
    ]

    for round_ in range(ROUNDS):
        case = dispute_in_state("mediating", township=township, now=now)
        rows_before = {
            "Extension": case.extensions.count(),
            "Agreement": case.agreements.count(),
        }

        def act(arg: tuple[User, str, dict], case_id: int = case.pk) -> str:
            user, transition, data = arg
            case_transition(
                case_id=case_id, transition=transition, actor=user, now=at(13, 9), data=data
            )
            return transition

        outcomes = race(
            THREADS,
            act,
            prepare=lambda i: (User.objects.get(pk=mediators[i].pk), *moves[i % len(moves)]),
        )

        case.refresh_from_db()
        [winner] = winners(outcomes)
        assert (round_, loser_errors(outcomes)) == (
            round_,
            [("Conflict", "transition_not_allowed")] * (THREADS - 1),
        )
        assert case.version == 6
        assert CaseEvent.objects.filter(case=case).count() == 6
        expected_rows = dict(rows_before)
        if winner.value == "extend":
            expected_rows["Extension"] += 1
        if winner.value == "record_agreement":
            expected_rows["Agreement"] += 1
        assert {
            "Extension": case.extensions.count(),
            "Agreement": case.agreements.count(),
        } == expected_rows
        live = live_rules(case.pk)
        assert len(live) == len(set(live))
