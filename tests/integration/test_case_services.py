"""Case services on real PostgreSQL: registration, transitions, clocks, referrals, audit trail.

Every test about a transition calls the service (`case_transition`, `dispute_register`,
`petition_receive`, `petition_refer_to_mediation`, `case_pause_clock`...). The builders in
`tests.factories.cases` only set the stage, and they too go through the services.

Due dates in the clock tables are computed by hand from DOMAIN.md §7 and the 2026 holiday
table of §2.3 (清明 04-04→06, 劳动 05-01→05, 调休 workday Sat 05-09, 端午 06-19→21).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django import forms
from django.apps import apps
from django.core.validators import MaxValueValidator
from django.db import DatabaseError, IntegrityError, connection, transaction

from mediation.accounts.models import Role, User
from mediation.agencies.models import Agency, ReviewingOrgan
from mediation.cases.models import (
    Case,
    CaseEvent,
    CaseNumberSequence,
    CaseParty,
    Category,
    Custody,
    Extension,
    Referral,
)
from mediation.cases.selectors import cases_visible_to
from mediation.cases.services import (
    PartyInput,
    case_pause_clock,
    case_resume_clock,
    case_transition,
    petition_refer_to_mediation,
)
from mediation.core.clock import SHANGHAI
from mediation.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from mediation.deadlines.models import Clock, ClockPause
from mediation.parties.models import Party
from tests.factories.accounts import UserFactory, head_of, staff
from tests.factories.agencies import AgencyFactory, Township, township_tree
from tests.factories.cases import (
    DISPUTE_PATHS,
    PETITION_PATHS,
    actor_for,
    advance,
    dispute_in_state,
    id_number,
    petition_in_state,
    receive_petition,
    register_dispute,
    step_data,
)

pytestmark = pytest.mark.django_db

# Django's own messages, in the active language (zh-hans), whichever catalogue provides them.
REQUIRED = str(forms.Field.default_error_messages["required"])
AGREEMENT = "李四于本月底前赔偿张三医疗费三千元，双方不再追究。"
AT_MOST_90 = str(MaxValueValidator.message) % {"limit_value": 90}


# Helpers -----------------------------------------------------------------------------------


def at(month: int, day: int, hour: int = 10) -> dt.datetime:
    """An instant of 2026 in Asia/Shanghai (the `now` fixture is 2026-03-11 10:00)."""
    return dt.datetime(2026, month, day, hour, 0, tzinfo=SHANGHAI)


def row_counts() -> dict[str, int]:
    """Rows in every table of the project's apps (new tables are counted as they appear)."""
    tables = set(connection.introspection.table_names())
    return {
        model._meta.label: model._base_manager.count()
        for model in apps.get_models()
        if model.__module__.startswith("mediation.") and model._meta.db_table in tables
    }


def snapshot(case_id: int) -> dict[str, Any]:
    """Everything a refused action must leave untouched."""
    return {
        "case": Case.objects.filter(pk=case_id).values().get(),
        "clocks": list(Clock.objects.filter(case_id=case_id).order_by("pk").values()),
        "pauses": list(ClockPause.objects.filter(clock__case_id=case_id).order_by("pk").values()),
        "referrals": list(Referral.objects.filter(case_id=case_id).order_by("pk").values()),
        "custody": list(Custody.objects.filter(case_id=case_id).order_by("pk").values()),
        "rows": row_counts(),
    }


def clock_table(case: Case) -> dict[str, tuple]:
    """Live clocks: rule → (status, start, nominal due, due, paused days, extra days)."""
    return {
        c.rule_code: (
            c.status,
            c.start_date.isoformat(),
            c.nominal_due.isoformat(),
            c.due.isoformat(),
            c.paused_days,
            c.extra_days,
        )
        for c in Clock.objects.filter(case=case, status__in=["running", "paused"]).order_by("pk")
    }


def stopped_at(case: Case, when: dt.datetime) -> list[str]:
    return sorted(
        Clock.objects.filter(case=case, status="stopped", stopped_at=when).values_list(
            "rule_code", flat=True
        )
    )


def custody_rows(case: Case) -> list[tuple[int, dt.datetime, dt.datetime | None]]:
    return list(
        Custody.objects.filter(case=case)
        .order_by("started_at", "pk")
        .values_list("agency_id", "started_at", "ended_at")
    )


def reload(case: Case) -> Case:
    return Case.objects.get(pk=case.pk).as_proxy()


# Builders ----------------------------------------------------------------------------------


@pytest.mark.parametrize("state", sorted(DISPUTE_PATHS))
def test_dispute_builder_reaches_every_state_through_the_services(state, now):
    case = dispute_in_state(state, township=township_tree(), now=now)

    assert case.state == state
    assert case.version == len(DISPUTE_PATHS[state]) + 1
    assert CaseEvent.objects.filter(case=case).count() == case.version


@pytest.mark.parametrize("state", sorted(PETITION_PATHS))
def test_petition_builder_reaches_every_state_through_the_services(state, now):
    case = petition_in_state(state, township=township_tree(), now=now)

    assert case.state == state
    assert case.version == len(PETITION_PATHS[state]) + 1
    assert CaseEvent.objects.filter(case=case).count() == case.version


# Registration: case numbers ----------------------------------------------------------------


def test_case_numbers_read_year_prefix_kind_word_and_sequence(now):
    township = township_tree(name="将官池")
    mediator = staff(township.committee, Role.MEDIATOR)

    dispute = register_dispute(township, now=now, actor=mediator)
    petition = receive_petition(township, now=now, actor=mediator)

    assert dispute.number == "(2026)将官池人调字第0001号"
    assert petition.number == "(2026)将官池信字第0001号"
    assert (dispute.year, dispute.sequence, dispute.registering_agency_id) == (
        2026,
        1,
        township.committee.pk,
    )


def test_case_numbers_are_sequential_per_agency_year_and_kind(now):
    township = township_tree()
    committee_mediator = staff(township.committee, Role.MEDIATOR)
    centre_supervisor = staff(township.centre, Role.SUPERVISOR)
    prefix = township.committee.case_number_prefix

    disputes = [register_dispute(township, now=now, actor=committee_mediator) for _ in range(3)]
    petition = receive_petition(township, now=now, actor=committee_mediator)
    elsewhere = register_dispute(township, now=now, actor=centre_supervisor)

    assert [d.number for d in disputes] == [
        f"(2026){prefix}人调字第0001号",
        f"(2026){prefix}人调字第0002号",
        f"(2026){prefix}人调字第0003号",
    ]
    assert petition.number == f"(2026){prefix}信字第0001号"
    assert elsewhere.number == f"(2026){township.centre.case_number_prefix}人调字第0001号"
    assert sorted(
        CaseNumberSequence.objects.filter(agency=township.committee).values_list(
            "kind", "year", "last_value"
        )
    ) == [("dispute", 2026, 3), ("petition", 2026, 1)]


