"""The people's own door (issue 14): apply online, the 查询码, the public timeline, ratings.

Dates: the `now` fixture is Wed 2026-03-11 10:00 Asia/Shanghai.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from mediation.accounts.models import Role
from mediation.cases import lookup
from mediation.cases.models import Case, CaseEvent, CaseLookupCode
from mediation.cases.services import case_transition
from mediation.deadlines.models import Clock
from mediation.notifications.models import Delivery, Notification
from mediation.parties.models import Party
from mediation.public import services
from mediation.public.models import LookupAttempt, OnlineApplication, Rating
from mediation.public.selectors import public_view, satisfaction_by_agency_month
from tests.factories.accounts import staff
from tests.factories.cases import (
    advance,
    id_number,
    party_input,
    petition_in_state,
    receive_petition,
    register_dispute,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("mediation.urls"),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

APPLICANT_PHONE = "13912345678"


def form_data(township, **overrides):
    from mediation.cases.models import Category

    data = {
        "applicant_name": "赵六",
        "applicant_id_number": id_number(41),
        "applicant_phone": APPLICANT_PHONE,
        "applicant_address": "将官池镇将官池村",
        "other_name": "钱七",
        "other_phone": "13800001111",
        "other_address": "将官池村二组",
        "intake_agency": township.centre.pk,
        "place": "将官池村二组",
        "category": Category.objects.get(code="LL").pk,
        "summary": "邻居在两家之间的通道上堆放杂物，影响通行。",
        "requests": "1. 清除杂物；2. 恢复通道。",
        "sms_consent": "on",
        "privacy": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def apply(client, township, **overrides):
    return client.post(reverse("web:public_apply"), form_data(township, **overrides))


def code_from(response) -> str:
    html = response.content.decode()
    start = html.index('id="lookup-code">') + len('id="lookup-code">')
    return html[start : html.index("<", start)]


# Applying ---------------------------------------------------------------------------------------


def test_the_privacy_notice_comes_before_the_form(township):
    client = Client()

    first = client.get(reverse("web:public_apply"))
    form = client.get(reverse("web:public_apply") + "?step=form")

    assert first.status_code == 200
    assert "个人信息处理告知" in first.content.decode()
    assert 'name="applicant_name"' not in first.content.decode()
    assert 'name="applicant_name"' in form.content.decode()
    assert 'name="privacy"' in form.content.decode()


def test_an_online_application_is_a_registration_at_the_centre_with_channel_online(township, now):
    response = apply(Client(), township)

    assert response.status_code == 200, response.content.decode()[:2000]
    case = Case.objects.get()
    assert case.channel.code == "online_application"
    assert case.channel.name == "网上申请"
    assert case.holder_agency == township.centre
    assert case.registering_agency == township.centre
    assert case.state == "registered"
    assert case.assignee is None
    # The same clock as a registration at the window: triage by the 综治中心.
    assert list(Clock.objects.filter(case=case).values_list("rule_code", flat=True)) == [
        "dispute.triage"
    ]
    assert CaseEvent.objects.get(case=case).transition == "register"
    roles = sorted(case.case_parties.values_list("role", "party__name"))
    assert roles == [("applicant", "赵六"), ("respondent", "钱七")]
    app = OnlineApplication.objects.get(case=case)
    assert app.requests == "1. 清除杂物；2. 恢复通道。"
    assert app.privacy_notice_version == "2026-1"
    assert "申请事项" in case.description
    code = code_from(response)
    assert len(lookup.normalise(code)) == 12
    assert case.number in response.content.decode()


def test_the_code_is_stored_only_as_a_keyed_hash(township):
    response = apply(Client(), township)
    code = lookup.normalise(code_from(response))

    row = CaseLookupCode.objects.get()
    assert code not in (row.nonce, row.code_hash)
    assert row.code_hash == lookup.code_hash(code)
    assert not Notification.objects.filter(body__contains=code).exists()
    assert not Notification.objects.filter(subject__contains=code).exists()
    with override_settings(LOOKUP_CODE_KEY="another-key"):
        assert lookup.lookup_case_id(code) is None


def test_codes_avoid_look_alike_characters_and_are_different_per_case(township, now):
    codes = {register_dispute(township, now=now).lookup_code for _ in range(20)}

    assert len(codes) == 20
    for code in codes:
        bare = code.replace("-", "")
        assert len(bare) == 12
        assert not set(bare) & set("0O1IL2Z5S8BUVDQGJ")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("applicant_id_number", "110105198001010000", "校验码"),
        ("applicant_phone", "12345", "电话号码无效"),
        ("applicant_name", "\u200b\u200b", "可见的文字"),
        ("summary", "", "必填"),
        ("summary", "长" * 5001, "5000"),
        ("privacy", None, "必填"),
        ("intake_agency", "999999999", "选择"),
    ],
)
def test_bad_input_is_a_form_error_and_registers_nothing(township, field, value, message):
    response = apply(Client(), township, **{field: value})

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Case.objects.exists()


def test_a_second_open_application_of_the_same_person_is_told_not_registered(township):
    client = Client()
    first = apply(client, township)
    number = Case.objects.get().number

    again = apply(client, township, summary="同一件事再申请一次")

    assert first.status_code == again.status_code == 200
    assert "无需重复提交" in again.content.decode()
    assert number in again.content.decode()
    assert Case.objects.count() == 1


@override_settings(PUBLIC_APPLY_PER_PHONE_PER_DAY=2)
def test_submissions_per_phone_are_limited(township):
    client = Client()
    for n in range(2):
        response = apply(client, township, applicant_id_number=id_number(50 + n))
        assert response.status_code == 200
        assert "申请已提交" in response.content.decode()

    third = apply(client, township, applicant_id_number=id_number(52))

    assert third.status_code == 429
    assert "提交次数过多" in third.content.decode()
    assert Case.objects.count() == 2


@override_settings(PUBLIC_APPLY_PER_ADDRESS_PER_DAY=1)
def test_submissions_per_address_are_limited(township):
    client = Client()
    assert apply(client, township).status_code == 200

    response = apply(
        client, township, applicant_phone="13700000001", applicant_id_number=id_number(60)
    )

    assert response.status_code == 429
    assert Case.objects.count() == 1


def test_what_an_applicant_types_reaches_staff_escaped(township, supervisor):
    script = '<script>alert("x")</script>'
    apply(Client(), township, applicant_name=f"赵{script}", summary=f"情况{script}")
    case = Case.objects.get()
    staff_client = Client()
    staff_client.force_login(supervisor)

    html = staff_client.get(reverse("web:case_detail", args=[case.pk])).content.decode()

    assert script not in html
    assert "&lt;script&gt;" in html


def test_staff_registration_issues_a_code_too_and_the_acceptance_notice_prints_it(
    township, now, petition_officer
):
    petition = petition_in_state("handling", township=township, now=now)
    client = Client()
    client.force_login(petition_officer)

    html = client.get(reverse("web:print_acceptance_notice", args=[petition.pk])).content.decode()

    code = lookup.lookup_code_of(petition.pk)
    assert len(code) == 14
    assert code in html
    assert lookup.lookup_case_id(code) == petition.pk


# SMS consent -----------------------------------------------------------------------------------


def test_the_code_goes_by_sms_only_to_parties_who_consented(township, now):
    consenting = party_input(1, name="张三")
    consenting = consenting.__class__(**{**consenting.__dict__, "sms_consent": True})
    silent = party_input(2, role="respondent", name="李四")

    case = register_dispute(township, now=now, parties=[consenting, silent])

    notes = Notification.objects.filter(case=case, kind="party_sms")
    assert [n.party.name for n in notes] == ["张三"]
    note = notes.get()
    assert note.recipient_id is None
    assert note.data["sms"]["template"] == "lookup_code"
    assert "{lookup_code}" in note.subject
    delivery = Delivery.objects.get(notification=note)
    assert delivery.channel == "sms"
    assert Party.objects.get(name="张三").sms_consent is True
    assert Party.objects.get(name="李四").sms_consent is False


def test_party_sms_waits_for_the_quiet_hours_to_end(township):
    late = dt.datetime(2026, 3, 11, 22, 30, tzinfo=lookup_tz())
    p = party_input(1, name="张三")
    p = p.__class__(**{**p.__dict__, "sms_consent": True})

    register_dispute(township, now=late, parties=[p])

    delivery = Delivery.objects.get(channel="sms")
    assert delivery.next_attempt_at == dt.datetime(2026, 3, 12, 8, 0, tzinfo=lookup_tz())


def lookup_tz():
    from mediation.core.clock import SHANGHAI

    return SHANGHAI


def test_acceptance_and_closing_send_their_sms_and_triage_sends_none(township, now):
    p = party_input(1, name="张三")
    p = p.__class__(**{**p.__dict__, "sms_consent": True})
    case = register_dispute(township, now=now, parties=[p, party_input(2, role="respondent")])
    case = advance(case, "triage", township=township, now=now)
    case = advance(case, "assign", township=township, now=now)
    after_assign = Notification.objects.filter(kind="party_sms").count()
    case = advance(case, "accept", township=township, now=now)

    templates = list(
        Notification.objects.filter(kind="party_sms")
        .order_by("pk")
        .values_list("data__sms__template", flat=True)
    )
    assert after_assign == 1
    assert templates == ["lookup_code", "accepted"]


# Tracking --------------------------------------------------------------------------------------


def _without_csrf(response) -> str:
    import re

    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", response.content.decode())


def track(client, code, last4):
    return client.post(reverse("web:public_track"), {"code": code, "phone_last4": last4})


def test_tracking_with_code_and_phone_shows_the_public_timeline(township, now):
    client = Client()
    code = code_from(apply(client, township))
    case = Case.objects.get()
    advance(case, "triage", township=township, now=now)
    advance(case, "assign", township=township, now=now)
    advance(case, "accept", township=township, now=now)

    found = track(client, code.lower().replace("-", " "), APPLICANT_PHONE[-4:])
    page = client.get(reverse("web:public_case"))

    assert found.status_code == 302
    html = page.content.decode()
    assert case.number in html
    assert "收到申请，已登记" in html
    assert "交办" in html
    assert township.committee.name in html
    assert "受理" in html
    assert "调解期限" in html or "人民调解" in html
    # internal steps and people: no 研判分流, no staff names, no other party
    assert "研判分流" not in html
    assert "钱七" not in html
    assert "13800001111" not in html
    for user in case.events.exclude(actor=None).values_list("actor__username", flat=True):
        assert user not in html
    assert LookupAttempt.objects.filter(success=True, case=case).count() == 1


@override_settings(PUBLIC_LOOKUP_MIN_SECONDS=0.4, PUBLIC_LOOKUP_FAILURES_PER_ADDRESS=100)
def test_a_wrong_code_and_a_wrong_phone_get_the_same_answer_in_the_same_time(township):
    import statistics

    client = Client()
    code = code_from(apply(client, township))

    def timed(c, last4):
        started = time.monotonic()
        response = track(client, c, last4)
        return response, time.monotonic() - started

    phone_runs = [timed(code, f"000{n}") for n in range(3)]
    code_runs = [timed(f"ACEF-HKMN-PR{x}{x}", APPLICANT_PHONE[-4:]) for x in "TWX"]

    answers = {_without_csrf(r) for r, _t in phone_runs + code_runs}
    assert {r.status_code for r, _t in phone_runs + code_runs} == {200}
    assert len(answers) == 1
    assert "查询码或手机号后四位不正确" in answers.pop()
    t_phone = statistics.median(t for _r, t in phone_runs)
    t_code = statistics.median(t for _r, t in code_runs)
    assert min(t_phone, t_code) >= 0.4
    assert abs(t_phone - t_code) < 0.1
    attempts = list(LookupAttempt.objects.order_by("pk").values_list("success", "case_id"))
    assert attempts == [(False, None)] * 6
    assert all(len(h) == 64 for h in LookupAttempt.objects.values_list("address_hash", flat=True))


@override_settings(PUBLIC_LOOKUP_FAILURES_PER_CODE=3, PUBLIC_LOOKUP_FAILURES_PER_ADDRESS=100)
def test_failures_per_code_end_in_429_even_with_the_right_phone(township):
    client = Client()
    code = code_from(apply(client, township))
    for last4 in ("0001", "0002", "0003"):
        assert track(client, code, last4).status_code == 200

    blocked = track(client, code, APPLICANT_PHONE[-4:])

    assert blocked.status_code == 429
    assert "查询失败次数过多" in blocked.content.decode()
    assert not LookupAttempt.objects.filter(success=True).exists()


@override_settings(PUBLIC_LOOKUP_FAILURES_PER_ADDRESS=3)
def test_failures_per_address_end_in_429(township):
    client = Client()
    for n in range(3):
        assert track(client, f"ACEF-HKMN-PR{'TWXY'[n]}{'TWXY'[n]}", "1234").status_code == 200

    assert track(client, "ACEF-HKMN-PRTW", "1234").status_code == 429
    other = Client(REMOTE_ADDR="10.0.0.9")
    assert track(other, "ACEF-HKMN-PRTW", "1234").status_code == 200


def test_the_public_timeline_hides_notes_escalations_and_accusation_respondents(township, now):
    petitioner = party_input(3, role="petitioner", name="王五")
    accused = party_input(4, role="respondent", name="孙八")
    case = receive_petition(
        township,
        now=now,
        parties=[petitioner, accused],
        petition_type="accusation",
        accused_agency_id=township.police_station.pk,
    )
    officer = staff(township.petition_office, Role.PETITION_OFFICER)
    case_transition(
        case_id=case.pk,
        transition="register",
        actor=officer,
        now=now,
        data={"petition_type": "accusation", "note": "内部备注：孙八与王五有矛盾"},
    )
    code = lookup.lookup_code_of(case.pk)

    assert (
        services.public_lookup(
            code=code, phone_last4=accused.phone[-4:], client_address="10.1.1.1", now=now
        )
        is None
    )
    found = services.public_lookup(
        code=code, phone_last4=petitioner.phone[-4:], client_address="10.1.1.1", now=now
    )
    view = public_view(case_id=found.case_id, party_id=found.party_id, now=now)
    text = repr(view.entries)
    assert "内部备注" not in text
    assert "孙八" not in text


def test_every_event_kind_not_marked_public_stays_off_the_timeline():
    from mediation.cases import workflow
    from mediation.cases.models import EventKind

    hidden = [k for k in EventKind.values if not workflow.event_is_public("petition", k)]

    for kind in ("escalation_acknowledge", "escalation_note", "pause_clock", "upload_attachment"):
        assert kind in hidden
    assert workflow.event_is_public("petition", "forward")
    assert workflow.event_is_public("dispute", "register")
    assert not workflow.event_is_public("dispute", "triage")
    assert not workflow.event_is_public("dispute", "some_future_kind")


# Rating ------------------------------------------------------------------------------------------


def _closed_dispute(township, now):
    client = Client()
    code = code_from(apply(client, township))
    case = Case.objects.get()
    for name in (
        "triage",
        "assign",
        "accept",
        "start_mediation",
        "close_failed",
    ):
        case = advance(case, name, township=township, now=now)
    return client, code, case


def test_a_party_rates_after_closing_once_and_may_change_it_within_the_window(
    township, now, set_now
):
    client, code, case = _closed_dispute(township, now)
    track(client, code, APPLICANT_PHONE[-4:])

    first = client.post(reverse("web:public_case"), {"value": "basic", "comment": "还行"})
    set_now(now + dt.timedelta(days=3))
    changed = client.post(reverse("web:public_case"), {"value": "satisfied", "comment": "好"})

    assert first.status_code == changed.status_code == 302
    rating = Rating.objects.get()
    assert (rating.value, rating.comment, rating.changes) == ("satisfied", "好", 1)
    assert rating.agency_id == case.holder_agency_id

    set_now(now + dt.timedelta(days=8))
    late = client.post(reverse("web:public_case"), {"value": "unsatisfied"})
    page = client.get(reverse("web:public_case")).content.decode()
    assert late.status_code == 200
    assert Rating.objects.get().value == "satisfied"
    assert 'id="rating-form"' not in page


def test_rating_before_closing_or_opinion_is_refused(township, now):
    client = Client()
    code = code_from(apply(client, township))
    track(client, code, APPLICANT_PHONE[-4:])

    response = client.post(reverse("web:public_case"), {"value": "satisfied"})

    assert response.status_code == 200
    assert not Rating.objects.exists()


def test_a_petition_may_be_rated_once_its_opinion_was_served(township, now):
    p = party_input(3, role="petitioner", name="王五")
    case = petition_in_state("opinion_issued", township=township, now=now, parties=[p])
    found = services.public_lookup(
        code=lookup.lookup_code_of(case.pk), phone_last4=p.phone[-4:], client_address=None, now=now
    )

    rating = services.rating_submit(
        case_id=found.case_id, party_id=found.party_id, value="basic", comment="", now=now
    )

    assert rating.value == "basic"
    view = public_view(case_id=case.pk, party_id=found.party_id, now=now)
    labels = [e.label for e in view.entries]
    assert "出具处理意见书" in labels
    details = dict(d for e in view.entries for d in e.details)
    assert "至2026年4月10日" in details["救济途径"]


def test_unsatisfied_notifies_the_supervisor_over_the_agency_and_queues_it(
    township, now, supervisor
):
    client, code, case = _closed_dispute(township, now)
    track(client, code, APPLICANT_PHONE[-4:])

    client.post(reverse("web:public_case"), {"value": "unsatisfied", "comment": "没解决"})

    note = Notification.objects.get(kind="rating")
    assert note.recipient.role == Role.SUPERVISOR
    assert note.recipient.agency_id == township.centre.pk
    staff_client = Client()
    staff_client.force_login(note.recipient)
    html = staff_client.get(reverse("web:supervision")).content.decode()
    assert "群众评价：不满意" in html
    assert case.number in html
    assert "没解决" in html
    rating = Rating.objects.get()
    staff_client.post(reverse("web:rating_reviewed", args=[rating.pk]))
    assert Rating.objects.get().reviewed_by == note.recipient


def test_satisfaction_by_agency_and_month(township, now):
    _client, code, case = _closed_dispute(township, now)
    found = services.public_lookup(
        code=code, phone_last4=APPLICANT_PHONE[-4:], client_address=None, now=now
    )
    services.rating_submit(
        case_id=found.case_id, party_id=found.party_id, value="satisfied", comment="", now=now
    )

    rows = satisfaction_by_agency_month(
        agency_ids=None, date_from=dt.date(2026, 3, 1), date_to=dt.date(2026, 3, 31)
    )

    assert [(r["agency__name"], r["total"], r["satisfied"], r["rate"]) for r in rows] == [
        (case.holder_agency.name, 1, 1, 1.0)
    ]


def test_the_statistics_page_and_csv_show_satisfaction_apart_from_the_follow_up(
    township, now, supervisor
):
    _client, code, case = _closed_dispute(township, now)
    found = services.public_lookup(
        code=code, phone_last4=APPLICANT_PHONE[-4:], client_address=None, now=now
    )
    services.rating_submit(
        case_id=found.case_id, party_id=found.party_id, value="unsatisfied", comment="", now=now
    )
    from mediation.reports.services import stats_refresh

    stats_refresh(now=now)
    county_supervisor = staff(township.county_centre, Role.SUPERVISOR)
    client = Client()
    client.force_login(county_supervisor)

    page = client.get(reverse("web:stats")).content.decode()
    csv = client.get(reverse("web:stats_export", args=["satisfaction"])).content.decode("utf-8")

    assert "群众评价满意率" in page
    assert "回访满意度（调解员回访记录）" in page
    lines = csv.lstrip("\ufeff").splitlines()
    assert lines[0] == "机构,月份,评价数,满意,基本满意,不满意,满意率"
    assert lines[1:] == [f"{case.holder_agency.name},2026-03,1,0,0,1,0.0%"]


def test_staff_registration_records_the_sms_consent_ticked_in_the_form(township, supervisor):
    from tests.integration.web.test_register import _form

    client = Client()
    client.force_login(supervisor)
    data = _form(
        parties=[
            {
                "name": "赵六",
                "role": "applicant",
                "id_number": id_number(61),
                "phone": "13900000061",
                "sms_consent": "on",
            },
            {"name": "钱七", "role": "respondent", "id_number": "", "phone": "13900000062"},
        ]
    )

    response = client.post(reverse("web:register", args=["dispute"]), data)

    assert response.status_code == 302
    assert sorted(Party.objects.values_list("name", "sms_consent")) == [
        ("赵六", True),
        ("钱七", False),
    ]
    assert [n.party.name for n in Notification.objects.filter(kind="party_sms")] == ["赵六"]


def test_a_session_recorded_ahead_tells_the_parties_its_time_and_place(township, now):
    from mediation.cases.services import case_service_action

    p = dataclasses.replace(party_input(1, name="张三"), sms_consent=True)
    case = register_dispute(township, now=now, parties=[p, party_input(2, role="respondent")])
    for name in ("triage", "assign", "accept", "start_mediation"):
        case = advance(case, name, township=township, now=now)
    mediator = staff(township.committee, Role.MEDIATOR)
    session = {
        "started_at": "2026-03-13T14:30",
        "place": "将官池村调解室",
        "mediators": "调解员甲",
        "content": "拟召集双方当面调解。",
    }
    past = {**session, "started_at": "2026-03-10T09:00"}

    case_service_action(
        case_id=case.pk, name="record_session", actor=mediator, now=now, data=session
    )
    case_service_action(case_id=case.pk, name="record_session", actor=mediator, now=now, data=past)

    sms = Notification.objects.filter(kind="party_sms", data__sms__template="session").get()
    assert sms.party.name == "张三"
    assert sms.data["sms"]["params"]["place"] == "将官池村调解室"
    assert sms.data["sms"]["params"]["time"] == "2026年03月13日 14:30"
