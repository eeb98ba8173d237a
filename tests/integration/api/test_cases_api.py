"""The case API on real PostgreSQL: registration, list filters, detail, transitions, events,
clocks and the deadline calculator.

The clock is fixed at the `now` fixture (Wednesday 2026-03-11 10:00, Asia/Shanghai). Due dates
are counted by hand from DOMAIN.md §7 and the 2026 holidays (清明 04-04→06).
"""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mediation.accounts.models import Role
from mediation.cases.models import Case, CaseEvent, Category, Channel
from mediation.deadlines.models import Clock
from mediation.parties.models import Party
from tests.factories.accounts import staff
from tests.factories.cases import (
    dispute_in_state,
    id_number,
    petition_in_state,
    receive_petition,
    register_dispute,
)
from tests.integration.api.conftest import client_for

pytestmark = [
    pytest.mark.django_db,
    # The test client starts WhiteNoise, which warns while STATIC_ROOT has not been collected.
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


def ids(response) -> list[int]:
    return [row["id"] for row in response.json()["results"]]


def dispute_body(**overrides) -> dict:
    body = {
        "title": "邻里宅基地界址纠纷",
        "description": "双方因宅基地界址发生争执。",
        "channel": Channel.objects.get(code="visit").pk,
        "category": Category.objects.get(code="LL").pk,
        "received_on": "2026-03-10",
        "risk_level": "medium",
        "parties": [
            {
                "name": "张三",
                "role": "applicant",
                "id_number": id_number(1),
                "phone": "138 0000 0001",
                "address": "将官池村一组",
            },
            {"name": "李四", "role": "respondent"},
        ],
    }
    body.update(overrides)
    return body


# Registration ------------------------------------------------------------------------------


def test_registering_a_dispute_returns_the_new_case_with_masked_parties(township):
    mediator = staff(township.committee, Role.MEDIATOR)

    response = client_for(mediator).post("/api/cases/disputes/", dispute_body(), format="json")

    assert response.status_code == 201
    body = response.json()
    case = Case.objects.get(pk=body["id"])
    assert response["Location"] == f"/api/cases/{case.pk}/"
    assert response["Cache-Control"] == "no-store"
    assert body["number"] == f"(2026){township.committee.case_number_prefix}人调字第0001号"
    assert (body["kind"], body["state"], body["version"]) == ("dispute", "registered", 1)
    assert body["holder_agency"] == {"id": township.committee.pk, "name": township.committee.name}
    assert body["category"]["code"] == "LL"
    assert (body["received_on"], body["risk_level"]) == ("2026-03-10", "medium")
    assert [(p["name"], p["role"], p["phone"]) for p in body["parties"]] == [
        ("张三", "applicant", "138****0001"),
        ("李四", "respondent", ""),
    ]
    assert body["parties"][0]["id_number_masked"] == "110***********0016"
    assert body["parties"][0]["has_id_number"] is True
    assert body["parties"][1]["has_id_number"] is False
    assert "id_number" not in body["parties"][0]
    assert "id_number_encrypted" not in response.content.decode()
    assert "id_number_hash" not in response.content.decode()
    assert id_number(1) not in response.content.decode()
    # The triage clock started: one working day after registration.
    assert body["next_due"] == "2026-03-12"
    assert list(CaseEvent.objects.filter(case=case).values_list("transition", flat=True)) == [
        "register"
    ]


def test_receiving_an_accusation_petition_records_the_accused_agency(township):
    officer = staff(township.petition_office, Role.PETITION_OFFICER)
    body = {
        "title": "反映派出所民警违规收费",
        "channel": Channel.objects.get(code="letter").pk,
        "received_on": "2026-03-11",
        "petition_type": "accusation",
        "accused_agency": township.police_station.pk,
        "headcount": 1,
        "parties": [{"name": "王五", "role": "petitioner", "phone": "13900000003"}],
    }

    response = client_for(officer).post("/api/cases/petitions/", body, format="json")

    assert response.status_code == 201
    data = response.json()
    assert (data["kind"], data["state"], data["petition_type"]) == (
        "petition",
        "received",
        "accusation",
    )
    assert data["involves_accusation"] is True
    assert data["accused_agency"] == {
        "id": township.police_station.pk,
        "name": township.police_station.name,
    }
    # The petition office is not the accused: it sees who the petitioner is.
    assert data["parties"][0]["name"] == "王五"
    assert data["parties"][0]["identity_hidden"] is False


def test_a_repeat_petition_must_refer_to_a_petition_the_user_can_see(township, other_township, now):
    officer = staff(township.petition_office, Role.PETITION_OFFICER)
    mine = receive_petition(township, now=now)
    theirs = receive_petition(other_township, now=now)
    body = {
        "title": "再次反映征地补偿",
        "channel": Channel.objects.get(code="visit").pk,
        "received_on": "2026-03-11",
        "parties": [{"name": "王五", "role": "petitioner"}],
    }
    client = client_for(officer)

    refused = client.post("/api/cases/petitions/", {**body, "repeat_of": theirs.pk}, format="json")
    accepted = client.post("/api/cases/petitions/", {**body, "repeat_of": mine.pk}, format="json")

    assert refused.status_code == 400
    assert list(refused.json()["details"]) == ["repeat_of"]
    assert accepted.status_code == 201
    assert accepted.json()["repeat_of"] == mine.pk


# List and filters --------------------------------------------------------------------------


@pytest.fixture
def listed(township, now):
    """Cases at the township 综治中心 and its committee, visible to the county supervisor."""
    earlier = now - dt.timedelta(days=14)
    labour = Category.objects.get(code="LDZY")
    return {
        # Registered two weeks ago: its one-working-day triage clock is overdue.
        "overdue": register_dispute(
            township, now=earlier, title="拖欠工资纠纷", category_id=labour.pk
        ),
        # Registered now: triage due tomorrow, the next working day.
        "fresh": register_dispute(township, now=now, title="邻里噪音纠纷"),
        # Mediating since today: the 30-day period ends on 2026-04-10 (21 working days).
        "mediating": dispute_in_state("mediating", township=township, now=now),
        "petition": petition_in_state("handling", township=township, now=now),
    }


def test_list_shows_every_visible_case_newest_first(township, listed):
    supervisor = staff(township.county_centre, Role.SUPERVISOR)

    response = client_for(supervisor).get("/api/cases/")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4
    assert ids(response) == [
        listed["petition"].pk,
        listed["mediating"].pk,
        listed["fresh"].pk,
        listed["overdue"].pk,
    ]
    overdue = next(row for row in body["results"] if row["id"] == listed["overdue"].pk)
    assert (overdue["overdue"], overdue["next_due"]) == (True, "2026-02-26")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("kind=petition", ["petition"]),
        ("kind=dispute", ["mediating", "fresh", "overdue"]),
        ("state=mediating", ["mediating"]),
        ("state=registered", ["fresh", "overdue"]),
        ("overdue=true", ["overdue"]),
        ("overdue=false", ["petition", "mediating", "fresh"]),
        ("due_within=0", []),
        ("due_within=1", ["fresh"]),
        ("due_within=20", ["fresh"]),
        ("due_within=21", ["mediating", "fresh"]),
        ("q=工资", ["overdue"]),
        ("q=人调字第0002", ["fresh"]),
        ("q=nothing-like-this", []),
        ("kind=dispute&state=registered&overdue=false", ["fresh"]),
    ],
)
def test_list_filters(township, listed, query, expected):
    supervisor = staff(township.county_centre, Role.SUPERVISOR)

    response = client_for(supervisor).get(f"/api/cases/?{query}")

    assert response.status_code == 200, response.json()
    assert ids(response) == [listed[name].pk for name in expected]