def test_a_new_year_restarts_numbering_at_0001_by_the_shanghai_calendar():
    township = township_tree()
    prefix = township.centre.case_number_prefix
    new_years_eve = dt.datetime(2025, 12, 31, 23, 30, tzinfo=SHANGHAI)
    # 00:30 in Shanghai is still 31 December in UTC: the year is the local one.
    just_after_midnight = dt.datetime(2026, 1, 1, 0, 30, tzinfo=SHANGHAI)

    old = [register_dispute(township, now=new_years_eve) for _ in range(2)]
    new = register_dispute(township, now=just_after_midnight)

    assert [c.number for c in old] == [
        f"(2025){prefix}人调字第0001号",
        f"(2025){prefix}人调字第0002号",
    ]
    assert new.number == f"(2026){prefix}人调字第0001号"
    assert new.year == 2026
    # Triage: 1 working day after 01-01, past the 元旦 block (01-02, Sat 01-03) to the
    # 调休 working Sunday 01-04.
    assert clock_table(new) == {
        "dispute.triage": ("running", "2026-01-01", "2026-01-04", "2026-01-04", 0, 0)
    }


# Registration: event, parties, custody and clock --------------------------------------------


def test_dispute_registration_writes_one_event_and_starts_the_triage_clock(now):
    township = township_tree()
    supervisor = staff(township.centre, Role.SUPERVISOR)

    case = register_dispute(township, now=now, actor=supervisor)

    event = CaseEvent.objects.get(case=case)
    party_ids = list(
        CaseParty.objects.filter(case=case).order_by("pk").values_list("party_id", flat=True)
    )
    assert (event.version, event.transition, event.from_state, event.to_state) == (
        1,
        "register",
        "",
        "registered",
    )
    assert (event.actor_id, event.actor_agency_id, event.at) == (
        supervisor.pk,
        township.centre.pk,
        now,
    )
    assert event.data == {
        "parties": party_ids,
        "clocks": {"started": ["dispute.triage"]},
        "number": case.number,
    }
    # 1 working day after Wednesday 2026-03-11.
    assert clock_table(case) == {
        "dispute.triage": ("running", "2026-03-11", "2026-03-12", "2026-03-12", 0, 0)
    }
    assert (case.state, case.version, case.holder_agency_id, case.assignee_id) == (
        "registered",
        1,
        township.centre.pk,
        supervisor.pk,
    )
    assert custody_rows(case) == [(township.centre.pk, now, None)]
    assert sorted(CaseParty.objects.filter(case=case).values_list("role", flat=True)) == [
        "applicant",
        "respondent",
    ]


def test_registration_stores_parties_through_the_party_service(now):
    township = township_tree()

    case = register_dispute(township, now=now)

    parties = Party.objects.filter(cases__case=case).order_by("cases__role")
    assert [(p.name, p.id_number_masked, p.birth_date) for p in parties] == [
        ("张三", "110***********0016", dt.date(1980, 1, 1)),
        ("李四", "110***********0024", dt.date(1980, 1, 1)),
    ]
    assert all(id_number(1) not in p.id_number_encrypted for p in parties)


def test_petition_registration_starts_no_clock_while_received(now):
    township = township_tree()
    officer = staff(township.petition_office, Role.PETITION_OFFICER)

    case = receive_petition(township, now=now, actor=officer)

    event = CaseEvent.objects.get(case=case)
    assert (event.version, event.transition, event.from_state, event.to_state) == (
        1,
        "register",
        "",
        "received",
    )
    assert (event.actor_id, event.actor_agency_id) == (officer.pk, township.petition_office.pk)
    assert event.data["clocks"] == {}
    assert Clock.objects.filter(case=case).count() == 0
    assert (case.state, case.version) == ("received", 1)


def test_registering_a_received_petition_starts_the_routing_clock_from_receipt(now):
    township = township_tree()
    case = receive_petition(township, now=now, received_on=dt.date(2026, 3, 9))

    case = advance(case, "register", township=township, now=now)

    # 信访部门 (petition office): route within 15 days of 收到 (Art 22), not of registration.
    assert clock_table(case) == {
        "petition.route": ("running", "2026-03-09", "2026-03-24", "2026-03-24", 0, 0)
    }


def test_registration_refused_to_a_role_without_intake_writes_nothing(now):
    township = township_tree()
    admin = UserFactory(role=Role.ADMINISTRATOR, agency=township.centre)
    before = row_counts()

    with pytest.raises(PermissionDenied):
        register_dispute(township, now=now, actor=admin)

    assert row_counts() == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"title": "  "}, "请填写案件标题。"),
        ({"received_on": dt.date(2026, 3, 12)}, "收到日期不能晚于今天。"),
        ({"parties": []}, "请至少填写一名当事人。"),
        ({"mediation_track": "astrology"}, "调解类型无效。"),
        ({"risk_level": "extreme"}, "风险等级无效。"),
        (
            {
                "parties": [
                    PartyInput(name="张三", role="applicant", id_number="110105194912310021")
                ]
            },
            "身份证号校验码错误，请核对每一位",
        ),
        ({"parties": [PartyInput(name="张三", role="judge")]}, "当事人身份无效：judge"),
    ],
    ids=["blank-title", "future-receipt", "no-party", "track", "risk", "id-checksum", "party-role"],
)
def test_invalid_registration_writes_nothing_and_consumes_no_number(now, change, message):
    township = township_tree()
    supervisor = staff(township.centre, Role.SUPERVISOR)
    before = row_counts()

    with pytest.raises(InvalidInput) as excinfo:
        register_dispute(township, now=now, actor=supervisor, **change)

    assert excinfo.value.message == message
    assert row_counts() == before
    assert register_dispute(township, now=now, actor=supervisor).sequence == 1


# Transitions: one event each, contiguous versions ------------------------------------------


def test_each_transition_writes_one_event_with_actor_agency_states_and_data(now):
    township = township_tree()
    supervisor = staff(township.centre, Role.SUPERVISOR)
    case = register_dispute(township, now=now, actor=supervisor)

    case_transition(
        case_id=case.pk,
        transition="triage",
        actor=supervisor,
        now=at(3, 11, 14),
        data={"risk_level": "high", "note": "有激化风险"},
        expected_version=1,
    )
    case = case_transition(
        case_id=case.pk,
        transition="assign",
        actor=supervisor,
        now=at(3, 11, 15),
        data={"to_agency": township.committee.pk},
        expected_version=2,
    )

    referral = Referral.objects.get(case=case)
    events = list(
        CaseEvent.objects.filter(case=case).values_list(
            "version",
            "transition",
            "from_state",
            "to_state",
            "actor_id",
            "actor_agency_id",
            "at",
            "note",
        )
    )
    who = (supervisor.pk, township.centre.pk)
    assert events == [
        (1, "register", "", "registered", *who, now, ""),
        (2, "triage", "registered", "triaged", *who, at(3, 11, 14), "有激化风险"),
        (3, "assign", "triaged", "assigned", *who, at(3, 11, 15), ""),
    ]
    data = list(CaseEvent.objects.filter(case=case).values_list("data", flat=True))
    assert data[1:] == [
        {"risk_level": "high", "clocks": {"stopped": ["dispute.triage"]}},
        {
            "to_agency": township.committee.pk,
            "referral": referral.pk,
            "referral_kind": "assign",
            "clocks": {"started": ["dispute.assign_ack"]},
        },
    ]
    assert (case.version, case.risk_level, case.state_entered_at) == (3, "high", at(3, 11, 15))


