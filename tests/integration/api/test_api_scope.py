"""Who sees what through the API (RELIABILITY.md §5.1, ASVS 8.2.2; DOMAIN.md §5).

A case outside the user's scope is 404 on every case endpoint and absent from the list,
whatever the role; supervisors see the cases of the agencies below theirs; a referral makes
the case visible to the receiving agency; an accusation petitioner's identity is hidden
from the accused agency; a full ID number is shown only with the permission, and each
showing is logged.
"""

from __future__ import annotations

import pytest

from mediation.accounts.models import Role
from mediation.cases.models import Case, CasePartyRole
from mediation.parties.models import IdNumberRevealLog
from tests.factories.accounts import staff
from tests.factories.agencies import Township
from tests.factories.cases import (
    dispute_in_state,
    id_number,
    party_input,
    petition_in_state,
    receive_petition,
)
from tests.integration.api.conftest import client_for, grant_reveal

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

# Each role at the agency where it works.
ROLE_AGENCY = {
    Role.MEDIATOR: "committee",
    Role.POLICE_OFFICER: "police_station",
    Role.COURT_CLERK: "court",
    Role.JUDICIAL_OFFICER: "judicial_office",
    Role.PETITION_OFFICER: "petition_office",
    Role.SUPERVISOR: "county_centre",
    Role.ADMINISTRATOR: "county_centre",
}


def member(township: Township, role: str):
    return staff(getattr(township, ROLE_AGENCY[role]), role)


def case_endpoints(case: Case, party_id: int) -> list[tuple[str, str, dict]]:
    base = f"/api/cases/{case.pk}"
    return [
        ("get", f"{base}/", {}),
        ("get", f"{base}/transitions/", {}),
        ("post", f"{base}/transitions/triage/", {"risk_level": "low"}),
        ("post", f"{base}/transitions/start_handling/", {}),
        ("get", f"{base}/events/", {}),
        ("get", f"{base}/clocks/", {}),
        ("post", f"{base}/parties/{party_id}/reveal/", {"purpose": "核对身份"}),
    ]


def listed_ids(client) -> set[int]:
    response = client.get("/api/cases/?page_size=200")
    assert response.status_code == 200
    return {row["id"] for row in response.json()["results"]}


def first_party_id(case: Case) -> int:
    return case.case_parties.order_by("pk").values_list("party_id", flat=True)[0]


@pytest.fixture
def their_cases(other_township, now) -> list[Case]:
    """A dispute and a petition of another township, in states every role could act on."""
    return [
        dispute_in_state("registered", township=other_township, now=now),
        petition_in_state("accepted", township=other_township, now=now),
    ]


@pytest.mark.parametrize("role", list(ROLE_AGENCY))
def test_another_agencys_case_is_404_on_every_endpoint_and_absent_from_the_list(
    role, township, their_cases
):
    user = grant_reveal(member(township, role))
    client = client_for(user)

    for case in their_cases:
        for method, url, body in case_endpoints(case, first_party_id(case)):
            response = getattr(client, method)(url, body, format="json")
            assert response.status_code == 404, (role, method, url, response.json())
            assert response.json()["code"] == "not_found"
    assert listed_ids(client).isdisjoint(c.pk for c in their_cases)
    assert IdNumberRevealLog.objects.count() == 0
    versions = dict(
        Case.objects.filter(pk__in=[c.pk for c in their_cases]).values_list("pk", "version")
    )
    assert versions == {c.pk: c.version for c in their_cases}


@pytest.mark.parametrize("role", list(ROLE_AGENCY))
def test_a_case_of_the_users_own_agency_is_visible(role, township, now):
    user = member(township, role)
    case = dispute_in_state("registered", township=township, now=now)
    # Re-home the fresh case to the user's agency through the row only: this test is about
    # reading, not about how cases move (the services' tests cover that).
    Case.objects.filter(pk=case.pk).update(holder_agency=user.agency)
    client = client_for(user)

    assert client.get(f"/api/cases/{case.pk}/").status_code == 200
    assert client.get(f"/api/cases/{case.pk}/events/").status_code == 200
    assert client.get(f"/api/cases/{case.pk}/clocks/").status_code == 200
    assert case.pk in listed_ids(client)


