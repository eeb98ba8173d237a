"""The admin: pages render, transitions run through the case service, audit rows stay put."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.urls import reverse

from mediation.accounts.models import User
from mediation.agencies.models import Agency
from mediation.cases.models import Case, CaseEvent, Channel, Dispute, Extension, Petition
from mediation.cases.services import PartyInput, case_transition, dispute_register
from mediation.core import clock
from mediation.deadlines.models import Clock, HolidayOverride

pytestmark = pytest.mark.django_db

ID_NUMBER = "11010519491231002X"  # the GB 11643 standard's own example


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def demo_people():
    """Agencies and users of the demo township, no cases."""
    call_command("load_demo", cases=0, stdout=StringIO())
    return {u.username: u for u in User.objects.all()}


def _register(user: User, *, title: str = "张某与李某宅基地界址纠纷") -> Case:
    now = clock.now() - dt.timedelta(days=3)
    return dispute_register(
        actor=user,
        title=title,
        channel_id=Channel.objects.get(code="visit").pk,
        received_on=clock.local_date(now),
        parties=[
            PartyInput(name="张三", role="applicant", id_number=ID_NUMBER, phone="13812345678"),
            PartyInput(name="李四", role="respondent"),
        ],
        now=now,
    )


def _accepted_dispute(people: dict[str, User]) -> Case:
    """A dispute held by the township mediation committee, accepted by tiaojie1."""
    case = _register(people["duban1"])
    committee = Agency.objects.get(code="jgc-tjwyh")
    steps = [
        ("duban1", "triage", {"risk_level": "low"}),
        ("duban1", "assign", {"to_agency": committee.pk}),
        ("tiaojie1", "accept", {}),
    ]
    for offset, (who, name, data) in enumerate(steps, start=1):
        case = case_transition(
            case_id=case.pk,
            transition=name,
            actor=people[who],
            now=clock.now() - dt.timedelta(days=3) + dt.timedelta(hours=offset),
            data=data,
        )
    return case


def _change_url(case: Case) -> str:
    name = "dispute" if case.kind == "dispute" else "petition"
    return reverse(f"admin:cases_{name}_change", args=[case.pk])


def test_admin_pages_render_for_a_superuser(client):
    call_command("load_demo", cases=40, seed=3, stdout=StringIO())
    admin = User.objects.get(username="admin")
    client.force_login(admin)
    override = HolidayOverride.objects.create(
        date=dt.date(2027, 1, 1), is_workday=False, name="元旦", source="国办发明电〔2026〕X号"
    )
    dispute = Dispute.objects.order_by("-version").first()
    petition = Petition.objects.order_by("-version").first()
    event = CaseEvent.objects.filter(case=petition).last()
    clock_row = Clock.objects.first()
    agency = Agency.objects.get(code="jgc-pab")

    urls = [
        reverse("admin:cases_dispute_changelist"),
        reverse("admin:cases_dispute_changelist") + "?state=mediating&clock=overdue&q=纠纷",
        reverse("admin:cases_dispute_change", args=[dispute.pk]),
        reverse("admin:cases_dispute_add"),
        reverse("admin:cases_petition_changelist"),
        reverse("admin:cases_petition_changelist") + "?state=handling",
        reverse("admin:cases_petition_change", args=[petition.pk]),
        reverse("admin:cases_petition_add"),
        reverse("admin:cases_caseevent_changelist"),
        reverse("admin:cases_caseevent_change", args=[event.pk]),
        reverse("admin:deadlines_clock_changelist"),
        reverse("admin:deadlines_clock_changelist") + "?overdue=yes",
        reverse("admin:deadlines_clock_changelist") + "?overdue=no&status=running&kind=duty",
        reverse("admin:deadlines_clock_change", args=[clock_row.pk]),
        reverse("admin:agencies_agency_changelist"),
        reverse("admin:agencies_agency_change", args=[agency.pk]),
        reverse("admin:deadlines_holidayoverride_changelist"),
        reverse("admin:deadlines_holidayoverride_change", args=[override.pk]),
        reverse("admin:deadlines_holidayyear_changelist"),
        reverse("admin:accounts_user_changelist"),
        reverse("admin:accounts_user_change", args=[admin.pk]),
        reverse("admin:accounts_user_add"),
        reverse("admin:agencies_agency_add"),
        reverse("admin:deadlines_holidayoverride_add"),
        reverse("admin:deadlines_holidayyear_add"),
        reverse("admin:cases_category_changelist"),
        reverse("admin:cases_channel_changelist"),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url

    holidays = client.get(reverse("admin:deadlines_holidayoverride_changelist"))
    assert "国务院办公厅" in holidays.content.decode()
    assert "调休上班日" in holidays.content.decode()


def test_change_page_shows_only_the_users_transitions(client, demo_people):
    """警调对接: the police station routes its own case to the committee; then only the
    committee (the receiver) has buttons, the station none."""
    police = demo_people["jingcha1"]
    case = _register(police, title="110警情：王某与赵某邻里纠纷")
    client.force_login(police)
    first_page = client.get(_change_url(case)).content.decode()
    committee = Agency.objects.get(code="jgc-tjwyh")
    for offset, (name, data) in enumerate(
        [("triage", {"risk_level": "low"}), ("assign", {"to_agency": committee.pk})], start=1
    ):
        case = case_transition(
            case_id=case.pk,
            transition=name,
            actor=police,
            now=clock.now() - dt.timedelta(days=3) + dt.timedelta(minutes=offset),
            data=data,
        )

    police_page = client.get(_change_url(case)).content.decode()
    client.force_login(demo_people["tiaojie1"])
    committee_page = client.get(_change_url(case)).content.decode()

    assert 'value="triage"' in first_page
    assert "研判分流" in first_page
    assert 'name="_fsm_transition_to"' not in police_page
    assert 'name="_fsm_transition_to"' in committee_page
    assert 'value="accept"' in committee_page
    assert 'value="decline"' in committee_page


def test_a_button_transition_runs_through_the_service(client, demo_people):
    case = _accepted_dispute(demo_people)
    events_before = CaseEvent.objects.filter(case=case).count()
    client.force_login(demo_people["tiaojie1"])

    response = client.post(_change_url(case), {"_fsm_transition_to": "start_mediation"})

    assert response.status_code == 302
    case.refresh_from_db()
    assert case.state == "mediating"
    events = CaseEvent.objects.filter(case=case).order_by("version")
    assert events.count() == events_before + 1
    last = events.last()
    assert (last.transition, last.from_state, last.to_state) == (
        "start_mediation",
        "accepted",
        "mediating",
    )
    assert last.actor == demo_people["tiaojie1"]
    assert last.version == case.version
    assert "已执行「开始调解」。" in _messages(response)


def test_a_form_transition_validates_then_runs_through_the_service(client, demo_people):
    case = _accepted_dispute(demo_people)
    case = case_transition(
        case_id=case.pk,
        transition="start_mediation",
        actor=demo_people["tiaojie1"],
        now=clock.now() - dt.timedelta(days=2),
    )
    url = reverse(
        "admin:cases_dispute_transition",
        kwargs={"object_id": case.pk, "transition_name": "extend"},
    )
    client.force_login(demo_people["tiaojie1"])
    events_before = CaseEvent.objects.filter(case=case).count()

    # The button opens the step form.
    button = client.post(_change_url(case), {"_fsm_transition_to": "extend"})
    assert button.status_code == 302
    assert button.url == url
    page = client.get(url)
    assert page.status_code == 200
    assert "延长天数" in page.content.decode()

    # Missing consent: the step form refuses, nothing is written.
    refused = client.post(url, {"reason": "补充证据", "extra_days": "15", "expected_version": ""})
    assert refused.status_code == 200
    assert "调解延期须经双方当事人同意。" in refused.content.decode()
    case.refresh_from_db()
    assert case.state == "mediating"
    assert CaseEvent.objects.filter(case=case).count() == events_before

    response = client.post(
        url,
        {
            "reason": "双方同意延期，待补充证据",
            "extra_days": "15",
            "parties_consented": "on",
            "expected_version": str(case.version),
        },
    )

    assert response.status_code == 302
    case.refresh_from_db()
    assert case.state == "extended"
    assert case.extension_days == 15
    assert CaseEvent.objects.filter(case=case).count() == events_before + 1
    assert Extension.objects.filter(case=case, extra_days=15).count() == 1
    clock_row = Clock.objects.get(case=case, status="running")
    assert clock_row.extra_days == 15


def test_a_stale_form_is_refused_with_a_message(client, demo_people):
    case = _accepted_dispute(demo_people)
    url = reverse(
        "admin:cases_dispute_transition",
        kwargs={"object_id": case.pk, "transition_name": "refuse"},
    )
    client.force_login(demo_people["tiaojie1"])

    response = client.post(
        url, {"reason": "被申请人拒绝调解", "expected_version": str(case.version - 1)}
    )

    assert response.status_code == 302
    assert any("已被他人更新" in m for m in _messages(response))
    case.refresh_from_db()
    assert case.state == "accepted"


def test_a_user_without_the_role_gets_an_error_and_nothing_changes(client, demo_people):
    case = _register(demo_people["jingcha1"], title="110警情：王某与赵某邻里纠纷")
    client.force_login(demo_people["jingcha1"])
    url = reverse(
        "admin:cases_dispute_transition",
        kwargs={"object_id": case.pk, "transition_name": "transfer"},
    )

    form_page = client.get(url)
    posted_form = client.post(url, {"target": "litigation"})
    button = client.post(_change_url(case), {"_fsm_transition_to": "start_mediation"})

    assert form_page.status_code == 302
    assert any("不能执行「转出」" in m for m in _messages(form_page))
    assert posted_form.status_code == 302
    assert button.status_code == 302
    assert any("未执行" in m for m in _messages(button))
    case.refresh_from_db()
    assert case.state == "registered"
    assert case.version == 1
    assert CaseEvent.objects.filter(case=case).count() == 1


def test_case_fields_cannot_be_edited_or_deleted(client, demo_people):
    case = _accepted_dispute(demo_people)
    client.force_login(User.objects.get(username="admin"))

    edit = client.post(_change_url(case), {"title": "改过的标题"})
    delete = client.get(reverse("admin:cases_dispute_delete", args=[case.pk]))
    changelist = client.get(reverse("admin:cases_dispute_changelist"))

    assert edit.status_code == 403
    assert delete.status_code == 403
    assert "delete_selected" not in changelist.content.decode()
    case.refresh_from_db()
    assert case.title == "张某与李某宅基地界址纠纷"


def test_case_events_are_read_only_in_the_admin(client, demo_people):
    case = _accepted_dispute(demo_people)
    event = CaseEvent.objects.filter(case=case).first()
    client.force_login(User.objects.get(username="admin"))
    change_url = reverse("admin:cases_caseevent_change", args=[event.pk])

    view = client.get(change_url)
    edit = client.post(change_url, {"note": "改写"})
    delete = client.post(reverse("admin:cases_caseevent_delete", args=[event.pk]), {"post": "yes"})
    add = client.get(reverse("admin:cases_caseevent_add"))
    bulk = client.post(
        reverse("admin:cases_caseevent_changelist"),
        {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"},
    )
    changelist = client.get(reverse("admin:cases_caseevent_changelist"))

    assert view.status_code == 200
    assert 'name="_save"' not in view.content.decode()
    assert edit.status_code == 403
    assert delete.status_code == 403
    assert add.status_code == 403
    assert bulk.status_code in (200, 302)
    assert "delete_selected" not in changelist.content.decode()
    assert CaseEvent.objects.filter(pk=event.pk, note=event.note).exists()
    assert CaseEvent.objects.filter(case=case).count() == case.version


def test_registration_through_the_add_view_uses_the_service(client, demo_people):
    client.force_login(demo_people["duban1"])
    today = clock.local_date(clock.now())
    form = {
        "title": "孙某与周某土地承包地界纠纷",
        "description": "承包地相邻，地界不清。",
        "channel": Channel.objects.get(code="grid").pk,
        "received_on": today.isoformat(),
        "mediation_track": "people",
        "risk_level": "low",
        "first_name": "孙建国",
        "first_id_number": ID_NUMBER,
        "first_phone": "139 1234 5678",
        "second_name": "周立军",
    }

    bad = client.post(reverse("admin:cases_dispute_add"), {**form, "first_id_number": "110105"})
    assert bad.status_code == 200
    assert "身份证号位数不对" in bad.content.decode()
    assert not Case.objects.exists()

    response = client.post(reverse("admin:cases_dispute_add"), form)

    case = Case.objects.get()
    assert response.status_code == 302
    assert response.url == _change_url(case)
    assert case.state == "registered"
    assert case.registering_agency.code == "jgc-pab"
    assert [p.party.masked_id for p in case.case_parties.order_by("pk")] == [
        "110***********002X",
        "",
    ]
    assert list(CaseEvent.objects.filter(case=case).values_list("transition", flat=True)) == [
        "register"
    ]
    assert Clock.objects.filter(case=case, rule_code="dispute.triage").count() == 1


def test_the_add_view_shows_a_service_refusal_on_the_form(client, demo_people):
    # The administrator is not an intake role: the service refuses, nothing is written.
    client.force_login(User.objects.get(username="admin"))

    response = client.post(
        reverse("admin:cases_petition_add"),
        {
            "title": "刘某反映低保问题",
            "channel": Channel.objects.get(code="visit").pk,
            "received_on": clock.local_date(clock.now()).isoformat(),
            "headcount": "1",
            "first_name": "刘桂兰",
        },
    )

    assert response.status_code == 200
    assert "您没有登记案件的权限。" in response.content.decode()
    assert not Case.objects.exists()


def test_case_parties_show_masked_id_numbers_only(client, demo_people):
    case = _accepted_dispute(demo_people)
    client.force_login(demo_people["tiaojie1"])

    page = client.get(_change_url(case)).content.decode()

    assert "110***********002X" in page
    assert ID_NUMBER not in page
    assert "138****5678" in page


# One access rule in the admin too ------------------------------------------------------------


def test_a_village_mediator_sees_in_the_admin_only_the_data_of_its_own_cases(client, demo_people):
    """The demo group's view permissions open every admin list; each list is scoped."""
    village = demo_people["tiaojie2"]  # 秋湖村调委会
    own = _register(village, title="秋湖村张某与李某界址纠纷")
    other = _register(demo_people["duban1"], title="镇综治中心受理的另一起纠纷")
    other_party = other.case_parties.first().party
    other_party.name = "外村当事人"
    other_party.save(update_fields=["name"])
    client.force_login(village)

    pages = {
        name: client.get(reverse(f"admin:{name}_changelist")).content.decode()
        for name in (
            "parties_party",
            "cases_dispute",
            "cases_caseevent",
            "deadlines_clock",
            "agencies_agency",
        )
    }

    assert "外村当事人" not in pages["parties_party"]
    assert own.case_parties.first().party.name in pages["parties_party"]
    assert own.number in pages["cases_dispute"]
    assert other.number not in pages["cases_dispute"]
    assert other.number not in pages["cases_caseevent"]
    assert other.number not in pages["deadlines_clock"]
    assert "秋湖村人民调解委员会" in pages["agencies_agency"]
    assert "南石庄村人民调解委员会" not in pages["agencies_agency"]  # a sibling village
    party_page = client.get(reverse("admin:parties_party_change", args=[other_party.pk]))
    assert party_page.status_code == 302  # "does not exist", back to the list