def test_full_dispute_path_keeps_events_and_the_clock_table_exact(now):
    township = township_tree()
    centre = staff(township.centre, Role.SUPERVISOR)
    mediator = staff(township.committee, Role.MEDIATOR)
    clerk = staff(township.court, Role.COURT_CLERK)
    case = register_dispute(township, now=now, actor=centre)
    R, P = "running", "paused"
    mediate = "dispute.mediate"
    # (when, transition, actor, data, state, live clocks afterwards, clocks stopped by the step)
    path: list[tuple[dt.datetime, str, User, dict, str, dict, list[str]]] = [
        (at(3, 12, 9), "triage", centre, {"risk_level": "medium"}, "triaged", {},
         ["dispute.triage"]),
        # 交办: 3 working days after Thu 03-12 are Fri 13, Mon 16, Tue 17.
        (at(3, 12), "assign", centre, {"to_agency": township.committee.pk}, "assigned",
         {"dispute.assign_ack": (R, "2026-03-12", "2026-03-17", "2026-03-17", 0, 0)}, []),
        # 受理 on Fri 03-13: 30 days → Sun 04-12, rolled to Mon 04-13.
        (at(3, 13), "accept", mediator, {}, "accepted",
         {mediate: (R, "2026-03-13", "2026-04-12", "2026-04-13", 0, 0)},
         ["dispute.assign_ack"]),
        (at(3, 16), "start_mediation", mediator, {}, "mediating",
         {mediate: (R, "2026-03-13", "2026-04-12", "2026-04-13", 0, 0)}, []),
        # 中止 from Fri 03-20 (counted): while open the pause runs through today, 1 day.
        (at(3, 20), "suspend", mediator, {"reason": "伤情鉴定"}, "suspended",
         {mediate: (P, "2026-03-13", "2026-04-13", "2026-04-13", 1, 0)}, []),
        # 恢复 on Mon 03-30: paused 03-20..03-29 = 10 days → Wed 04-22.
        (at(3, 30), "resume", mediator, {}, "mediating",
         {mediate: (R, "2026-03-13", "2026-04-22", "2026-04-22", 10, 0)}, []),
        # 延期 15 days with both parties' consent → Thu 05-07.
        (at(4, 1), "extend", mediator,
         {"reason": "双方同意", "extra_days": 15, "parties_consented": True}, "extended",
         {mediate: (R, "2026-03-13", "2026-05-07", "2026-05-07", 10, 15)}, []),
        (at(4, 2), "continue_mediation", mediator, {}, "mediating",
         {mediate: (R, "2026-03-13", "2026-05-07", "2026-05-07", 10, 15)}, []),
        # Agreement effective Fri 04-10: 司法确认 window 30 days → Sun 05-10 → Mon 05-11
        # (Sat 05-09 is a 调休 workday, Sun 05-10 is not).
        (at(4, 10), "record_agreement", mediator,
         {"form": "written", "text": AGREEMENT, "performance_due_on": "2026-04-30"},
         "agreement_reached",
         {"confirmation.apply": (R, "2026-04-10", "2026-05-10", "2026-05-11", 0, 0)}, [mediate]),
        # Applied Mon 04-13: outer limit 30 days → Wed 05-13; target 15 days → Tue 04-28.
        (at(4, 13), "apply_confirmation", mediator, {"court": township.court.pk},
         "confirmation_pending",
         {
             "confirmation.decide": (R, "2026-04-13", "2026-05-13", "2026-05-13", 0, 0),
             "confirmation.decide_target": (R, "2026-04-13", "2026-04-28", "2026-04-28", 0, 0),
         },
         ["confirmation.apply"]),
        # 回访 7 days after the agreed performance date Thu 04-30 → Thu 05-07.
        (at(4, 20), "confirm", clerk, {"ruling_number": "(2026)冀0123民特1号"},
         "performance_monitoring",
         {"dispute.followup": (R, "2026-04-30", "2026-05-07", "2026-05-07", 0, 0)},
         ["confirmation.decide", "confirmation.decide_target"]),
        (at(5, 8), "close_resolved", mediator, {"performed": True, "satisfaction": "satisfied"},
         "closed_resolved", {}, ["dispute.followup"]),
    ]  # fmt: skip

    for i, (when, name, actor, data, state, live, stopped) in enumerate(path):
        from_state = case.state
        case = case_transition(case_id=case.pk, transition=name, actor=actor, now=when, data=data)

        assert (name, case.state, case.version) == (name, state, i + 2)
        assert (name, clock_table(case)) == (name, live)
        assert (name, stopped_at(case, when)) == (name, stopped)
        event = CaseEvent.objects.get(case=case, version=case.version)
        assert (event.transition, event.from_state, event.to_state, event.at) == (
            name,
            from_state,
            state,
            when,
        )
        assert (event.actor_id, event.actor_agency_id) == (actor.pk, actor.agency_id)

    assert list(CaseEvent.objects.filter(case=case).values_list("version", flat=True)) == list(
        range(1, len(path) + 2)
    )
    assert reload(case).closed_at == at(5, 8)
    assert custody_rows(case) == [
        (township.centre.pk, now, at(3, 13)),
        (township.committee.pk, at(3, 13), None),
    ]