def test_list_filters_by_holder_agency_category_and_channel(township, listed):
    supervisor = staff(township.county_centre, Role.SUPERVISOR)
    client = client_for(supervisor)
    labour = Category.objects.get(code="LDZY")
    visit = Channel.objects.get(code="visit")
    phone = Channel.objects.get(code="phone")

    by_holder = client.get(f"/api/cases/?holder_agency={township.committee.pk}")
    by_category = client.get(f"/api/cases/?category={labour.pk}")
    by_channel = client.get(f"/api/cases/?channel={visit.pk}")
    by_other_channel = client.get(f"/api/cases/?channel={phone.pk}")

    assert ids(by_holder) == [listed["mediating"].pk]
    assert ids(by_category) == [listed["overdue"].pk]
    assert by_channel.json()["count"] == 4
    assert ids(by_other_channel) == []


def test_list_pages_with_a_capped_page_size(township, now):
    mediator = staff(township.committee, Role.MEDIATOR)
    for n in range(3):
        register_dispute(township, now=now + dt.timedelta(minutes=n), actor=mediator)
    client = client_for(mediator)

    first = client.get("/api/cases/?page_size=2")
    second = client.get("/api/cases/?page_size=2&page=2")
    capped = client.get("/api/cases/?page_size=100000")

    assert (first.json()["count"], len(first.json()["results"])) == (3, 2)
    assert first.json()["next"].endswith("page=2&page_size=2")
    assert len(second.json()["results"]) == 1
    assert second.json()["next"] is None
    assert len(capped.json()["results"]) == 3