def test_supervisors_see_the_cases_of_the_agencies_below_theirs(township, other_township, now):
    village_case = dispute_in_state("registered", township=township, now=now)
    Case.objects.filter(pk=village_case.pk).update(holder_agency=township.village_committee)
    committee_case = dispute_in_state("mediating", township=township, now=now)
    county = client_for(staff(township.county_centre, Role.SUPERVISOR))
    centre = client_for(staff(township.centre, Role.SUPERVISOR))
    village = client_for(staff(township.village_committee, Role.SUPERVISOR))
    elsewhere = client_for(staff(other_township.county_centre, Role.SUPERVISOR))
    # A mediator at the township committee is not a supervisor: own agency only.
    committee_mediator = client_for(staff(township.committee, Role.MEDIATOR))

    assert listed_ids(county) == {village_case.pk, committee_case.pk}
    assert listed_ids(centre) == {village_case.pk, committee_case.pk}
    assert listed_ids(village) == {village_case.pk}
    assert listed_ids(elsewhere) == set()
    assert listed_ids(committee_mediator) == {committee_case.pk}
    assert county.get(f"/api/cases/{village_case.pk}/").status_code == 200
    assert elsewhere.get(f"/api/cases/{village_case.pk}/").status_code == 404
    assert committee_mediator.get(f"/api/cases/{village_case.pk}/").status_code == 404


def test_a_referred_case_is_visible_to_the_receiving_agency_only(township, now):
    case = dispute_in_state("assigned", township=township, now=now)  # 综治中心 → 调委会
    receiver = client_for(staff(township.committee, Role.MEDIATOR))
    bystander = client_for(staff(township.police_station, Role.POLICE_OFFICER))

    assert case.holder_agency_id == township.centre.pk
    assert case.pk in listed_ids(receiver)
    assert receiver.get(f"/api/cases/{case.pk}/").status_code == 200
    transitions = receiver.get(f"/api/cases/{case.pk}/transitions/").json()["transitions"]
    assert sorted(t["name"] for t in transitions) == ["accept", "decline"]
    assert case.pk not in listed_ids(bystander)
    assert bystander.get(f"/api/cases/{case.pk}/").status_code == 404


def test_a_returned_referral_no_longer_shows_the_case_to_the_receiver(township, now):
    case = dispute_in_state("assigned", township=township, now=now)
    receiver = client_for(staff(township.committee, Role.MEDIATOR))

    declined = receiver.post(
        f"/api/cases/{case.pk}/transitions/decline/", {"reason": "不属本会受理范围"}, format="json"
    )

    assert declined.status_code == 200
    assert receiver.get(f"/api/cases/{case.pk}/").status_code == 404
    assert case.pk not in listed_ids(receiver)


# 检举控告: the accused agency never learns who the petitioner is -----------------------------


@pytest.fixture
def accusation(township, now) -> Case:
    """An accusation against the police station, filed at the police station itself, which
    registers it and passes it on to the township 信访办: the station keeps following it (it
    handed it over), never learning who made it."""
    officer = staff(township.police_station, Role.POLICE_OFFICER)
    parties = [
        party_input(7, role=CasePartyRole.PETITIONER, name="赵六"),
        party_input(8, role=CasePartyRole.RESPONDENT, name="某民警"),
    ]
    case = receive_petition(
        township,
        now=now,
        actor=officer,
        parties=parties,
        petition_type="accusation",
        title="检举派出所民警违规办案",
        accused_agency_id=township.police_station.pk,
    )
    client = client_for(officer)
    for name, body in (
        ("register", {"petition_type": "accusation"}),
        ("forward", {"to_agency": township.petition_office.pk, "mode": "forward"}),
    ):
        response = client.post(f"/api/cases/{case.pk}/transitions/{name}/", body, format="json")
        assert response.status_code == 200, response.json()
    return Case.objects.get(pk=case.pk)


def test_the_accused_agency_sees_the_case_but_not_who_the_petitioner_is(township, accusation):
    accused = client_for(staff(township.police_station, Role.POLICE_OFFICER, n=1))

    response = accused.get(f"/api/cases/{accusation.pk}/")

    assert response.status_code == 200
    petitioner, respondent = response.json()["parties"]
    assert petitioner == {
        "id": None,
        "role": "petitioner",
        "role_label": "信访人",
        "name": "（保密）",
        "kind": "person",
        "phone": "（保密）",
        "address": "（保密）",
        "id_number_masked": "（保密）",
        "has_id_number": None,
        "is_minor": None,
        "identity_hidden": True,
    }
    assert respondent["name"] == "某民警"
    text = response.content.decode()
    assert "赵六" not in text
    assert "13800000007" not in text
    events = accused.get(f"/api/cases/{accusation.pk}/events/").json()["results"]
    assert "parties" not in events[0]["data"]


def test_the_accused_agency_cannot_act_on_the_accusation(township, accusation):
    officer = client_for(staff(township.petition_office, Role.PETITION_OFFICER))
    objection = {"reason": "本事项应由上级机关办理"}
    back = officer.post(
        f"/api/cases/{accusation.pk}/transitions/raise_objection/", objection, format="json"
    )
    assert (back.status_code, back.json()["state"]) == (200, "registered")  # at the station
    accused = client_for(staff(township.police_station, Role.POLICE_OFFICER, n=1))

    listed = accused.get(f"/api/cases/{accusation.pk}/transitions/").json()["transitions"]
    response = accused.post(f"/api/cases/{accusation.pk}/transitions/accept/", {}, format="json")

    # The station may only pass it on again (转送), never accept or decide it itself.
    assert [t["name"] for t in listed] == ["forward"]
    assert response.status_code == 403
    assert "被检举控告机构" in response.json()["message"]