def test_full_petition_path_keeps_events_and_the_clock_table_exact(now):
    township = township_tree()
    office = staff(township.petition_office, Role.PETITION_OFFICER)
    handler = staff(township.judicial_office, Role.PETITION_OFFICER)
    head = head_of(township.judicial_office)
    reviewer = staff(township.county_petition_bureau, Role.PETITION_OFFICER)
    rereviewer = staff(township.county_centre, Role.SUPERVISOR)
    # The county bureau reviews the judicial office's decisions besides its parent (configured).
    ReviewingOrgan.objects.create(
        agency=township.judicial_office, reviewer=township.county_petition_bureau
    )
    case = receive_petition(township, now=now, actor=office)
    R, P = "running", "paused"
    rereview = "petition.rereview"

    def opinion(served: str) -> dict:
        return {"result": "explain", "text": "答复如下", "served_on": served}

    # (when, action, actor, data, state, live clocks afterwards, clocks stopped by the step)
    path: list[tuple[dt.datetime, str, User, dict, str, dict, list[str]]] = [
        # Registered by the 信访办 (a 信访部门): route within 15 days of receipt → Thu 03-26.
        (at(3, 11, 11), "register", office, {"petition_type": "complaint"}, "registered",
         {"petition.route": (R, "2026-03-11", "2026-03-26", "2026-03-26", 0, 0)}, []),
        # 转送 on Thu 03-12: receiver notifies in 15 days (Fri 03-27), objects within
        # 5 working days (13, 16, 17, 18, 19 → Thu 03-19).
        (at(3, 12), "forward", office,
         {"to_agency": township.judicial_office.pk, "mode": "forward"}, "forwarded",
         {
             "petition.notify": (R, "2026-03-12", "2026-03-27", "2026-03-27", 0, 0),
             "petition.objection": (R, "2026-03-12", "2026-03-19", "2026-03-19", 0, 0),
         },
         ["petition.route"]),
        # 受理 on Mon 03-16: 60 days → Fri 05-15.
        (at(3, 16), "accept_forwarded", handler, {}, "accepted",
         {"petition.handle": (R, "2026-03-16", "2026-05-15", "2026-05-15", 0, 0)},
         ["petition.notify", "petition.objection"]),
        (at(3, 17), "start_handling", handler, {}, "handling",
         {"petition.handle": (R, "2026-03-16", "2026-05-15", "2026-05-15", 0, 0)}, []),
        # 延期: ONE period of 90 days from the same 受理 date → Sun 06-14 → Mon 06-15.
        (at(5, 6), "extend", handler,
         {"reason": "案情复杂", "approver": head.pk, "petitioner_notified_on": "2026-05-06"},
         "extended",
         {"petition.handle_extended": (R, "2026-03-16", "2026-06-14", "2026-06-15", 0, 0)},
         ["petition.handle"]),
        # Opinion served Mon 06-01: 复查 window 30 days → Wed 07-01.
        (at(6, 1), "issue_opinion", handler, opinion("2026-06-01"), "opinion_issued",
         {"petition.review_request": (R, "2026-06-01", "2026-07-01", "2026-07-01", 0, 0)},
         ["petition.handle_extended"]),
        # 复查 request received Mon 06-15 by the county bureau: 30 days → Wed 07-15.
        (at(6, 15), "request_review", reviewer, {}, "review_requested",
         {"petition.review": (R, "2026-06-15", "2026-07-15", "2026-07-15", 0, 0)},
         ["petition.review_request"]),
        (at(6, 16), "start_review", reviewer, {}, "under_review",
         {"petition.review": (R, "2026-06-15", "2026-07-15", "2026-07-15", 0, 0)}, []),
        # 复查意见 served Fri 07-10: 复核 window 30 days → Sun 08-09 → Mon 08-10.
        (at(7, 10), "issue_review_opinion", reviewer, opinion("2026-07-10"),
         "review_opinion_issued",
         {"petition.rereview_request": (R, "2026-07-10", "2026-08-09", "2026-08-10", 0, 0)},
         ["petition.review"]),
        # 复核 request received Mon 07-20: 30 days → Wed 08-19.
        (at(7, 20), "request_rereview", rereviewer, {}, "rereview_requested",
         {rereview: (R, "2026-07-20", "2026-08-19", "2026-08-19", 0, 0)},
         ["petition.rereview_request"]),
        (at(7, 21), "start_rereview", rereviewer, {}, "under_rereview",
         {rereview: (R, "2026-07-20", "2026-08-19", "2026-08-19", 0, 0)}, []),
        # 听证 from Mon 07-27 (Art 36 ¶2): while open it counts through today, 1 day.
        (at(7, 27), "pause_clock", rereviewer, {"reason": "听证"}, "under_rereview",
         {rereview: (P, "2026-07-20", "2026-08-20", "2026-08-20", 1, 0)}, []),
        # Resumed Mon 08-03: 07-27..08-02 = 7 days → Wed 08-26.
        (at(8, 3), "resume_clock", rereviewer, {}, "under_rereview",
         {rereview: (R, "2026-07-20", "2026-08-26", "2026-08-26", 7, 0)}, []),
        (at(8, 20), "issue_rereview_opinion", rereviewer, opinion("2026-08-20"), "final", {},
         [rereview]),
    ]  # fmt: skip

    for i, (when, name, actor, data, state, live, stopped) in enumerate(path):
        from_state = case.state
        if name == "pause_clock":
            case_pause_clock(
                case_id=case.pk, actor=actor, now=when, rule_code=rereview, reason=data["reason"]
            )
        elif name == "resume_clock":
            case_resume_clock(case_id=case.pk, actor=actor, now=when, rule_code=rereview)
        else:
            case_transition(case_id=case.pk, transition=name, actor=actor, now=when, data=data)
        case = reload(case)

        assert (name, case.state, case.version) == (name, state, i + 2)
        assert (name, clock_table(case)) == (name, live)
        assert (name, stopped_at(case, when)) == (name, stopped)
        event = CaseEvent.objects.get(case=case, version=case.version)
        assert (event.transition, event.from_state, event.to_state, event.at) == (
            name,
            from_state,
            state,
            when,
        )
        assert (event.actor_id, event.actor_agency_id) == (actor.pk, actor.agency_id)

    assert list(CaseEvent.objects.filter(case=case).values_list("version", flat=True)) == list(
        range(1, len(path) + 2)
    )
    assert case.closed_at == at(8, 20)
    assert list(
        ClockPause.objects.filter(clock__case=case).values_list("start_date", "end_date", "reason")
    ) == [(dt.date(2026, 7, 27), dt.date(2026, 8, 2), "听证")]
    assert custody_rows(case) == [
        (township.petition_office.pk, now, at(3, 16)),
        (township.judicial_office.pk, at(3, 16), at(6, 15)),
        (township.county_petition_bureau.pk, at(6, 15), at(7, 20)),
        (township.county_centre.pk, at(7, 20), None),
    ]
    assert list(Extension.objects.filter(case=case).values_list("extra_days", "approved_by")) == [
        (30, head.pk)
    ]


def test_resuming_a_clock_before_its_pause_began_is_refused(now):
    # A resume date before the pause began would store a pause that ends before it starts.
    township = township_tree()
    case = petition_in_state("under_rereview", township=township, now=at(7, 20))
    supervisor = staff(township.county_centre, Role.SUPERVISOR)
    case_pause_clock(
        case_id=case.pk, actor=supervisor, now=at(7, 27), rule_code="petition.rereview",
        reason="听证",
    )  # fmt: skip
    before = snapshot(case.pk)

    with pytest.raises(InvalidInput):
        case_resume_clock(
            case_id=case.pk,
            actor=supervisor,
            now=at(8, 3),
            rule_code="petition.rereview",
            on=dt.date(2026, 7, 20),
        )

    assert snapshot(case.pk) == before


# Refused actions change nothing -------------------------------------------------------------

Who = Callable[[Township], User]

