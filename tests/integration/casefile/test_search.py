"""The search box (issue 13 §1): one entry finds a case by number, sequence, party name, ID
number, phone or words of its title and summary, within what the user may see, and an accused
agency never finds its accuser. The web list and the API list ask the same selector."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from mediation.accounts.models import Role
from mediation.cases import selectors
from mediation.cases.models import CasePartyRole
from mediation.cases.selectors import CaseFilters, case_list_for, parse_search
from mediation.cases.services import PartyInput, case_transition
from mediation.parties import crypto
from mediation.parties.models import Party
from mediation.parties.services import party_update_contact
from tests.factories.accounts import staff
from tests.factories.agencies import township_tree
from tests.factories.cases import id_number, receive_petition, register_dispute

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("mediation.urls"),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


@pytest.fixture
def world(now):
    t = township_tree("将官池")
    centre = staff(t.centre, Role.SUPERVISOR)
    first = register_dispute(
        t,
        now=now,
        actor=centre,
        title="邻里宅基地界址纠纷",
        description="申请人称被申请人修建排水沟占用其宅基地约两平方米。",
        parties=[
            PartyInput(
                name="张三丰",
                role=CasePartyRole.APPLICANT,
                id_number=id_number(1),
                phone="138 0000 0001",
            ),
            PartyInput(name="李四", role=CasePartyRole.RESPONDENT, phone="13800000002"),
        ],
    )
    second = register_dispute(
        t,
        now=now + dt.timedelta(days=1),
        actor=centre,
        title="欠薪纠纷",
        description="工程款拖欠",
        parties=[PartyInput(name="王五", role=CasePartyRole.APPLICANT, phone="13900000009")],
    )
    return t, centre, first, second


def _found(user, q, **kw) -> list[int]:
    return list(case_list_for(user, scope="agency", q=q, **kw).values_list("pk", flat=True))


@pytest.mark.parametrize(
    ("q", "kind"),
    [
        ("张三丰", "text"),  # the party's name, exact
        ("张三", "text"),  # ... or its beginning
        ("宅基地", "text"),  # words of the title
        ("界址", "text"),  # two characters: one bigram
        ("排水沟", "text"),  # words of the summary
        ("ID", "id_number"),  # the full 18-digit number, by its keyed hash
        ("13800000001", "phone"),
        ("+86 138-0000-0001", "phone"),
        ("NUMBER", "number"),  # the whole case number
        ("第1号", "sequence"),
        ("0001", "sequence"),
    ],
)
def test_every_kind_of_entry_finds_the_case(world, q, kind):
    _t, centre, first, _second = world
    q = {"ID": id_number(1), "NUMBER": first.number}.get(q, q)

    assert parse_search(q).kind == kind
    assert _found(centre, q) == [first.pk]


def test_names_match_exactly_or_by_prefix_not_in_the_middle(world):
    _t, centre, first, _second = world

    assert _found(centre, "三丰") == []
    assert _found(centre, "李四") == [first.pk]  # the respondent too


def test_a_search_finds_only_what_the_user_may_see(world):
    _t, _centre, first, _second = world
    outsider = staff(township_tree("大营").committee, Role.MEDIATOR)

    for q in ("张三丰", id_number(1), "13800000001", first.number, "宅基地"):
        assert _found(outsider, q) == [], q


def test_an_empty_or_meaningless_entry_is_not_an_error(world):
    _t, centre, first, second = world

    assert set(_found(centre, "   ")) == {first.pk, second.pk}
    assert _found(centre, "完全不相干的文字") == []
    assert _found(centre, "%") == []  # LIKE wildcards are literal
    assert _found(centre, "_") == []


def test_the_phone_is_looked_up_by_its_keyed_hash_never_in_clear(world):
    _t, centre, first, _second = world
    party = Party.objects.get(name="张三丰")

    with CaptureQueriesContext(connection) as queries:
        assert _found(centre, "13800000001") == [first.pk]

    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert party.phone_hash == crypto.phone_hash("13800000001")
    assert party.phone_hash in sql
    assert "13800000001" not in sql


def test_a_changed_phone_is_found_by_its_new_number_only(world):
    _t, centre, first, _second = world
    party = Party.objects.get(name="张三丰")

    party_update_contact(party_id=party.pk, phone="13711112222")

    assert Party.objects.get(pk=party.pk).phone_hash == crypto.phone_hash("13711112222")
    assert _found(centre, "13711112222") == [first.pk]
    assert _found(centre, "13800000001") == []


def test_the_phone_and_id_hashes_never_collide():
    # A 15-digit legacy ID and a number of the same digits hash differently.
    assert crypto.phone_hash("110105800101001") != crypto.lookup_hash("110105800101001")


def test_the_portable_path_gives_the_same_answers(world, monkeypatch):
    """What the SQLite demo runs (no ANY(ARRAY), no bigram index), here against PostgreSQL."""
    _t, centre, _first, second = world
    entries = ["张三", "宅基地", "界址", "排水沟", "工程", id_number(1), "13900000009", "第2号"]
    fast = {q: _found(centre, q) for q in entries}

    monkeypatch.setattr(selectors, "uses_postgresql_indexes", lambda: False)

    assert {q: _found(centre, q) for q in entries} == fast
    assert fast["工程"] == [second.pk]


def test_filters_narrow_the_list(world, now):
    t, centre, first, second = world
    mediator = staff(t.committee, Role.MEDIATOR)
    case_transition(
        case_id=second.pk, transition="triage", actor=centre, now=now, data={"risk_level": "low"}
    )

    def found(**kw):
        return set(
            case_list_for(centre, scope="agency", filters=CaseFilters(**kw), now=now).values_list(
                "pk", flat=True
            )
        )

    assert found(state="triaged") == {second.pk}
    assert found(registered_from=dt.date(2026, 3, 12)) == {second.pk}
    assert found(registered_to=dt.date(2026, 3, 11)) == {first.pk}
    assert found(assignee_id=centre.pk) == {first.pk, second.pk}
    assert found(assignee_id=mediator.pk) == set()
    assert found(holder_agency_id=t.centre.pk) == {first.pk, second.pk}
    assert found(kind="petition") == set()
    assert found(overdue=True) == set()


def test_the_api_list_searches_and_filters_the_same_way(world):
    _t, centre, first, second = world
    api = APIClient()
    api.force_authenticate(centre)

    def ids(query):
        response = api.get("/api/cases/", query)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids({"q": "张三丰"}) == [first.pk]
    assert ids({"q": "13900000009"}) == [second.pk]
    assert ids({"q": id_number(1)}) == [first.pk]
    assert ids({"registered_from": "2026-03-12"}) == [second.pk]
    assert ids({"assignee": centre.pk, "registered_to": "2026-03-11"}) == [first.pk]
    bad = api.get("/api/cases/", {"registered_from": "2026-03-12", "registered_to": "2026-03-01"})
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid"


def test_the_web_list_searches_and_reports_bad_filters(world, client):
    _t, centre, first, second = world
    client.force_login(centre)

    found = client.get("/cases/agency/", {"q": "排水沟"}).content.decode()
    bad = client.get("/cases/agency/", {"registered_from": "not-a-date", "q": "王五"})

    assert first.number in found
    assert second.number not in found
    assert bad.status_code == 200
    assert second.number in bad.content.decode()
    assert "登记日期起" in bad.content.decode()


def test_an_accused_agency_never_finds_its_accuser(now):
    t = township_tree("将官池")
    station = t.police_station
    officer = staff(station, Role.POLICE_OFFICER)
    petition = receive_petition(
        t,
        now=now,
        actor=officer,
        title="检举民警违规罚款",
        description="信访人欧阳明远反映罚款。",
        petition_type="accusation",
        accused_agency_id=station.pk,
        parties=[
            PartyInput(
                name="欧阳明远",
                role=CasePartyRole.PETITIONER,
                id_number=id_number(707),
                phone="13577770007",
            ),
            PartyInput(name="某民警", role=CasePartyRole.RESPONDENT),
        ],
    )
    supervisor = staff(t.centre, Role.SUPERVISOR)

    for q in ("欧阳明远", "欧阳", id_number(707), "13577770007"):
        assert _found(officer, q) == [], q
        assert _found(supervisor, q) == [petition.pk], q
    # The matter itself, by what the station may know: its number, title, the respondent.
    assert _found(officer, petition.number) == [petition.pk]
    assert _found(officer, "违规罚款") == [petition.pk]
    assert _found(officer, "某民警") == [petition.pk]
