"""Phone numbers are masked (138****1234) in pages and API responses unless revealed, and a
reveal is logged like an ID-number reveal (DOMAIN.md §5; issue 11, part 5)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mediation.accounts.models import Role
from mediation.cases.models import CaseParty
from mediation.parties.models import IdNumberRevealLog, RevealedItem
from tests.factories.accounts import staff
from tests.factories.agencies import township_tree
from tests.factories.cases import channel
from tests.integration.api.conftest import client_for

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]
PHONE = "13912345678"


@pytest.fixture
def case_with_phone(now):
    from mediation.cases.services import PartyInput, dispute_register

    township = township_tree()
    mediator = staff(township.committee, Role.MEDIATOR)
    case = dispute_register(
        actor=mediator,
        title="邻里纠纷",
        channel_id=channel("visit").pk,
        received_on=now.date(),
        now=now,
        parties=[PartyInput(name="张三", role="applicant", phone="139 1234 5678")],
    )
    party = CaseParty.objects.get(case=case).party
    return township, mediator, case, party


def test_the_case_page_shows_the_phone_masked(client, case_with_phone):
    _township, mediator, case, _party = case_with_phone
    client.force_login(mediator)

    html = client.get(reverse("web:case_detail", args=[case.pk])).content.decode()

    assert "139****5678" in html
    assert PHONE not in html
    assert "查看完整电话号码" in html


def test_revealing_a_phone_on_the_page_shows_it_and_logs_who_why_and_when(
    client, case_with_phone, now
):
    _township, mediator, case, party = case_with_phone
    client.force_login(mediator)

    response = client.post(
        reverse("web:party_reveal_phone", args=[case.pk, party.pk]), {"purpose": "电话通知调解"}
    )

    assert response.status_code == 200
    assert f'href="tel:{PHONE}"' in response.content.decode()
    [log] = IdNumberRevealLog.objects.all()
    assert (log.item, log.party_id, log.viewer_id, log.purpose, log.context) == (
        RevealedItem.PHONE,
        party.pk,
        mediator.pk,
        "电话通知调解",
        f"case:{case.pk}",
    )
    assert log.viewer_agency_id == mediator.agency_id


def test_a_phone_reveal_without_a_purpose_shows_nothing_and_logs_nothing(client, case_with_phone):
    _township, mediator, case, party = case_with_phone
    client.force_login(mediator)

    response = client.post(
        reverse("web:party_reveal_phone", args=[case.pk, party.pk]), {"purpose": "  "}
    )

    assert response.status_code == 302
    assert not IdNumberRevealLog.objects.exists()


def test_an_outsider_cannot_reveal_the_phone(client, case_with_phone):
    _township, _mediator, case, party = case_with_phone
    client.force_login(staff(township_tree().committee, Role.MEDIATOR))

    response = client.post(
        reverse("web:party_reveal_phone", args=[case.pk, party.pk]), {"purpose": "x"}
    )

    assert response.status_code == 404
    assert not IdNumberRevealLog.objects.exists()


def test_the_api_shows_the_phone_masked(case_with_phone):
    _township, mediator, case, _party = case_with_phone

    body = client_for(mediator).get(f"/api/cases/{case.pk}/").json()

    assert body["parties"][0]["phone"] == "139****5678"
    assert PHONE not in str(body)


def test_the_api_reveals_a_phone_with_a_purpose_and_logs_it(case_with_phone):
    _township, mediator, case, party = case_with_phone
    api = client_for(mediator)

    missing = api.post(f"/api/cases/{case.pk}/parties/{party.pk}/reveal-phone/", {}, format="json")
    revealed = api.post(
        f"/api/cases/{case.pk}/parties/{party.pk}/reveal-phone/",
        {"purpose": "电话通知"},
        format="json",
    )

    assert missing.status_code == 400
    assert revealed.status_code == 200
    assert revealed.json() == {"party": party.pk, "phone": PHONE}
    assert revealed["Cache-Control"] == "no-store"
    [log] = IdNumberRevealLog.objects.all()
    assert (log.item, log.viewer_id, log.purpose) == (RevealedItem.PHONE, mediator.pk, "电话通知")


def test_the_api_refuses_a_phone_reveal_outside_the_users_scope(case_with_phone):
    _township, _mediator, case, party = case_with_phone
    outsider = staff(township_tree().committee, Role.MEDIATOR)

    response = client_for(outsider).post(
        f"/api/cases/{case.pk}/parties/{party.pk}/reveal-phone/", {"purpose": "x"}, format="json"
    )

    assert response.status_code == 404
    assert not IdNumberRevealLog.objects.exists()