DENIED: dict[str, tuple[str, str, str, Who]] = {
    # id: (kind, state, transition, who tries)
    "mediator-triages": (
        "dispute", "registered", "triage", lambda t: staff(t.committee, Role.MEDIATOR)
    ),
    "petition-officer-triages": (
        "dispute", "registered", "triage", lambda t: staff(t.centre, Role.PETITION_OFFICER)
    ),
    "other-township-supervisor-triages": (
        "dispute", "registered", "triage",
        lambda t: staff(township_tree().centre, Role.SUPERVISOR),
    ),
    "village-committee-accepts-referral-to-township": (
        "dispute", "assigned", "accept", lambda t: staff(t.village_committee, Role.MEDIATOR)
    ),
    "village-committee-declines-referral-to-township": (
        "dispute", "assigned", "decline", lambda t: staff(t.village_committee, Role.MEDIATOR)
    ),
    "sender-accepts-its-own-referral": (
        "dispute", "assigned", "accept", lambda t: staff(t.centre, Role.SUPERVISOR)
    ),
    "petition-officer-records-agreement": (
        "dispute", "mediating", "record_agreement",
        lambda t: staff(t.petition_office, Role.PETITION_OFFICER),
    ),
    "other-committee-records-agreement": (
        "dispute", "mediating", "record_agreement",
        lambda t: staff(t.village_committee, Role.MEDIATOR),
    ),
    # A court clerk records the ruling only when the parties applied to that clerk's court.
    "clerk-of-another-court-confirms": (
        "dispute", "confirmation_pending", "confirm",
        lambda t: staff(township_tree().court, Role.COURT_CLERK),
    ),
    "inactive-mediator-starts-mediation": (
        "dispute", "accepted", "start_mediation",
        lambda t: UserFactory(role=Role.MEDIATOR, agency=t.committee, is_active=False),
    ),
    "mediator-forwards-petition": (
        "petition", "registered", "forward", lambda t: staff(t.petition_office, Role.MEDIATOR)
    ),
    "sender-accepts-forwarded-petition": (
        "petition", "forwarded", "accept_forwarded",
        lambda t: staff(t.petition_office, Role.PETITION_OFFICER),
    ),
    "third-agency-objects-to-forwarded-petition": (
        "petition", "forwarded", "raise_objection",
        lambda t: staff(t.police_station, Role.PETITION_OFFICER),
    ),
    "mediator-issues-petition-opinion": (
        "petition", "handling", "issue_opinion", lambda t: staff(t.petition_office, Role.MEDIATOR)
    ),
}  # fmt: skip


@pytest.mark.parametrize("scenario", sorted(DENIED))
def test_refused_transition_changes_nothing(scenario, now):
    kind, state, transition, who = DENIED[scenario]
    township = township_tree()
    builder = dispute_in_state if kind == "dispute" else petition_in_state
    case = builder(state, township=township, now=now)
    actor = who(township)
    data = step_data(case, transition, township, now)
    before = snapshot(case.pk)
    # Who cannot see the case is told it does not exist (as by the pages and the API);
    # who sees it but may not take the step is refused.
    sees = cases_visible_to(actor).filter(pk=case.pk).exists()

    with pytest.raises(PermissionDenied if sees else NotFound):
        case_transition(
            case_id=case.pk, transition=transition, actor=actor, now=at(3, 12), data=data
        )

    assert snapshot(case.pk) == before


def test_refused_clock_pause_changes_nothing(now):
    township = township_tree()
    case = petition_in_state("under_rereview", township=township, now=now)
    outsider = staff(township.petition_office, Role.PETITION_OFFICER)
    before = snapshot(case.pk)

    with pytest.raises(PermissionDenied):
        case_pause_clock(
            case_id=case.pk, actor=outsider, now=at(3, 13), rule_code="petition.rereview",
            reason="听证",
        )  # fmt: skip

    assert snapshot(case.pk) == before


# Invalid input, conflicts -------------------------------------------------------------------

INVALID: dict[str, tuple[str, str, str, Callable[[Township], dict], dict[str, list[str]]]] = {
    # id: (kind, state, transition, data, expected details)
    "triage-without-risk": ("dispute", "registered", "triage", lambda t: {}, {
        "risk_level": [REQUIRED]
    }),
    "assign-to-itself": ("dispute", "triaged", "assign", lambda t: {"to_agency": t.centre.pk},
        lambda t: {"to_agency": [f"「{t.centre.name}」是本案现在的承办机构。"]}),
    # Target agencies are checked by the service (the step form it runs under the lock).
    "assign-to-a-court": ("dispute", "triaged", "assign", lambda t: {"to_agency": t.court.pk},
        lambda t: {"to_agency": [f"「{t.court.name}」不能接收：须为人民调解委员会或司法所。"]}),
    "assign-to-another-township": (
        "dispute", "triaged", "assign",
        lambda t: {"to_agency": township_tree("大营").committee.pk},
        lambda t: {"to_agency": ["「大营镇人民调解委员会」不在可选范围内：须为本辖区内的机构。"]},
    ),
    "assign-to-a-committee-nobody-works-at": (
        "dispute", "triaged", "assign",
        lambda t: {"to_agency": _unstaffed_committee(t).pk},
        lambda t: {"to_agency": [
            "「空岗调委会」没有可以办理下一步的在岗人员（调解员、司法所工作人员、督办人员），"
            "移交后将无人办理。"
        ]},
    ),
    "assign-to-an-unknown-agency": (
        "dispute", "triaged", "assign", lambda t: {"to_agency": 2**40},
        {"to_agency": ["所选机构不存在。"]},
    ),
    "forward-to-a-mediation-committee": (
        "petition", "registered", "forward",
        lambda t: {"to_agency": t.committee.pk, "mode": "forward"},
        lambda t: {"to_agency": [
            f"「{t.committee.name}」不能接收：须为信访部门、综治中心、人民政府、派出所或司法所。"
        ]},
    ),
    "escalate-sideways": (
        "dispute", "mediating", "escalate",
        lambda t: {"to_agency": t.judicial_office.pk, "reason": "调解不成"},
        lambda t: {"to_agency": [
            f"「{t.judicial_office.name}」不在可选范围内：须为本案承办机构的上级机构。"
        ]},
    ),
    "apply-confirmation-without-a-court": (
        "dispute", "agreement_reached", "apply_confirmation", lambda t: {},
        {"court": [REQUIRED]},
    ),
    "extend-without-consent": (
        "dispute", "mediating", "extend", lambda t: {"reason": "拖延", "extra_days": 10},
        {"parties_consented": ["调解延期须经双方当事人同意。"]},
    ),
    "extend-too-long": (
        "dispute", "mediating", "extend",
        lambda t: {"reason": "拖延", "extra_days": 91, "parties_consented": True},
        {"extra_days": [AT_MOST_90]},
    ),
    "agreement-performed-before-it-took-effect": (
        "dispute", "mediating", "record_agreement",
        lambda t: {"form": "oral", "text": AGREEMENT, "effective_on": "2026-03-10",
                   "performance_due_on": "2026-03-09"},
        {"performance_due_on": ["履行期限不能早于协议生效日期。"]},
    ),
    "agreement-effective-tomorrow": (
        "dispute", "mediating", "record_agreement",
        lambda t: {"form": "oral", "text": AGREEMENT, "effective_on": "2026-03-12"},
        {"effective_on": ["日期不能晚于今天。"]},
    ),
    "close-failed-without-telling-routes": (
        "dispute", "mediating", "close_failed", lambda t: {"reason": "不成"},
        {"routes_explained": ["终止调解须告知当事人其他解决途径（人民调解法第二十六条）。"]},
    ),
    "assign-petition-without-report-due": (
        "petition", "registered", "forward",
        lambda t: {"to_agency": t.judicial_office.pk, "mode": "assign"},
        {"report_due": ["交办须设定报告办理结果的期限（信访工作条例第二十二条）。"]},
    ),
    "extension-not-approved-by-the-head": (
        "petition", "handling", "extend",
        lambda t: {"reason": "复杂", "petitioner_notified_on": "2026-03-11",
                   "approver": staff(t.petition_office, Role.PETITION_OFFICER).pk},
        {"approver": ["延期须经本机关负责人批准（信访工作条例第三十四条）。"]},
    ),
    "opinion-served-tomorrow": (
        "petition", "handling", "issue_opinion",
        lambda t: {"result": "support", "text": "支持", "served_on": "2026-03-12"},
        {"served_on": ["日期不能晚于今天。"]},
    ),
}  # fmt: skip