def test_list_query_count_does_not_grow_with_the_number_of_cases(township, now):
    supervisor = staff(township.county_centre, Role.SUPERVISOR)
    client = client_for(supervisor)

    def queries_for_list() -> int:
        # A fresh user object, as each request has (its agency scope is kept on it).
        client.force_authenticate(user=type(supervisor).objects.get(pk=supervisor.pk))
        with CaptureQueriesContext(connection) as ctx:
            response = client.get("/api/cases/")
        assert response.status_code == 200
        return len(ctx.captured_queries)

    register_dispute(township, now=now)
    petition_in_state("handling", township=township, now=now)
    with_two = queries_for_list()
    for _ in range(3):
        register_dispute(township, now=now)
        dispute_in_state("mediating", township=township, now=now)
        petition_in_state("registered", township=township, now=now)
    with_eleven = queries_for_list()

    assert Case.objects.count() == 11
    assert with_eleven == with_two


# Detail ------------------------------------------------------------------------------------


def test_detail_shows_the_case_its_parties_and_its_pending_referral(township, now):
    case = dispute_in_state("assigned", township=township, now=now)
    supervisor = staff(township.centre, Role.SUPERVISOR)

    response = client_for(supervisor).get(f"/api/cases/{case.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["state"], body["state_label"], body["version"]) == (
        case.pk,
        "assigned",
        "交办",
        3,
    )
    assert body["registering_agency"]["id"] == township.centre.pk
    assert [p["name"] for p in body["parties"]] == ["张三", "李四"]
    assert body["pending_referral"]["to_agency"] == township.committee.pk
    assert body["pending_referral"]["kind"] == "assign"


# Transitions -------------------------------------------------------------------------------


def test_transitions_list_the_users_possible_steps_with_their_form_fields(township, now):
    case = dispute_in_state("mediating", township=township, now=now)
    mediator = staff(township.committee, Role.MEDIATOR)

    response = client_for(mediator).get(f"/api/cases/{case.pk}/transitions/")

    assert response.status_code == 200
    body = response.json()
    assert (body["case"], body["state"], body["version"]) == (case.pk, "mediating", 5)
    names = [t["name"] for t in body["transitions"]]
    # The case file's actions keep the state (target = the current state); they are posted
    # to actions/{name}/.
    assert sorted(names) == [
        "close_failed",
        "escalate",
        "extend",
        "record_agreement",
        "record_session",
        "suspend",
        "upload_attachment",
        "withdraw",
    ]
    extend = next(t for t in body["transitions"] if t["name"] == "extend")
    assert (extend["label"], extend["target"], extend["target_label"]) == (
        "延期",
        "extended",
        "延期",
    )
    fields = {f["name"]: f for f in extend["fields"]}
    assert list(fields) == ["note", "reason", "extra_days", "parties_consented"]
    assert (fields["extra_days"]["type"], fields["extra_days"]["min_value"]) == ("integer", 1)
    assert fields["extra_days"]["max_value"] == 90
    assert (fields["parties_consented"]["type"], fields["parties_consented"]["required"]) == (
        "boolean",
        True,
    )
    assert (fields["note"]["type"], fields["note"]["required"]) == ("text", False)
    agreement = next(t for t in body["transitions"] if t["name"] == "record_agreement")
    form = next(f for f in agreement["fields"] if f["name"] == "form")
    assert form["type"] == "choice"
    assert [c["value"] for c in form["choices"]] == ["written", "oral"]


def test_transitions_are_empty_for_a_role_that_may_take_none(township, now):
    case = dispute_in_state("mediating", township=township, now=now)
    police = staff(township.committee, Role.POLICE_OFFICER)

    response = client_for(police).get(f"/api/cases/{case.pk}/transitions/")

    assert response.status_code == 200
    assert response.json()["transitions"] == []