def test_a_group_robot_webhook_url_is_never_shown_back(client):
    admin_user = User.objects.create_superuser("root-admin", password="x")
    agency = Agency.objects.create(
        code="wh",
        name="有机器人的调委会",
        kind="mediation_committee",
        level="township",
        case_number_prefix="机器人",
        webhook_url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=SECRET-KEY-123",
    )
    client.force_login(admin_user)
    url = reverse("admin:agencies_agency_change", args=[agency.pk])
    form = {
        "name": agency.name,
        "code": agency.code,
        "kind": agency.kind,
        "level": agency.level,
        "is_active": "on",
        "case_number_prefix": agency.case_number_prefix,
        "reviewing_organs-TOTAL_FORMS": 0,
        "reviewing_organs-INITIAL_FORMS": 0,
    }

    page = client.get(url).content.decode()
    listing = client.get(reverse("admin:agencies_agency_changelist")).content.decode()
    kept = client.post(url, {**form, "webhook_url": ""})
    agency.refresh_from_db()
    after_blank = agency.webhook_url
    client.post(
        url, {**form, "webhook_url": "https://oapi.dingtalk.com/robot/send?access_token=NEW"}
    )
    agency.refresh_from_db()
    after_new = agency.webhook_url
    client.post(url, {**form, "webhook_url": "", "clear_webhook": "on"})
    agency.refresh_from_db()

    assert "SECRET-KEY-123" not in page
    assert "SECRET-KEY-123" not in listing
    assert kept.status_code == 302
    assert after_blank.endswith("key=SECRET-KEY-123")  # blank keeps what was set
    assert after_new.endswith("access_token=NEW")
    assert agency.webhook_url == ""