@pytest.mark.parametrize("scenario", sorted(INVALID))
def test_invalid_step_data_raises_field_details_and_writes_nothing(scenario, now):
    kind, state, transition, data, details = INVALID[scenario]
    township = township_tree()
    builder = dispute_in_state if kind == "dispute" else petition_in_state
    case = builder(state, township=township, now=now)
    actor, payload = actor_for(case, transition), data(township)
    before = snapshot(case.pk)

    with pytest.raises(InvalidInput) as excinfo:
        case_transition(case_id=case.pk, transition=transition, actor=actor, now=now, data=payload)

    assert excinfo.value.details == (details(township) if callable(details) else details)
    assert snapshot(case.pk) == before


def _unstaffed_committee(t: Township) -> Agency:
    return AgencyFactory(
        name="空岗调委会",
        kind="mediation_committee",
        level="village",
        parent=t.committee,
    )


@pytest.mark.parametrize(
    ("kind", "state", "transition"),
    [
        ("dispute", "registered", "start_mediation"),
        ("dispute", "mediating", "accept"),
        ("dispute", "closed_resolved", "remediate"),
        ("dispute", "withdrawn", "transfer"),
        ("petition", "received", "accept"),
        ("petition", "final", "request_review"),
        ("petition", "closed", "close"),
    ],
)
def test_transition_not_allowed_from_the_current_state_is_a_conflict(kind, state, transition, now):
    township = township_tree()
    builder = dispute_in_state if kind == "dispute" else petition_in_state
    case = builder(state, township=township, now=now)
    supervisor = staff(township.county_centre, Role.SUPERVISOR)
    before = snapshot(case.pk)

    with pytest.raises(Conflict) as excinfo:
        case_transition(case_id=case.pk, transition=transition, actor=supervisor, now=now)

    assert excinfo.value.code == "transition_not_allowed"
    assert snapshot(case.pk) == before


def test_stale_expected_version_is_a_conflict(now):
    township = township_tree()
    case = dispute_in_state("triaged", township=township, now=now)
    supervisor = staff(township.centre, Role.SUPERVISOR)
    before = snapshot(case.pk)

    with pytest.raises(Conflict) as excinfo:
        case_transition(
            case_id=case.pk,
            transition="assign",
            actor=supervisor,
            now=now,
            data={"to_agency": township.committee.pk},
            expected_version=1,
        )

    assert (excinfo.value.code, case.version) == ("stale", 2)
    assert snapshot(case.pk) == before


@pytest.mark.parametrize(
    ("kind", "transition"),
    [("dispute", "fly"), ("dispute", "issue_opinion"), ("petition", "record_agreement")],
)
def test_unknown_transition_name_is_invalid_input(kind, transition, now):
    township = township_tree()
    case = (register_dispute if kind == "dispute" else receive_petition)(township, now=now)
    supervisor = staff(township.county_centre, Role.SUPERVISOR)
    before = snapshot(case.pk)

    with pytest.raises(InvalidInput) as excinfo:
        case_transition(case_id=case.pk, transition=transition, actor=supervisor, now=now)

    assert excinfo.value.message == f"未知的操作：{transition}"
    assert snapshot(case.pk) == before


# Referrals ---------------------------------------------------------------------------------


def test_assign_opens_a_pending_referral_with_the_receivers_clock(now):
    township = township_tree()
    supervisor = staff(township.centre, Role.SUPERVISOR)
    case = dispute_in_state("triaged", township=township, now=now)

    case = case_transition(
        case_id=case.pk,
        transition="assign",
        actor=supervisor,
        now=now,
        data={"to_agency": township.committee.pk, "note": "请尽快受理"},
    )

    assert list(
        Referral.objects.filter(case=case).values_list(
            "kind", "status", "from_agency", "to_agency", "sent_by", "sent_at", "note"
        )
    ) == [
        (
            "assign",
            "pending",
            township.centre.pk,
            township.committee.pk,
            supervisor.pk,
            now,
            "请尽快受理",
        )
    ]
    # 3 working days after Wed 03-11: Thu 12, Fri 13, Mon 16.
    assert clock_table(case) == {
        "dispute.assign_ack": ("running", "2026-03-11", "2026-03-16", "2026-03-16", 0, 0)
    }
    # Held by the sender until the receiver accepts.
    assert case.holder_agency_id == township.centre.pk


def test_police_referral_runs_the_police_acknowledgement_clock(now):
    """警调对接 (人民调解法 Art 18): the police station registers, routes and refers itself."""
    township = township_tree()
    officer = staff(township.police_station, Role.POLICE_OFFICER)
    case = register_dispute(township, now=now, actor=officer)
    case = case_transition(
        case_id=case.pk,
        transition="triage",
        actor=officer,
        now=now,
        data={"risk_level": "low"},
    )

    case = case_transition(
        case_id=case.pk,
        transition="assign",
        actor=officer,
        now=now,
        data={"to_agency": township.committee.pk, "referral_kind": "police_mediation"},
    )

    assert Referral.objects.get(case=case).kind == "police_mediation"
    # 警调对接: 1 working day after Wed 03-11.
    assert clock_table(case) == {
        "referral.police_ack": ("running", "2026-03-11", "2026-03-12", "2026-03-12", 0, 0)
    }


def test_receiver_accepting_takes_the_case_and_its_custody(now):
    township = township_tree()
    case = dispute_in_state("assigned", township=township, now=now)
    mediator = staff(township.committee, Role.MEDIATOR, n=1)

    case = case_transition(case_id=case.pk, transition="accept", actor=mediator, now=at(3, 12))

    referral = Referral.objects.get(case=case)
    assert (referral.status, referral.responded_by_id, referral.responded_at) == (
        "accepted",
        mediator.pk,
        at(3, 12),
    )
    assert (case.state, case.holder_agency_id, case.assignee_id, case.accepted_on) == (
        "accepted",
        township.committee.pk,
        mediator.pk,
        dt.date(2026, 3, 12),
    )
    assert custody_rows(case) == [
        (township.centre.pk, now, at(3, 12)),
        (township.committee.pk, at(3, 12), None),
    ]
    assert Custody.objects.filter(case=case, ended_at__isnull=True).count() == 1


