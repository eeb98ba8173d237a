"""登记 from the web: a dispute or petition with its parties, and the duplicate-party warning."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mediation.accounts.models import Role
from mediation.cases.models import Case, CaseEvent, Category
from tests.factories.accounts import staff
from tests.factories.agencies import township_tree
from tests.factories.cases import channel, id_number, register_dispute

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("tests.integration.web.urls"),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


def _form(kind: str = "dispute", parties: list[dict] | None = None, **fields) -> dict:
    category = Category.objects.filter(applies_to=kind, is_active=True).first()
    data = {
        "title": "邻里排水沟纠纷",
        "category": category.pk,
        "channel": channel("visit").pk,
        "received_on": "2026-03-11",
        "description": "申请人称被申请人修建排水沟占用其宅基地。",
    }
    if kind == "dispute":
        data.update({"mediation_track": "people", "risk_level": "low"})
    else:
        data.update({"petition_type": "complaint", "headcount": 1})
    data.update(fields)
    parties = parties or [
        {"name": "赵六", "role": "applicant", "id_number": id_number(61), "phone": "13900000061"},
        {"name": "钱七", "role": "respondent", "id_number": "", "phone": ""},
    ]
    data.update(
        {
            "parties-TOTAL_FORMS": len(parties),
            "parties-INITIAL_FORMS": 0,
            "parties-MIN_NUM_FORMS": 1,
            "parties-MAX_NUM_FORMS": 50,
        }
    )
    for i, party in enumerate(parties):
        for key, value in party.items():
            data[f"parties-{i}-{key}"] = value
        data.setdefault(f"parties-{i}-address", "将官池镇")
    return data


def test_register_page_shows_the_form_with_two_party_rows(login, supervisor):
    response = login(supervisor).get(reverse("web:register", args=["dispute"]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "登记矛盾纠纷" in html
    assert 'name="parties-0-name"' in html
    assert 'name="parties-1-name"' in html
    assert "增加当事人" in html


def test_registering_a_dispute_creates_the_case_with_its_parties(login, supervisor):
    response = login(supervisor).post(reverse("web:register", args=["dispute"]), _form())

    case = Case.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("web:case_detail", args=[case.pk])
    assert case.state == "registered"
    assert case.holder_agency_id == supervisor.agency_id
    assert sorted(case.case_parties.values_list("party__name", "role")) == [
        ("赵六", "applicant"),
        ("钱七", "respondent"),
    ]
    assert CaseEvent.objects.filter(case=case).count() == 1


def test_registering_a_petition_receives_and_registers_it(login, petition_officer):
    response = login(petition_officer).post(
        reverse("web:register", args=["petition"]),
        _form(
            "petition",
            parties=[{"name": "孙八", "role": "petitioner", "id_number": "", "phone": ""}],
        ),
    )

    case = Case.objects.get()
    assert response.status_code == 302
    assert case.kind == "petition"
    assert case.state == "registered"
    assert list(CaseEvent.objects.filter(case=case).values_list("transition", flat=True)) == [
        "register",
        "register",
    ]


def test_invalid_id_number_is_shown_on_its_row(login, supervisor):
    response = login(supervisor).post(
        reverse("web:register", args=["dispute"]),
        _form(parties=[{"name": "赵六", "role": "applicant", "id_number": "110105198001010010"}]),
    )

    assert response.status_code == 200
    assert not Case.objects.exists()
    assert response.context["formset"].forms[0].errors["id_number"]


def test_a_party_with_an_open_case_asks_for_confirmation_then_registers(
    login, supervisor, township, now
):
    # Given 张三 (id_number(1)) is a party of an open dispute of this township
    existing = register_dispute(township, now=now)
    form = _form(
        parties=[{"name": "张三", "role": "applicant", "id_number": id_number(1), "phone": ""}]
    )

    first = login(supervisor).post(reverse("web:register", args=["dispute"]), form)
    confirmed = login(supervisor).post(
        reverse("web:register", args=["dispute"]), {**form, "confirm_duplicates": "1"}
    )

    html = first.content.decode()
    assert first.status_code == 200
    assert "当事人已有在办案件" in html
    assert existing.number in html
    assert "身份证号" in html
    assert Case.objects.count() == 2  # the existing one and the confirmed one
    assert confirmed.status_code == 302


def test_the_warning_matches_by_phone_too(login, supervisor, township, now):
    register_dispute(township, now=now)
    form = _form(parties=[{"name": "张三丰", "role": "applicant", "phone": "13800000001"}])

    response = login(supervisor).post(reverse("web:register", args=["dispute"]), form)

    assert "联系电话" in response.context["hits"][0].matched_by
    assert Case.objects.count() == 1


def test_the_warning_never_reveals_a_case_out_of_the_users_scope(login, now):
    # Given 张三 is a party of an open case of another township
    other = township_tree("大营")
    theirs = register_dispute(other, now=now, title="大营镇的纠纷")
    ours = township_tree("将官池")
    clerk = staff(ours.centre, Role.SUPERVISOR)
    form = _form(
        parties=[{"name": "张三", "role": "applicant", "id_number": id_number(1), "phone": ""}]
    )

    response = login(clerk).post(reverse("web:register", args=["dispute"]), form)

    html = response.content.decode()
    assert "该当事人已有在办案件" in html
    assert theirs.number not in html
    assert "大营镇的纠纷" not in html
    assert Case.objects.count() == 1


def test_a_closed_case_does_not_trigger_the_warning(login, supervisor, township, now):
    from tests.factories.cases import dispute_in_state

    dispute_in_state("withdrawn", township=township, now=now)
    form = _form(
        parties=[{"name": "张三", "role": "applicant", "id_number": id_number(1), "phone": ""}]
    )

    response = login(supervisor).post(reverse("web:register", args=["dispute"]), form)

    assert response.status_code == 302


def test_staff_without_an_intake_role_may_not_register(login, township):
    admin = staff(township.centre, Role.ADMINISTRATOR)

    response = login(admin).get(reverse("web:register", args=["dispute"]))

    assert response.status_code == 403