def test_an_accusation_cannot_be_forwarded_to_the_accused_agency(township, now):
    officer = client_for(staff(township.petition_office, Role.PETITION_OFFICER))
    case = petition_in_state(
        "registered",
        township=township,
        now=now,
        petition_type="accusation",
        title="检举派出所民警违规办案",
        accused_agency_id=township.police_station.pk,
    )

    response = officer.post(
        f"/api/cases/{case.pk}/transitions/forward/",
        {"to_agency": township.police_station.pk, "mode": "forward"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["details"]["to_agency"] == [
        "检举控告事项不得交由被检举控告机构及其下属机构办理（信访工作条例第三十条）。"
    ]
    assert Case.objects.get(pk=case.pk).state == "registered"


@pytest.mark.parametrize(
    ("agency", "role"),
    [
        ("petition_office", Role.PETITION_OFFICER),
        ("county_centre", Role.SUPERVISOR),
        ("centre", Role.SUPERVISOR),
    ],
)
def test_the_petitioner_is_shown_to_those_outside_the_accused_agency(
    township, accusation, agency, role
):
    client = client_for(staff(getattr(township, agency), role))

    response = client.get(f"/api/cases/{accusation.pk}/")

    assert response.status_code == 200
    assert response.json()["parties"][0]["name"] == "赵六"
    assert response.json()["parties"][0]["identity_hidden"] is False


def test_the_accused_agency_cannot_reveal_the_petitioners_id_number(township, accusation):
    accused = grant_reveal(staff(township.police_station, Role.PETITION_OFFICER))
    petitioner = accusation.case_parties.get(role=CasePartyRole.PETITIONER).party_id

    response = client_for(accused).post(
        f"/api/cases/{accusation.pk}/parties/{petitioner}/reveal/",
        {"purpose": "核实身份"},
        format="json",
    )

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert IdNumberRevealLog.objects.count() == 0


# Revealing a full ID number -----------------------------------------------------------------


def test_revealing_an_id_number_requires_the_permission(township, now):
    case = dispute_in_state("registered", township=township, now=now)
    party_id = first_party_id(case)
    user = staff(township.centre, Role.SUPERVISOR)

    response = client_for(user).post(
        f"/api/cases/{case.pk}/parties/{party_id}/reveal/",
        {"purpose": "制作调解协议书"},
        format="json",
    )

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert IdNumberRevealLog.objects.count() == 0


def test_revealing_an_id_number_logs_exactly_one_row(township, now):
    case = dispute_in_state("registered", township=township, now=now)
    party_id = first_party_id(case)
    user = grant_reveal(staff(township.centre, Role.SUPERVISOR))

    response = client_for(user).post(
        f"/api/cases/{case.pk}/parties/{party_id}/reveal/",
        {"purpose": "制作调解协议书"},
        format="json",
    )

    assert response.status_code == 200
    assert response.json() == {"party": party_id, "id_number": id_number(1)}
    assert response["Cache-Control"] == "no-store"
    log = IdNumberRevealLog.objects.get()
    assert (log.party_id, log.viewer_id, log.viewer_agency_id) == (
        party_id,
        user.pk,
        township.centre.pk,
    )
    assert (log.purpose, log.context, log.at) == ("制作调解协议书", f"case:{case.pk}", now)


def test_revealing_needs_a_purpose_and_logs_nothing_without_one(township, now):
    case = dispute_in_state("registered", township=township, now=now)
    user = grant_reveal(staff(township.centre, Role.SUPERVISOR))

    response = client_for(user).post(
        f"/api/cases/{case.pk}/parties/{first_party_id(case)}/reveal/",
        {"purpose": ""},
        format="json",
    )

    assert response.status_code == 400
    assert list(response.json()["details"]) == ["purpose"]
    assert IdNumberRevealLog.objects.count() == 0


def test_a_party_of_another_case_cannot_be_revealed_through_this_one(township, now):
    mine = dispute_in_state("registered", township=township, now=now)
    other = dispute_in_state("registered", township=township, now=now)
    user = grant_reveal(staff(township.centre, Role.SUPERVISOR))

    response = client_for(user).post(
        f"/api/cases/{mine.pk}/parties/{first_party_id(other)}/reveal/",
        {"purpose": "核对"},
        format="json",
    )

    assert response.status_code == 404
    assert IdNumberRevealLog.objects.count() == 0