def test_receiver_declining_returns_the_case_to_triage_with_the_reason(now):
    township = township_tree()
    case = dispute_in_state("assigned", township=township, now=now)
    mediator = staff(township.committee, Role.MEDIATOR)

    case = case_transition(
        case_id=case.pk,
        transition="decline",
        actor=mediator,
        now=at(3, 12),
        data={"reason": "涉及刑事案件，不宜调解"},
    )

    referral = Referral.objects.get(case=case)
    assert (referral.status, referral.return_reason, referral.responded_by_id) == (
        "returned",
        "涉及刑事案件，不宜调解",
        mediator.pk,
    )
    assert (case.state, case.holder_agency_id) == ("triaged", township.centre.pk)
    assert custody_rows(case) == [(township.centre.pk, now, None)]
    assert clock_table(case) == {}
    event = CaseEvent.objects.get(case=case, version=case.version)
    assert (event.transition, event.actor_agency_id, event.data) == (
        "decline",
        township.committee.pk,
        {"reason": "涉及刑事案件，不宜调解", "clocks": {"stopped": ["dispute.assign_ack"]}},
    )


def test_a_declined_case_can_be_assigned_elsewhere(now):
    township = township_tree()
    case = dispute_in_state("assigned", township=township, now=now)
    advance(case, "decline", township=township, now=now)

    case = case_transition(
        case_id=case.pk,
        transition="assign",
        actor=staff(township.centre, Role.SUPERVISOR),
        now=at(3, 12),
        data={"to_agency": township.village_committee.pk},
    )
    case = case_transition(
        case_id=case.pk,
        transition="accept",
        actor=staff(township.village_committee, Role.MEDIATOR),
        now=at(3, 13),
    )

    assert list(
        Referral.objects.filter(case=case).order_by("sent_at").values_list("to_agency", "status")
    ) == [(township.committee.pk, "returned"), (township.village_committee.pk, "accepted")]
    assert case.holder_agency_id == township.village_committee.pk


def test_forwarded_petition_objected_to_goes_back_to_registered(now):
    township = township_tree()
    case = petition_in_state("forwarded", township=township, now=now)
    receiver = staff(township.judicial_office, Role.PETITION_OFFICER)

    case = case_transition(
        case_id=case.pk,
        transition="raise_objection",
        actor=receiver,
        now=at(3, 13),
        data={"reason": "不属于本机关法定职责"},
    )

    referral = Referral.objects.get(case=case)
    assert (referral.kind, referral.status, referral.return_reason) == (
        "forward",
        "returned",
        "不属于本机关法定职责",
    )
    assert (case.state, case.holder_agency_id) == ("registered", township.petition_office.pk)
    assert custody_rows(case) == [(township.petition_office.pk, now, None)]
    # Back with the 信访部门: its routing clock runs again from the receipt date.
    assert clock_table(case) == {
        "petition.route": ("running", "2026-03-11", "2026-03-26", "2026-03-26", 0, 0)
    }
    assert stopped_at(case, at(3, 13)) == ["petition.notify", "petition.objection"]


def test_forwarded_petition_accepted_by_the_receiver_moves_custody(now):
    township = township_tree()
    case = petition_in_state("forwarded", township=township, now=now)
    receiver = staff(township.judicial_office, Role.PETITION_OFFICER)

    case = case_transition(
        case_id=case.pk, transition="accept_forwarded", actor=receiver, now=at(3, 13)
    )

    assert (case.state, case.holder_agency_id, case.accepted_on) == (
        "accepted",
        township.judicial_office.pk,
        dt.date(2026, 3, 13),
    )
    assert Referral.objects.get(case=case).status == "accepted"
    assert custody_rows(case) == [
        (township.petition_office.pk, now, at(3, 13)),
        (township.judicial_office.pk, at(3, 13), None),
    ]


# Escalation and re-mediation restart clocks ------------------------------------------------


def test_escalation_hands_the_case_up_and_restarts_triage_there(now):
    township = township_tree()
    case = dispute_in_state("mediating", township=township, now=now)
    mediator = staff(township.committee, Role.MEDIATOR)

    case = case_transition(
        case_id=case.pk,
        transition="escalate",
        actor=mediator,
        now=at(3, 20),
        data={"reason": "调解不成，矛盾有激化风险"},
    )

    assert (case.state, case.holder_agency_id, case.assignee_id) == (
        "escalated",
        township.centre.pk,
        None,
    )
    assert custody_rows(case) == [
        (township.centre.pk, now, now),
        (township.committee.pk, now, at(3, 20)),
        (township.centre.pk, at(3, 20), None),
    ]
    # The higher rung triages within 1 working day of Fri 03-20: Mon 03-23.
    assert clock_table(case) == {
        "dispute.triage": ("running", "2026-03-20", "2026-03-23", "2026-03-23", 0, 0)
    }
    assert stopped_at(case, at(3, 20)) == ["dispute.mediate"]


def test_remediation_after_non_performance_starts_a_new_mediation_period(now):
    township = township_tree()
    case = dispute_in_state("performance_monitoring", township=township, now=now)

    case = case_transition(
        case_id=case.pk,
        transition="remediate",
        actor=staff(township.committee, Role.MEDIATOR),
        now=at(4, 1),
        data={"reason": "被申请人未按期履行"},
    )

    assert (case.state, case.mediation_period_start, case.extension_days) == (
        "mediating",
        dt.date(2026, 4, 1),
        0,
    )
    # 30 days from Wed 04-01 → Fri 05-01, inside the 劳动节 block 05-01→05-05 → Wed 05-06.
    assert clock_table(case) == {
        "dispute.mediate": ("running", "2026-04-01", "2026-05-01", "2026-05-06", 0, 0)
    }
    assert stopped_at(case, at(4, 1)) == ["dispute.followup"]
    assert Clock.objects.filter(case=case, rule_code="dispute.mediate").count() == 2


# 访调对接 -------------------------------------------------------------------------------------


