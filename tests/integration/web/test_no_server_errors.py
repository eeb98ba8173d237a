"""Each input of issue 11 (part 4) that gave a 500 or tied up a worker, now a 4xx or a page
with a form error. One test per finding, run against the real views and database."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.urls import reverse

from mediation.accounts.models import Role
from mediation.cases.models import Case, CaseEvent
from mediation.escalation.models import Escalation
from mediation.escalation.sweeps import sweep_run
from mediation.notifications.models import Notification
from tests.factories.accounts import staff
from tests.factories.cases import petition_in_state, register_dispute
from tests.integration.api.conftest import client_for

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("tests.integration.web.urls"),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


@pytest.fixture
def escalation(township, now) -> Escalation:
    register_dispute(township, now=now - dt.timedelta(days=7), title="超期纠纷")
    sweep_run(now=now, trigger="test")
    return Escalation.objects.get()


# Dates -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        {"date_to": "9999-12-31"},
        {"date_from": "9999-12-31"},
        {"date_from": "0001-01-01"},
        {"date_from": "2026-01-01", "date_to": "9999-12-31"},
    ],
)
@pytest.mark.parametrize("path", ["/stats/", "/stats/export/ontime.csv"])
def test_dates_at_the_ends_of_the_calendar_are_a_form_error(login, supervisor, path, query):
    response = login(supervisor).get(path, query)

    assert response.status_code == 200
    if path == "/stats/":
        assert "日期须在" in response.content.decode()


@pytest.mark.parametrize("path", ["/stats/", "/stats/export/ontime.csv"])
def test_an_eight_thousand_year_range_is_refused_not_summed(login, supervisor, path):
    started = time.monotonic()

    response = login(supervisor).get(path, {"date_from": "0001-01-01", "date_to": "9998-11-30"})

    assert response.status_code == 200
    assert time.monotonic() - started < 5
    if path.endswith(".csv"):
        # the default period (the last three months) is exported instead
        assert "20260101-20260311" in response["Content-Disposition"]


def test_a_range_longer_than_three_years_is_refused(login, supervisor):
    response = login(supervisor).get(
        "/stats/", {"date_from": "2020-01-01", "date_to": "2026-01-01"}
    )

    assert "统计期间不能超过" in response.content.decode()


def test_a_clock_pause_date_at_the_end_of_the_calendar_is_refused(login, township, now):
    petition = petition_in_state("under_rereview", township=township, now=now)
    officer = staff(petition.holder_agency, Role.PETITION_OFFICER)
    clocks = list(petition.clocks.values_list("rule_code", "paused_days"))

    response = login(officer).post(
        reverse("web:clock_pause", args=[petition.pk, "petition.rereview", "pause"]),
        {"on": "9999-12-31", "reason": "听证"},
    )

    assert response.status_code == 302
    assert list(petition.clocks.values_list("rule_code", "paused_days")) == clocks
    assert "日期格式错误" in login(officer).get(response["Location"]).content.decode()


# Ids -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["²", "١٢", "１２", " 12", "1_2", "9" * 30, "-1", "0"])
def test_ids_are_ascii_digits_only(login, supervisor, value):
    response = login(supervisor).post(
        "/notifications/read/", {"notification": value, "case": value}
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("web:notifications")


@pytest.mark.parametrize("value", ["²", "9" * 30, "１"])
def test_odd_ids_in_the_supervision_queue_and_actions(login, supervisor, escalation, value):
    client = login(supervisor)

    queue = client.get(reverse("web:supervision"), {"agency": value})
    bulk = client.post(reverse("web:supervision_bulk_ack"), {"escalation": value})
    reassign = client.post(
        reverse("web:escalation_action", args=[escalation.pk, "reassign"]),
        {"to_agency": value, "reason": "x"},
    )
    extend = client.post(
        reverse("web:escalation_action", args=[escalation.pk, "extend"]),
        {"extra_days": value, "reason": "x"},
    )

    assert queue.status_code == 200
    assert {bulk.status_code, reassign.status_code, extend.status_code} == {302}


def test_an_odd_agency_in_refer_to_mediation(login, township, now):
    petition = petition_in_state("handling", township=township, now=now)
    officer = staff(township.petition_office, Role.PETITION_OFFICER)

    response = login(officer).post(
        reverse("web:refer_mediation", args=[petition.pk]), {"to_agency": "9" * 30}
    )

    assert response.status_code in (200, 302)  # the form again, or back to the case
    assert not Case.objects.filter(spawned_from=petition).exists()


# NUL and other control characters ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "field"),
    [
        ("acknowledge", "note"),
        ("reassign", "reason"),
        ("note", "text"),
        ("resolve", "note"),
        ("extend", "reason"),
    ],
)
@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b"])
def test_control_characters_in_escalation_actions_are_a_400(
    login, supervisor, escalation, action, field, char
):
    response = login(supervisor).post(
        reverse("web:escalation_action", args=[escalation.pk, action]),
        {field: f"督办{char}意见", "extra_days": "3"},
    )

    assert response.status_code == 400
    assert "控制字符" in response.content.decode()
    assert not CaseEvent.objects.filter(transition__startswith="escalation_").exists()


def test_a_nul_in_refer_to_mediations_note_is_a_400(login, township, now):
    petition = petition_in_state("handling", township=township, now=now)
    officer = staff(township.petition_office, Role.PETITION_OFFICER)

    response = login(officer).post(
        reverse("web:refer_mediation", args=[petition.pk]),
        {"to_agency": str(township.committee.pk), "note": "转\x00调解"},
    )

    assert response.status_code == 400
    assert not Case.objects.filter(spawned_from=petition).exists()


@pytest.mark.parametrize("path", ["/cases/mine/", "/cases/agency/", "/supervision/", "/stats/"])
def test_a_nul_in_a_query_string_is_a_400(login, supervisor, path):
    response = login(supervisor).get(path, {"q": "纠纷\x00"})

    assert response.status_code == 400


def test_tabs_and_newlines_are_still_welcome(login, supervisor, escalation):
    response = login(supervisor).post(
        reverse("web:escalation_action", args=[escalation.pk, "note"]),
        {"text": "第一条\r\n\t第二条"},
    )

    assert response.status_code == 302
    assert Escalation.objects.get().data["notes"][-1]["text"] == "第一条\r\n\t第二条"


@pytest.mark.urls("mediation.urls")
def test_the_api_refuses_control_characters_with_its_error_shape(township):
    api = client_for(staff(township.committee, Role.MEDIATOR))

    response = api.get("/api/cases/", {"q": "a\x00"})
    body = api.post("/api/escalations/1/notes/", {"text": "督办\x01"}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert set(response.json()) == {"code", "message", "details"}
    assert body.status_code == 400


# Lengths ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "field", "limit"),
    [
        ("acknowledge", "note", 2000),
        ("reassign", "reason", 2000),
        ("note", "text", 5000),
        ("resolve", "note", 2000),
        ("extend", "reason", 2000),
    ],
)
def test_web_escalation_actions_have_the_apis_length_limits(
    login, supervisor, escalation, action, field, limit
):
    data = {
        field: "长" * (limit + 1),
        "extra_days": "3",
        "to_agency": str(escalation.case.holder_agency_id),
    }

    response = login(supervisor).post(
        reverse("web:escalation_action", args=[escalation.pk, action]), data
    )

    assert response.status_code == 302
    assert not CaseEvent.objects.filter(transition__startswith="escalation_").exists()
    followed = login(supervisor).get(response["Location"])
    assert f"不能超过 {limit} 字" in followed.content.decode()


def test_a_hundred_thousand_character_note_is_stored_nowhere(login, supervisor, escalation):
    login(supervisor).post(
        reverse("web:escalation_action", args=[escalation.pk, "note"]), {"text": "长" * 100_000}
    )

    assert "长" * 5001 not in str(Escalation.objects.get().data)
    assert not Notification.objects.filter(body__contains="长" * 5001).exists()


def test_refer_to_mediation_refuses_a_note_over_the_limit_instead_of_cutting_it(
    login, township, now
):
    petition = petition_in_state("handling", township=township, now=now)
    officer = staff(township.petition_office, Role.PETITION_OFFICER)

    login(officer).post(
        reverse("web:refer_mediation", args=[petition.pk]),
        {"to_agency": str(township.committee.pk), "note": "长" * 2001},
    )

    assert not Case.objects.filter(spawned_from=petition).exists()


# API numbers and types -------------------------------------------------------------------------


def _dispute_body(**overrides):
    from mediation.cases.models import Channel

    body = {
        "title": "邻里纠纷",
        "channel": Channel.objects.get(code="visit").pk,
        "received_on": "2026-03-10",
        "parties": [{"name": "张三", "role": "applicant"}],
    }
    body.update(overrides)
    return body


@pytest.mark.urls("mediation.urls")
@pytest.mark.parametrize(
    "raw",
    [
        '{"channel": 1e400}',
        '{"channel": -1e400}',
        '{"channel": 1e308}',
        '{"channel": 1.5}',
        '{"channel": 1.0}',
        '{"channel": "1"}',
        '{"channel": true}',
        '{"channel": 99999999999999999999999}',
    ],
)
def test_numeric_fields_refuse_floats_infinities_and_out_of_range(township, raw):
    import json

    api = client_for(staff(township.committee, Role.MEDIATOR))
    override = raw[1:-1]
    key, value = override.split(": ", 1)
    body = json.dumps(_dispute_body()).rstrip("}") + f", {key}: {value}}}"

    response = api.post("/api/cases/disputes/", body, content_type="application/json")

    assert response.status_code == 400, response.content
    assert response.json()["code"] in ("invalid", "parse_error")
    assert not Case.objects.exists()


@pytest.mark.urls("mediation.urls")
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("reassign", {"reason": 0}),
        ("reassign", {"reason": "x", "to_agency": "1"}),
        ("approve-extension", {"reason": "x", "extra_days": 3.0}),
        ("approve-extension", {"reason": "x", "extra_days": "3"}),
        ("notes", {"text": ["督办"]}),
        ("acknowledge", {"note": False}),
    ],
)
def test_api_bodies_of_the_wrong_type_are_refused_not_coerced(supervisor, escalation, path, body):
    response = client_for(supervisor).post(
        f"/api/escalations/{escalation.pk}/{path}/", body, format="json"
    )

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert Escalation.objects.get().status == "open"


@pytest.mark.urls("mediation.urls")
def test_the_refusals_speak_english_on_request(township):
    api = client_for(staff(township.committee, Role.MEDIATOR))

    refused = api.get("/api/cases/", {"q": "a\x00"}, HTTP_ACCEPT_LANGUAGE="en")
    typed = api.post(
        "/api/notifications/mark-read/", {"ids": ["1"]}, format="json", HTTP_ACCEPT_LANGUAGE="en"
    )

    assert refused.json()["details"]["q"] == ["Must not contain control characters (U+0000)."]
    assert typed.json()["details"]["ids"] == ["Must be an integer."]


@pytest.mark.parametrize("target", ["0", "home", "web:supervision", "https://evil.example/"])
def test_a_next_that_is_not_a_path_goes_to_the_queue(login, supervisor, escalation, target):
    # Found by the web fuzzer: next=0 made redirect() look for a view named "0" (a 500).
    response = login(supervisor).post(
        reverse("web:supervision_bulk_ack"), {"escalation": str(escalation.pk), "next": target}
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("web:supervision")
