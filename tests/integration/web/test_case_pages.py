"""Case lists, the case page, transitions from it, conflicts and the ID-number reveal."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mediation.accounts.models import Role
from mediation.cases.models import Case, CaseEvent, Category
from mediation.cases.services import case_transition
from mediation.notifications.models import Notification
from mediation.parties.models import IdNumberRevealLog
from tests.factories.accounts import staff
from tests.factories.cases import (
    dispute_in_state,
    id_number,
    petition_in_state,
    receive_petition,
    register_dispute,
)
from tests.integration.web.conftest import grant_reveal

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("tests.integration.web.urls"),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


def _mediating_case(township, now, **kwargs) -> Case:
    return dispute_in_state("mediating", township=township, now=now, **kwargs)


# Lists ---------------------------------------------------------------------------------------


def test_login_page_is_in_chinese_and_logs_in(client, mediator):
    mediator.set_password("tiaojie-2026")
    mediator.save()

    page = client.get("/accounts/login/")
    response = client.post(
        "/accounts/login/", {"username": mediator.username, "password": "tiaojie-2026"}
    )

    assert page.status_code == 200
    assert "工作人员登录" in page.content.decode()
    assert response.status_code == 302
    assert response["Location"] == "/"


@override_settings(AXES_ENABLED=True, AXES_FAILURE_LIMIT=3)
def test_the_login_page_is_throttled_by_axes(client, mediator):
    mediator.set_password("tiaojie-2026")
    mediator.save()
    for _ in range(3):
        client.post("/accounts/login/", {"username": mediator.username, "password": "wrong"})

    response = client.post(
        "/accounts/login/", {"username": mediator.username, "password": "tiaojie-2026"}
    )

    assert response.status_code == 429


def test_pages_redirect_anonymous_users_to_the_login(client):
    response = client.get("/cases/mine/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_my_cases_lists_overdue_first_then_due_today_then_yellow_then_the_rest(
    login, township, now, set_now
):
    # Given four disputes registered on different days (triage: 1 working day)
    mediator_case_days = {"overdue": 6, "today": 1, "soon": 0}
    cases = {}
    for label, days_ago in mediator_case_days.items():
        cases[label] = register_dispute(
            township, now=now - dt.timedelta(days=days_ago), title=f"纠纷-{label}"
        )
    cases["rest"] = _mediating_case(township, now, title="纠纷-rest")
    holder = staff(township.centre, Role.SUPERVISOR)
    Case.objects.filter(pk__in=[c.pk for c in cases.values()]).update(assignee=holder)

    # When the assignee opens "my cases"
    response = login(holder).get(reverse("web:cases_mine"))

    # Then the order is by urgency and the cards are labelled
    html = response.content.decode()
    assert response.status_code == 200
    positions = [html.index(f"纠纷-{label}") for label in ("overdue", "today", "soon", "rest")]
    assert positions == sorted(positions)
    assert "红牌" in html
    assert "今日到期" in html
    assert "黄牌" in html


def test_agency_cases_lists_only_the_agencys_cases(login, township, outsider, now):
    ours = register_dispute(township, now=now, title="本镇纠纷")
    theirs_township = outsider.agency.parent
    assert theirs_township is not None
    supervisor = staff(township.centre, Role.SUPERVISOR)

    response = login(supervisor).get(reverse("web:cases_agency"))
    other = login(outsider).get(reverse("web:cases_agency"))

    assert response.status_code == 200
    assert ours.number in response.content.decode()
    assert ours.number not in other.content.decode()


def test_case_list_runs_a_constant_number_of_queries(login, township, now):
    supervisor = staff(township.centre, Role.SUPERVISOR)
    client = login(supervisor)
    for i in range(2):
        register_dispute(township, now=now, title=f"纠纷{i}")
    client.get(reverse("web:cases_agency"))  # warm up caches (content types, sessions)

    with CaptureQueriesContext(connection) as few:
        client.get(reverse("web:cases_agency"))
    for i in range(2, 14):
        register_dispute(township, now=now, title=f"纠纷{i}")
    _mediating_case(township, now)
    with CaptureQueriesContext(connection) as many:
        response = client.get(reverse("web:cases_agency"))

    assert response.status_code == 200
    assert len(response.context["rows"]) == 15
    assert len(many.captured_queries) == len(few.captured_queries)


# The case page -------------------------------------------------------------------------------


def test_case_page_shows_parties_masked_clocks_with_explanation_and_the_timeline(
    login, township, now
):
    case = _mediating_case(township, now)
    mediator = case.assignee

    response = login(mediator).get(reverse("web:case_detail", args=[case.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "张三" in html
    assert id_number(1) not in html
    assert id_number(1)[:3] + "*" * 11 + id_number(1)[-4:] in html
    assert "人民调解期限" in html
    assert "名义到期日" in html
    assert "起算日 2026-03-11 不计入" in html  # the clock's explanation lines
    assert "2026-04-10" in html  # 30 days from 2026-03-11
    for action in ("登记", "研判分流", "交办", "受理", "开始调解"):
        assert action in html
    assert "2026-03-11 10:00" in html  # event times in Asia/Shanghai
    assert "受理登记 → 调解中" in html
    # Only what the mediator may do now is offered.
    assert 'id="action-record_agreement"' in html
    assert 'id="action-triage"' not in html


def test_case_page_is_404_out_of_scope(login, township, outsider, now):
    case = _mediating_case(township, now)

    response = login(outsider).get(reverse("web:case_detail", args=[case.pk]))
    missing = login(outsider).get(reverse("web:case_detail", args=[999999]))

    assert response.status_code == 404
    assert missing.status_code == 404


def test_petitioner_identity_is_hidden_from_the_accused_agency(login, township, now):
    """An accusation against the police station, filed there and passed on to the 信访办."""
    police = staff(township.police_station, Role.POLICE_OFFICER)
    petition = receive_petition(
        township,
        now=now,
        actor=police,
        petition_type="accusation",
        title="检举派出所民警违规办案",
        accused_agency_id=township.police_station.pk,
    )
    for name, data in (
        ("register", {"petition_type": "accusation"}),
        ("forward", {"to_agency": township.petition_office.pk, "mode": "forward"}),
    ):
        case_transition(case_id=petition.pk, transition=name, actor=police, now=now, data=data)
    accused = staff(township.police_station, Role.POLICE_OFFICER, n=1)
    receiver = staff(township.petition_office, Role.PETITION_OFFICER)

    hidden = login(accused).get(reverse("web:case_detail", args=[petition.pk]))
    shown = login(receiver).get(reverse("web:case_detail", args=[petition.pk]))

    assert hidden.status_code == 200
    assert "（保密）" in hidden.content.decode()
    assert "王五" not in hidden.content.decode()
    assert "王五" in shown.content.decode()


def test_a_transition_from_the_case_page_writes_one_event(login, township, now):
    case = _mediating_case(township, now)
    mediator = case.assignee
    events_before = CaseEvent.objects.filter(case=case).count()

    response = login(mediator).post(
        reverse("web:case_act", args=[case.pk, "record_agreement"]),
        {
            "expected_version": case.version,
            "form": "written",
            "text": "被申请人于十日内赔偿申请人三千元。",
            "performance_due_on": "2026-03-21",
        },
        follow=True,
    )

    case.refresh_from_db()
    assert response.status_code == 200
    assert case.state == "agreement_reached"
    assert CaseEvent.objects.filter(case=case).count() == events_before + 1
    assert "已完成：达成协议" in response.content.decode()


def test_a_stale_page_shows_a_conflict_message_not_an_error(login, township, now):
    case = _mediating_case(township, now)
    mediator = case.assignee
    stale_version = case.version
    # Someone else acts first.
    case_transition(
        case_id=case.pk,
        transition="suspend",
        actor=mediator,
        now=now,
        data={"reason": "等待伤情鉴定"},
    )

    response = login(mediator).post(
        reverse("web:case_act", args=[case.pk, "record_agreement"]),
        {
            "expected_version": stale_version,
            "form": "written",
            "text": "李四于本月底前赔偿张三医疗费三千元，双方不再追究。",
        },
        follow=True,
    )

    case.refresh_from_db()
    assert response.status_code == 200
    assert "案件已被他人更新，请刷新后重试" in response.content.decode()
    assert case.state == "suspended"


def test_invalid_step_data_re_renders_the_form_with_errors(login, township, now):
    case = _mediating_case(township, now)
    mediator = case.assignee

    response = login(mediator).post(
        reverse("web:case_act", args=[case.pk, "close_failed"]),
        {"expected_version": case.version, "reason": "调解不成"},
    )

    html = response.content.decode()
    case.refresh_from_db()
    assert response.status_code == 200
    assert "终止调解须告知当事人其他解决途径" in html
    assert re.search(r'<details id="action-close_failed"[^>]* open>', html)
    assert case.state == "mediating"


def test_an_action_the_user_may_not_take_is_refused_with_a_message(login, township, now):
    case = _mediating_case(township, now)
    clerk = staff(township.committee, Role.COURT_CLERK)  # sees the case, may not mediate

    response = login(clerk).post(
        reverse("web:case_act", args=[case.pk, "record_agreement"]),
        {
            "expected_version": case.version,
            "form": "written",
            "text": "李四于本月底前赔偿张三医疗费三千元，双方不再追究。",
        },
        follow=True,
    )

    case.refresh_from_db()
    assert response.status_code == 200
    assert "您无权对本案执行「达成协议」" in response.content.decode()
    assert case.state == "mediating"


def test_reveal_id_number_asks_a_purpose_logs_and_shows_it(login, township, now):
    case = _mediating_case(township, now)
    mediator = grant_reveal(case.assignee)
    party = case.case_parties.get(role="applicant").party
    url = reverse("web:party_reveal", args=[case.pk, party.pk])

    page = login(mediator).get(reverse("web:case_detail", args=[case.pk]))
    without_purpose = login(mediator).post(url, {"purpose": ""})
    response = login(mediator).post(url, {"purpose": "制作调解协议书"})

    assert "查看完整身份证号" in page.content.decode()
    assert id_number(1) not in without_purpose.content.decode()
    assert response.status_code == 200
    assert id_number(1) in response.content.decode()
    log = IdNumberRevealLog.objects.get()
    assert (log.viewer_id, log.party_id, log.purpose) == (mediator.pk, party.pk, "制作调解协议书")
    assert log.context == f"case:{case.pk}"
    assert "no-store" in response["Cache-Control"]


def test_reveal_is_refused_without_the_permission(login, township, now):
    case = _mediating_case(township, now)
    party = case.case_parties.get(role="applicant").party

    response = login(case.assignee).post(
        reverse("web:party_reveal", args=[case.pk, party.pk]), {"purpose": "核对"}, follow=True
    )

    assert "无权查看完整身份证号" in response.content.decode()
    assert not IdNumberRevealLog.objects.exists()


# Referral inbox ------------------------------------------------------------------------------


def test_referral_inbox_lists_cases_waiting_for_my_agency_with_their_ack_clock(
    login, township, now, mediator
):
    case = dispute_in_state("assigned", township=township, now=now)

    response = login(mediator).get(reverse("web:referrals"))
    other = login(staff(township.police_station, Role.POLICE_OFFICER)).get(reverse("web:referrals"))

    html = response.content.decode()
    assert response.status_code == 200
    assert case.number in html
    assert "交办签收确认期限" in html
    assert "2026-03-16" in html  # 3 working days after Wednesday 2026-03-11
    assert case.number not in other.content.decode()


def test_the_mediator_accepts_a_referral_from_the_case_page(login, township, now, mediator):
    case = dispute_in_state("assigned", township=township, now=now)

    page = login(mediator).get(reverse("web:case_detail", args=[case.pk]))
    response = login(mediator).post(
        reverse("web:case_act", args=[case.pk, "accept"]),
        {"expected_version": case.version},
        follow=True,
    )

    case.refresh_from_db()
    assert 'id="action-accept"' in page.content.decode()
    assert case.state == "accepted"
    assert case.holder_agency_id == township.committee.pk
    assert case.assignee_id == mediator.pk
    assert response.redirect_chain[-1][0] == reverse("web:case_detail", args=[case.pk])


def test_the_sender_keeps_following_what_it_handed_over(login, township, now, petition_officer):
    """反馈: after 转送 and the receiver's 受理, the sending 信访办 still opens the case (its
    progress and outcome), takes no step on it, and is told who acts now."""
    petition = petition_in_state("forwarded", township=township, now=now)
    receiver = staff(township.judicial_office, Role.PETITION_OFFICER)
    login(receiver).post(
        reverse("web:case_act", args=[petition.pk, "accept_forwarded"]),
        {"expected_version": petition.version},
    )

    page = login(petition_officer).get(reverse("web:case_detail", args=[petition.pk]))

    petition.refresh_from_db()
    html = page.content.decode()
    assert (petition.state, petition.holder_agency_id) == ("accepted", township.judicial_office.pk)
    assert page.status_code == 200
    assert 'id="action-' not in html
    assert "下一步由谁办理" in html
    assert township.judicial_office.name in html
    assert "贵单位曾承办或移送本案" in html
    assert Notification.objects.filter(
        recipient=petition_officer, kind="feedback", case=petition
    ).exists()


# Services beside the transitions ---------------------------------------------------------------


def test_a_rereview_hearing_pauses_and_resumes_the_clock_from_the_case_page(
    login, township, now, set_now
):
    petition = petition_in_state("under_rereview", township=township, now=now)
    officer = staff(petition.holder_agency, Role.PETITION_OFFICER)
    client = login(officer)
    url = reverse("web:clock_pause", args=[petition.pk, "petition.rereview", "pause"])

    page = client.get(reverse("web:case_detail", args=[petition.pk]))
    set_now(now + dt.timedelta(days=2))
    client.post(url, {"reason": "组织听证", "on": "2026-03-12"})
    paused = petition.clocks.get(rule_code="petition.rereview")
    set_now(now + dt.timedelta(days=5))
    client.post(
        reverse("web:clock_pause", args=[petition.pk, "petition.rereview", "resume"]),
        {"on": "2026-03-15"},
    )
    resumed = petition.clocks.get(rule_code="petition.rereview")

    assert "暂停计算（听证时间不计入）" in page.content.decode()
    assert paused.status == "paused"
    assert resumed.status == "running"
    assert resumed.paused_days == 3  # 03-12 to 03-14: the resume day counts again


def test_a_petition_in_handling_is_referred_to_people_s_mediation(
    login, township, now, petition_officer
):
    petition = petition_in_state("handling", township=township, now=now)

    response = login(petition_officer).post(
        reverse("web:refer_mediation", args=[petition.pk]),
        {
            "to_agency": township.committee.pk,
            "title": "王五与村委会征地补偿款分配纠纷",
            "category": Category.objects.get(code="ZDCQ").pk,
            "note": "双方同意调解",
        },
        follow=True,
    )

    dispute = Case.objects.get(spawned_from=petition)
    assert "已转人民调解" in response.content.decode()
    assert dispute.referrals.get().to_agency_id == township.committee.pk