def test_petition_referred_to_mediation_spawns_a_linked_dispute(now):
    township = township_tree()
    petition = petition_in_state("handling", township=township, now=now)
    officer = staff(township.petition_office, Role.PETITION_OFFICER)
    handle_before = list(Clock.objects.filter(case=petition).values())
    petition_parties = list(CaseParty.objects.filter(case=petition).values_list("party_id", "role"))

    category = Category.objects.get(code="LL")
    dispute = petition_refer_to_mediation(
        petition_id=petition.pk,
        actor=officer,
        now=at(3, 12),
        data={
            "to_agency": township.committee.pk,
            "title": "王五与邻居宅基地界址纠纷",
            "category": category.pk,
            "note": "经双方同意转人民调解",
        },
    )

    dispute = reload(dispute)
    assert (
        dispute.kind,
        dispute.state,
        dispute.spawned_from_id,
        dispute.version,
        dispute.title,
        dispute.category_id,
    ) == ("dispute", "assigned", petition.pk, 1, "王五与邻居宅基地界址纠纷", category.pk)
    assert dispute.number == f"(2026){township.petition_office.case_number_prefix}人调字第0001号"
    assert list(
        Referral.objects.filter(case=dispute).values_list(
            "kind", "status", "from_agency", "to_agency"
        )
    ) == [("petition_mediation", "pending", township.petition_office.pk, township.committee.pk)]
    assert petition_parties == [(petition_parties[0][0], "petitioner")]
    assert list(CaseParty.objects.filter(case=dispute).values_list("party_id", "role")) == [
        (petition_parties[0][0], "applicant")
    ]
    # The receiving committee acknowledges within 3 working days (Fri 13, Mon 16, Tue 17).
    assert clock_table(dispute) == {
        "dispute.assign_ack": ("running", "2026-03-12", "2026-03-17", "2026-03-17", 0, 0)
    }
    dispute_event = CaseEvent.objects.get(case=dispute)
    assert (
        dispute_event.version,
        dispute_event.transition,
        dispute_event.from_state,
        dispute_event.to_state,
        dispute_event.data,
    ) == (
        1,
        "register",
        "",
        "assigned",
        {
            "spawned_from": petition.pk,
            "to_agency": township.committee.pk,
            "referral": Referral.objects.get(case=dispute).pk,
            "category": category.pk,
            "parties": [petition_parties[0][0]],
            "clocks": {"started": ["dispute.assign_ack"]},
        },
    )
    petition = reload(petition)
    petition_event = CaseEvent.objects.get(case=petition, version=petition.version)
    assert (
        petition.version,
        petition.state,
        petition_event.transition,
        petition_event.from_state,
        petition_event.to_state,
        petition_event.note,
        petition_event.data,
    ) == (
        5,
        "handling",
        "refer_to_mediation",
        "handling",
        "handling",
        "经双方同意转人民调解",
        {"dispute": dispute.pk, "to_agency": township.committee.pk},
    )
    # The petition's 60-day handling clock keeps running, untouched.
    assert list(Clock.objects.filter(case=petition).values()) == handle_before


def refer_data(t: Township) -> dict[str, Any]:
    return {
        "to_agency": t.committee.pk,
        "title": "信访人与村委会土地补偿款纠纷",
        "category": Category.objects.get(code="ZDCQ").pk,
    }


def test_the_committee_accepts_a_dispute_referred_from_a_petition(now):
    township = township_tree()
    petition = petition_in_state("handling", township=township, now=now)
    dispute = petition_refer_to_mediation(
        petition_id=petition.pk,
        actor=staff(township.petition_office, Role.PETITION_OFFICER),
        data=refer_data(township),
        now=now,
    )

    dispute = case_transition(
        case_id=dispute.pk,
        transition="accept",
        actor=staff(township.committee, Role.MEDIATOR),
        now=at(3, 12),
    )

    assert (dispute.state, dispute.holder_agency_id) == ("accepted", township.committee.pk)
    assert clock_table(dispute) == {
        "dispute.mediate": ("running", "2026-03-12", "2026-04-11", "2026-04-13", 0, 0)
    }


def test_referral_to_mediation_by_an_outsider_is_refused_and_writes_nothing(now):
    township = township_tree()
    petition = petition_in_state("handling", township=township, now=now)
    outsider = staff(township.judicial_office, Role.PETITION_OFFICER)
    before = snapshot(petition.pk)

    with pytest.raises(PermissionDenied):
        petition_refer_to_mediation(
            petition_id=petition.pk,
            actor=outsider,
            data=refer_data(township),
            now=now,
        )

    assert snapshot(petition.pk) == before


def test_petition_not_in_handling_cannot_be_referred_to_mediation(now):
    township = township_tree()
    petition = petition_in_state("registered", township=township, now=now)
    officer = staff(township.petition_office, Role.PETITION_OFFICER)
    before = snapshot(petition.pk)

    with pytest.raises(Conflict) as excinfo:
        petition_refer_to_mediation(
            petition_id=petition.pk,
            actor=officer,
            data=refer_data(township),
            now=now,
        )

    assert excinfo.value.code == "transition_not_allowed"
    assert snapshot(petition.pk) == before


# The audit trail is append-only ------------------------------------------------------------


@pytest.fixture
def event(now) -> CaseEvent:
    case = register_dispute(township_tree(), now=now)
    return CaseEvent.objects.get(case=case)


def _unchanged(event: CaseEvent) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT note, version FROM cases_caseevent WHERE id = %s", [event.pk])
        return cursor.fetchone() == ("", 1)


def test_queryset_update_of_events_is_refused(event):
    with pytest.raises(PermissionError):
        CaseEvent.objects.filter(pk=event.pk).update(note="x")

    assert _unchanged(event)


def test_queryset_delete_of_events_is_refused(event):
    with pytest.raises(PermissionError):
        CaseEvent.objects.filter(pk=event.pk).delete()

    assert _unchanged(event)


def test_saving_an_existing_event_is_refused(event):
    event.note = "x"

    with pytest.raises(PermissionError):
        event.save()

    assert _unchanged(event)


def test_deleting_an_event_is_refused(event):
    with pytest.raises(PermissionError):
        event.delete()

    assert _unchanged(event)


def test_base_manager_update_is_refused_by_the_database(event):
    # Django's base manager is a plain Manager: the ORM guard is bypassed, the trigger is not.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        CaseEvent._base_manager.filter(pk=event.pk).update(note="x")

    assert _unchanged(event)


def test_a_new_instance_reusing_an_events_id_cannot_overwrite_it(event):
    forged = CaseEvent(
        pk=event.pk,
        case_id=event.case_id,
        version=1,
        at=event.at,
        transition="register",
        to_state="closed_resolved",
        note="x",
    )

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        forged.save()

    assert _unchanged(event)


def test_raw_sql_update_is_refused_by_the_database(event):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE cases_caseevent SET note = 'x'")

    assert _unchanged(event)


def test_raw_sql_delete_is_refused_by_the_database(event):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM cases_caseevent")

    assert _unchanged(event)
    assert CaseEvent.objects.filter(pk=event.pk).exists()


def test_two_agencies_cannot_share_a_case_number_prefix(now):
    # The prefix names the organ in a case number, and case numbers are unique system-wide.
    township = township_tree()

    with pytest.raises(IntegrityError), transaction.atomic():
        Agency.objects.create(
            code=f"{township.committee.code}-twin",
            name="同名前缀调委会",
            kind=township.committee.kind,
            level=township.committee.level,
            parent=township.centre,
            case_number_prefix=township.committee.case_number_prefix,
        )


def test_a_clerk_of_the_court_applied_to_records_the_confirmation(now):
    # 民诉法 Art 205: the parties apply to a court; its clerk records the ruling.
    township = township_tree()
    case = dispute_in_state("confirmation_pending", township=township, now=now)
    clerk = staff(township.court, Role.COURT_CLERK)

    case = case_transition(
        case_id=case.pk,
        transition="confirm",
        actor=clerk,
        now=now,
        data={"ruling_number": "(2026)豫1003民特12号"},
    )

    assert case.state == "performance_monitoring"
    assert case.external_reference == "(2026)豫1003民特12号"
    assert case.events.order_by("-version").first().actor == clerk