def test_a_dispute_walks_from_registration_to_closure_through_the_api(township, now):
    centre = client_for(staff(township.centre, Role.SUPERVISOR))
    committee = client_for(staff(township.committee, Role.MEDIATOR))
    registered = centre.post("/api/cases/disputes/", dispute_body(), format="json").json()
    case_id = registered["id"]
    steps = [
        (centre, "triage", {"risk_level": "high", "note": "研判为较大风险"}),
        (centre, "assign", {"to_agency": township.committee.pk}),
        (committee, "accept", {}),
        (committee, "start_mediation", {}),
        (
            committee,
            "record_agreement",
            {
                "form": "written",
                "text": "李四于三月底前退让界桩，恢复原有界址，双方不再争执。",
                "performance_due_on": "2026-03-31",
            },
        ),
        (committee, "monitor_performance", {}),
        (committee, "close_resolved", {"performed": True, "satisfaction": "satisfied"}),
    ]

    states = []
    for version, (client, name, data) in enumerate(steps, start=1):
        response = client.post(
            f"/api/cases/{case_id}/transitions/{name}/",
            {**data, "expected_version": version},
            format="json",
        )
        assert response.status_code == 200, (name, response.json())
        assert response.json()["version"] == version + 1
        states.append(response.json()["state"])

    assert states == [
        "triaged",
        "assigned",
        "accepted",
        "mediating",
        "agreement_reached",
        "performance_monitoring",
        "closed_resolved",
    ]
    case = Case.objects.get(pk=case_id)
    assert (case.holder_agency_id, case.risk_level, case.closed_at) == (
        township.committee.pk,
        "high",
        now,
    )
    events = list(CaseEvent.objects.filter(case=case).order_by("version"))
    assert [e.transition for e in events] == ["register", *[s[1] for s in steps]]
    assert events[1].note == "研判为较大风险"


def test_a_petition_transition_takes_dates_and_references(township, now):
    case = petition_in_state("handling", township=township, now=now)
    officer = staff(township.petition_office, Role.PETITION_OFFICER)

    response = client_for(officer).post(
        f"/api/cases/{case.pk}/transitions/issue_opinion/",
        {"result": "support", "text": "支持信访人的合理诉求。", "served_on": "2026-03-11"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert response.json()["state"] == "opinion_issued"
    assert case.opinions.get().served_on == dt.date(2026, 3, 11)


# Events ------------------------------------------------------------------------------------


def test_events_list_the_audit_trail_in_version_order(township, now):
    case = dispute_in_state("accepted", township=township, now=now)
    mediator = staff(township.committee, Role.MEDIATOR)

    response = client_for(mediator).get(f"/api/cases/{case.pk}/events/")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4
    rows = [
        (e["version"], e["transition"], e["from_state"], e["to_state"]) for e in body["results"]
    ]
    assert rows == [
        (1, "register", "", "registered"),
        (2, "triage", "registered", "triaged"),
        (3, "assign", "triaged", "assigned"),
        (4, "accept", "assigned", "accepted"),
    ]
    accept = body["results"][3]
    assert accept["actor_agency"] == {"id": township.committee.pk, "name": township.committee.name}
    assert accept["at"] == "2026-03-11T10:00:00+08:00"
    assert accept["data"]["clocks"]["started"] == ["dispute.mediate"]


# Clocks ------------------------------------------------------------------------------------


def test_clocks_show_due_dates_explanation_and_remaining_working_days(township, now):
    case = dispute_in_state("mediating", township=township, now=now)
    mediator = staff(township.committee, Role.MEDIATOR)

    response = client_for(mediator).get(f"/api/cases/{case.pk}/clocks/")

    assert response.status_code == 200
    clocks = {c["rule_code"]: c for c in response.json()["results"]}
    assert set(clocks) == {"dispute.triage", "dispute.assign_ack", "dispute.mediate"}
    mediate = clocks["dispute.mediate"]
    assert (mediate["status"], mediate["kind"], mediate["start_date"]) == (
        "running",
        "duty",
        "2026-03-11",
    )
    assert (mediate["nominal_due"], mediate["due"], mediate["provisional"]) == (
        "2026-04-10",
        "2026-04-10",
        False,
    )
    assert mediate["due_at"] == "2026-04-11T00:00:00+08:00"
    assert mediate["explanation"][0].startswith("起算日 2026-03-11 不计入；期间 30 日")
    assert mediate["explanation"][-2:] == ["到期日 2026-04-10", "节假日数据齐全，结果非临时"]
    # 12 Mar – 10 Apr: 14 working days in March, 3 + 4 in April around 清明 (04-04 → 06).
    assert mediate["remaining_working_days"] == 21
    assert mediate["overdue"] is False
    assert clocks["dispute.triage"]["status"] == "stopped"


def test_an_overdue_clock_counts_working_days_past_due_as_negative(township, now):
    case = register_dispute(township, now=now - dt.timedelta(days=14))
    supervisor = staff(township.centre, Role.SUPERVISOR)

    response = client_for(supervisor).get(f"/api/cases/{case.pk}/clocks/")

    (triage,) = response.json()["results"]
    # Registered Wed 02-25: due Thu 02-26. Overdue by 02-27, Sat 02-28 (春节调休 workday),
    # 03-02 … 03-06 and 03-09 … 03-11: 10 working days.
    assert (triage["due"], triage["overdue"], triage["remaining_working_days"]) == (
        "2026-02-26",
        True,
        -10,
    )
    assert Clock.objects.get(case=case).due == dt.date(2026, 2, 26)


# Deadline calculator -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["petition.notify", "2026-01-20"],
        ["dispute.medical", "2026-09-25"],
        ["dispute.mediate", "2026-04-01", "--pause", "2026-04-03:2026-04-09"],
        [
            "petition.rereview",
            "2026-05-01",
            "--pause",
            "2026-05-06:2026-05-08",
            "--pause",
            "2026-05-20:2026-05-21",
        ],
    ],
)
def test_deadline_compute_gives_the_same_json_as_the_command(admin_user, args):
    out = StringIO()
    call_command("deadline", *args, "--json", stdout=out)
    query = f"rule={args[0]}&start={args[1]}" + "".join(
        f"&pause={args[i + 1]}" for i, a in enumerate(args) if a == "--pause"
    )

    response = client_for(admin_user).get(f"/api/deadlines/compute/?{query}")

    assert response.status_code == 200
    assert response.json() == json.loads(out.getvalue())


def test_deadline_compute_refuses_a_malformed_start_date(admin_user):
    response = client_for(admin_user).get(
        "/api/deadlines/compute/?rule=petition.notify&start=2026-2-30"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert list(response.json()["details"]) == ["start"]


# Reference data ----------------------------------------------------------------------------


def test_agencies_are_listed_without_their_webhook_url(township):
    township.committee.webhook_url = "https://qyapi.example/cgi-bin/webhook/send?key=secret"
    township.committee.save()
    user = staff(township.committee, Role.MEDIATOR)

    listing = client_for(user).get("/api/agencies/?page_size=200")
    detail = client_for(user).get(f"/api/agencies/{township.committee.pk}/")

    assert listing.status_code == 200
    assert township.committee.pk in [a["id"] for a in listing.json()["results"]]
    assert detail.json()["parent"] == township.centre.pk
    assert "secret" not in listing.content.decode() + detail.content.decode()


def test_categories_filter_by_what_they_apply_to(township):
    user = staff(township.committee, Role.MEDIATOR)

    response = client_for(user).get("/api/categories/?applies_to=petition&page_size=200")

    assert response.status_code == 200
    assert {c["applies_to"] for c in response.json()["results"]} <= {"petition", "both"}
    assert (
        response.json()["count"]
        == Category.objects.filter(applies_to__in=["petition", "both"]).count()
    )


def test_channels_are_listed(township):
    user = staff(township.committee, Role.MEDIATOR)

    response = client_for(user).get("/api/channels/")

    assert response.json()["count"] == Channel.objects.count()
    assert response.json()["results"][0] == {
        "id": Channel.objects.get(code="visit").pk,
        "code": "visit",
        "name": "来访",
        "is_active": True,
    }


def test_party_rows_never_leave_with_their_encrypted_or_hashed_number(township, now):
    case = register_dispute(township, now=now)
    user = staff(township.centre, Role.SUPERVISOR)

    response = client_for(user).get(f"/api/cases/{case.pk}/")

    text = response.content.decode()
    for party in Party.objects.filter(cases__case=case):
        assert party.id_number_encrypted not in text
        assert party.id_number_hash not in text
