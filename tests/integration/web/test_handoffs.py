"""Every hand-off between agencies, walked through the real web views by each role in turn:
register → route → accept → act → feed back (issue 9, part B), and through the API where the API
has the operation.

Each role has its own browser session (`Desk`); the clock is the test's fixed `now`, moved
forward where a step needs days to pass. Nothing here calls a service directly except to put a
case in a starting state that another test already walked.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from mediation.accounts.models import Role, User
from mediation.agencies.models import Agency, ReviewingOrgan
from mediation.cases.models import Case, Category, Referral
from mediation.escalation.models import Escalation
from mediation.escalation.sweeps import sweep_run
from mediation.notifications.models import Notification
from tests.factories.accounts import head_of, staff
from tests.factories.agencies import Township, township_tree
from tests.factories.cases import channel, dispute_in_state, id_number, petition_in_state

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("mediation.urls"),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


class Desk:
    """One person at their desk: a logged-in browser session of the web pages."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.client = Client()
        self.client.force_login(user)

    def get(self, url: str, **kwargs):
        return self.client.get(url, **kwargs)

    def page(self, case: Case) -> str:
        response = self.client.get(reverse("web:case_detail", args=[case.pk]))
        assert response.status_code == 200, f"{self.user} cannot open {case.number}"
        return response.content.decode()

    def actions(self, case: Case) -> set[str]:
        return set(re.findall(r'id="action-([a-z_]+)"', self.page(case)))

    def act(self, case: Case, transition: str, **data) -> Case:
        version = Case.objects.get(pk=case.pk).version
        response = self.client.post(
            reverse("web:case_act", args=[case.pk, transition]),
            {"expected_version": version, **data},
        )
        assert response.status_code == 302, response.content.decode()[:2000]
        return Case.objects.get(pk=case.pk).as_proxy()

    def refused(self, case: Case, transition: str, **data) -> str:
        """Post a step that must be refused; returns the page's error text."""
        version = Case.objects.get(pk=case.pk).version
        response = self.client.post(
            reverse("web:case_act", args=[case.pk, transition]),
            {"expected_version": version, **data},
            follow=True,
        )
        assert Case.objects.get(pk=case.pk).version == version, "a refused step wrote"
        return response.content.decode()

    def inbox(self) -> str:
        return self.client.get(reverse("web:notifications")).content.decode()

    def register(self, kind: str, **fields) -> Case:
        category = Category.objects.filter(applies_to=kind, is_active=True).first()
        data = {
            "title": "张三与李四宅基地界址纠纷",
            "category": category.pk,
            "channel": channel("visit").pk,
            "received_on": "2026-03-11",
            "description": "双方因宅基地界址发生争执。",
            "mediation_track": "people",
            "risk_level": "low",
            "parties-TOTAL_FORMS": 2,
            "parties-INITIAL_FORMS": 0,
            "parties-MIN_NUM_FORMS": 1,
            "parties-MAX_NUM_FORMS": 50,
            "parties-0-name": "张三",
            "parties-0-role": "applicant",
            "parties-0-id_number": id_number(1),
            "parties-0-phone": "13800000001",
            "parties-0-address": "将官池镇",
            "parties-1-name": "李四",
            "parties-1-role": "respondent",
            "parties-1-id_number": "",
            "parties-1-phone": "",
            "parties-1-address": "将官池镇",
            **fields,
        }
        response = self.client.post(reverse("web:register", args=[kind]), data)
        assert response.status_code == 302, response.content.decode()[:3000]
        return Case.objects.order_by("-pk").first().as_proxy()


def told(user: User, case: Case, kind: str) -> list[Notification]:
    return list(Notification.objects.filter(recipient=user, case=case, kind=kind).order_by("pk"))


@pytest.fixture
def t() -> Township:
    return township_tree("将官池")


# 1. A walk-in case at a mediation committee -------------------------------------------------


def test_a_walk_in_at_the_committee_is_accepted_and_mediated_there(t):
    mediator = Desk(staff(t.committee, Role.MEDIATOR))

    case = mediator.register("dispute")
    actions = mediator.actions(case)
    case = mediator.act(case, "accept_own", accepted_on="2026-03-11")
    case = mediator.act(case, "start_mediation")

    assert "accept_own" in actions
    assert (case.state, case.holder_agency_id, case.assignee_id) == (
        "mediating",
        t.committee.pk,
        mediator.user.pk,
    )
    assert case.clocks.filter(rule_code="dispute.mediate", status="running").exists()


def test_the_centre_may_route_a_committees_walk_in_back_to_it(t):
    mediator = Desk(staff(t.committee, Role.MEDIATOR))
    centre = Desk(staff(t.centre, Role.SUPERVISOR))
    case = mediator.register("dispute")

    case = centre.act(case, "triage", risk_level="medium")
    # The committee sees who acts next, and that it is not itself.
    waiting = mediator.page(case)
    case = centre.act(case, "assign", to_agency=t.committee.pk)
    inbox = mediator.get(reverse("web:referrals")).content.decode()
    case = mediator.act(case, "accept")

    assert "下一步由谁办理" in waiting
    assert t.centre.name in waiting
    assert case.number in inbox
    assert told(mediator.user, case, "handoff")
    assert (case.state, case.holder_agency_id) == ("accepted", t.committee.pk)
    referral = Referral.objects.get(case=case)
    assert (referral.from_agency_id, referral.to_agency_id) == (t.centre.pk, t.committee.pk)
    # 受理 is fed back to the centre that routed it.
    assert told(centre.user, case, "feedback")


def test_every_case_page_tells_a_viewer_who_cannot_act_who_acts_next(t, now):
    case = dispute_in_state("assigned", township=t, now=now)
    centre = Desk(staff(t.centre, Role.SUPERVISOR, n=1))

    html = centre.page(case)

    assert centre.actions(case) == set()
    assert "下一步由谁办理" in html
    block = html.split('id="next-steps"')[1].split("</section>")[0]
    assert t.committee.name in block
    assert "受理" in block
    assert "退回" in block


# 2. 司法确认: the court applied to opens the case and records its own ruling ----------------


def test_the_court_applied_to_opens_the_case_and_records_its_ruling(t, now):
    case = dispute_in_state("agreement_reached", township=t, now=now)
    mediator = Desk(case.assignee)
    clerk = Desk(staff(t.court, Role.COURT_CLERK))
    api_mediator = APIClient()
    api_mediator.force_authenticate(mediator.user)

    before = clerk.get(reverse("web:case_detail", args=[case.pk])).status_code
    case = mediator.act(case, "apply_confirmation", court=t.court.pk, applied_on="2026-03-11")
    court_view = clerk.page(case)
    mediator_actions = mediator.actions(case)
    by_mediator = api_mediator.post(
        f"/api/cases/{case.pk}/transitions/confirm/",
        {"ruling_number": "(2026)豫1003民特1号"},
        format="json",
    )
    case = clerk.act(case, "confirm", ruling_number="(2026)豫1003民特1号")

    assert before == 404  # nobody had applied to it yet
    assert told(clerk.user, case, "handoff")
    assert "被申请人于协议生效后二十日内赔偿申请人损失三千元" in court_view
    assert "张三" in court_view
    assert "李四" in court_view
    assert 'id="timeline"' not in court_view  # the agreement and the parties, not the file
    assert "confirm" not in mediator_actions
    assert by_mediator.status_code == 403
    assert (case.state, case.external_reference) == (
        "performance_monitoring",
        "(2026)豫1003民特1号",
    )
    assert told(mediator.user, case, "handoff")  # the committee learns the ruling
    # The court keeps its view of the case it ruled on.
    assert "司法确认法院" in clerk.page(case)


def test_only_a_court_with_clerks_can_be_applied_to(t, now):
    case = dispute_in_state("agreement_reached", township=t, now=now)
    mediator = Desk(case.assignee)
    empty_court = Agency.objects.create(
        code="empty-court",
        name="无人人民法庭",
        kind="peoples_court",
        level="township",
        parent=t.centre,
        case_number_prefix="无人法庭",
    )

    html = mediator.refused(case, "apply_confirmation", court=empty_court.pk)

    assert "「无人人民法庭」没有可以办理下一步的在岗人员" in html


# 3. 反馈: the referring police station and court follow what they referred ----------------


def test_police_referral_is_accepted_mediated_closed_and_fed_back_to_the_station(t, set_now):
    police = Desk(staff(t.police_station, Role.POLICE_OFFICER))
    mediator = Desk(staff(t.committee, Role.MEDIATOR))
    case = police.register("dispute", title="110警情：张三与李四因琐事打架致伤纠纷")
    case = police.act(case, "triage", risk_level="medium")
    assign = police.page(case)
    case = police.act(case, "assign", to_agency=t.committee.pk)

    case = mediator.act(case, "accept")
    accepted_view = police.page(case)
    case = mediator.act(case, "start_mediation")
    case = mediator.act(
        case,
        "record_agreement",
        form="written",
        text="李四向张三赔礼道歉，并于三日内赔偿医疗费八百元，双方互不追究。",
        performance_due_on="2026-03-14",
    )
    case = mediator.act(case, "monitor_performance")
    set_now(dt.datetime(2026, 3, 20, 10, tzinfo=dt.UTC))
    case = mediator.act(case, "close_resolved", performed="on", satisfaction="satisfied")
    closed_view = police.page(case)

    assert "警调对接" in assign  # the kind follows from who refers
    assert Referral.objects.get(case=case).kind == "police_mediation"
    assert case.state == "closed_resolved"
    feedback = told(police.user, case, "feedback")
    assert [n.subject for n in feedback] == [
        f"【办理反馈】{case.number} 受理",
        f"【办理反馈】{case.number} 回访结案",
    ]
    assert "受理登记" in accepted_view
    assert "结案" in closed_view
    assert police.actions(case) == set()


def test_court_entrusted_mediation_returned_by_the_committee_is_fed_back_to_the_court(t):
    clerk = Desk(staff(t.court, Role.COURT_CLERK))
    mediator = Desk(staff(t.committee, Role.MEDIATOR))
    case = clerk.register("dispute", mediation_track="court_entrusted")
    case = clerk.act(case, "triage", risk_level="low")
    case = clerk.act(case, "assign", to_agency=t.committee.pk, referral_kind="court_mediation")

    case = mediator.act(case, "decline", reason="不属于本调委会受理范围，请改派")

    assert (case.state, case.holder_agency_id) == ("triaged", t.court.pk)
    assert Referral.objects.get(case=case).status == "returned"
    assert [n.subject for n in told(clerk.user, case, "feedback")] == [
        f"【办理反馈】{case.number} 退回"
    ]
    assert "assign" in clerk.actions(case)  # it can route it again


# 4. Level-1 escalations: the head of the agency signs for the 督办单 ----------------------


@pytest.fixture
def overdue_at_the_village(t, now, set_now) -> Escalation:
    """A dispute of the village committee accepted on 02-09: its 30-day period ran out on
    03-11 (end of day), and the morning sweep of 03-12 escalates it to the committee's head."""
    head_of(t.village_committee)  # a supervisor of the village, its head
    mediator = staff(t.village_committee, Role.MEDIATOR)
    start = dt.datetime(2026, 2, 9, 10, tzinfo=dt.UTC)
    set_now(start)
    desk = Desk(mediator)
    case = desk.register("dispute", received_on="2026-02-09")
    desk.act(case, "accept_own", accepted_on="2026-02-09")
    morning = dt.datetime(2026, 3, 12, 1, 0, tzinfo=dt.UTC)
    set_now(morning)
    sweep_run(now=morning, trigger="test")
    return Escalation.objects.get(case=case, level=1)


def test_a_mediator_head_signs_for_the_supervision_notice_from_the_inbox(t, set_now, now):
    head = staff(t.committee, Role.MEDIATOR, n=5)
    t.committee.head = head
    t.committee.save(update_fields=["head"])
    desk = Desk(staff(t.committee, Role.MEDIATOR))
    set_now(dt.datetime(2026, 2, 9, 10, tzinfo=dt.UTC))
    case = desk.register("dispute", received_on="2026-02-09")
    desk.act(case, "accept_own", accepted_on="2026-02-09")
    morning = dt.datetime(2026, 3, 12, 1, 0, tzinfo=dt.UTC)
    set_now(morning)
    sweep_run(now=morning, trigger="test")
    escalation = Escalation.objects.get(case=case, level=1)
    head_desk = Desk(head)

    inbox = head_desk.inbox()
    queue = head_desk.get(reverse("web:supervision"))
    response = head_desk.client.post(
        reverse("web:escalation_action", args=[escalation.pk, "acknowledge"]),
        {"next": reverse("web:notifications")},
    )

    escalation.refresh_from_db()
    assert "签收督办" in inbox
    assert queue.status_code == 200
    assert "我的督办" in queue.content.decode()
    assert case.number in queue.content.decode()
    assert response.status_code == 302
    assert escalation.status == "acknowledged"
    assert escalation.acknowledged_by_id == head.pk


def test_the_head_signs_from_the_case_page_too(overdue_at_the_village, t):
    head = Desk(t.village_committee.head)
    case = overdue_at_the_village.case

    html = head.page(case)
    head.client.post(
        reverse("web:escalation_action", args=[overdue_at_the_village.pk, "acknowledge"]),
        {"next": reverse("web:case_detail", args=[case.pk])},
    )

    overdue_at_the_village.refresh_from_db()
    assert reverse("web:escalation_action", args=[overdue_at_the_village.pk, "acknowledge"]) in html
    assert overdue_at_the_village.status == "acknowledged"


# 5. Referral acceptance clocks escalate against the agency that failed to accept -----------


def test_an_unaccepted_referral_escalates_against_the_receiver(t, now, set_now):
    committee_head = head_of(t.committee)
    centre_head = head_of(t.centre)
    case = dispute_in_state("assigned", township=t, now=now)  # 3 working days: due 03-16
    later = dt.datetime(2026, 3, 17, 1, 0, tzinfo=dt.UTC)

    sweep_run(now=later, trigger="test")

    escalation = Escalation.objects.get(case=case, level=1)
    assert escalation.agency_id == t.committee.pk
    assert escalation.data["responsible_agency"] == t.committee.name
    assert Notification.objects.filter(recipient=committee_head, kind="escalation").exists()
    assert not Notification.objects.filter(recipient=centre_head, kind="escalation").exists()
    set_now(later)
    assert case.number in Desk(committee_head).get(reverse("web:supervision")).content.decode()


# 6. 复查 / 复核: only the reviewing organ the regulation names ------------------------------


def test_the_review_request_is_recorded_by_the_next_agency_up_only(t, now):
    petition = petition_in_state("opinion_issued", township=t, now=now)  # held by the 信访办
    reviewer = Desk(staff(t.centre, Role.SUPERVISOR))  # the 信访办's parent
    village = Desk(staff(t.village_committee, Role.MEDIATOR))
    bureau = Desk(staff(t.county_petition_bureau, Role.PETITION_OFFICER))
    officer = Desk(staff(t.petition_office, Role.PETITION_OFFICER))

    officer_page = officer.page(petition)
    petition = reviewer.act(petition, "request_review", received_on="2026-03-11")

    assert village.get(reverse("web:case_detail", args=[petition.pk])).status_code == 404
    assert bureau.get(reverse("web:case_detail", args=[petition.pk])).status_code == 404
    assert "request_review" not in re.findall(r'id="action-([a-z_]+)"', officer_page)
    assert t.centre.name in officer_page.split('id="next-steps"')[1]
    assert (petition.state, petition.holder_agency_id) == ("review_requested", t.centre.pk)
    assert "start_review" in reviewer.actions(petition)


def test_an_administrator_may_name_another_reviewing_organ(t, now):
    petition = petition_in_state("opinion_issued", township=t, now=now)
    ReviewingOrgan.objects.create(agency=t.petition_office, reviewer=t.county_petition_bureau)
    bureau = Desk(staff(t.county_petition_bureau, Role.PETITION_OFFICER))

    petition = bureau.act(petition, "request_review", received_on="2026-03-11")

    assert petition.holder_agency_id == t.county_petition_bureau.pk


def test_a_review_request_through_the_api_by_another_organ_is_refused_with_the_reason(t, now):
    petition = petition_in_state("opinion_issued", township=t, now=now)
    api = APIClient()
    api.force_authenticate(staff(t.petition_office, Role.PETITION_OFFICER))

    response = api.post(f"/api/cases/{petition.pk}/transitions/request_review/", {}, format="json")

    assert response.status_code == 403
    assert f"原办理机关的上一级机关（{t.centre.name}）" in response.json()["message"]


# 7. 访调对接: once, a dispute's own name and category, to a committee within reach -------------


def test_petition_to_mediation_happens_once_with_the_senders_title_and_category(t, now):
    petition = petition_in_state("handling", township=t, now=now)
    officer = Desk(staff(t.petition_office, Role.PETITION_OFFICER))
    mediator = Desk(staff(t.committee, Role.MEDIATOR))
    category = Category.objects.get(code="SLTD")
    form = {
        "to_agency": t.committee.pk,
        "title": "王五与邻组村民承包地界纠纷",
        "category": category.pk,
        "note": "双方同意调解",
    }

    offered = "action-refer_to_mediation" in officer.page(petition)
    first = officer.client.post(reverse("web:refer_mediation", args=[petition.pk]), form)
    second = officer.client.post(
        reverse("web:refer_mediation", args=[petition.pk]), form, follow=True
    )
    gone = "action-refer_to_mediation" not in officer.page(petition)
    dispute = Case.objects.get(spawned_from=petition).as_proxy()
    dispute = mediator.act(dispute, "accept")

    assert offered is True
    assert first.status_code == 302
    assert "不能重复转出" in second.content.decode()
    assert gone is True
    assert Case.objects.filter(spawned_from=petition).count() == 1
    assert (dispute.title, dispute.category_id) == ("王五与邻组村民承包地界纠纷", category.pk)
    assert dispute.state == "accepted"
    assert told(officer.user, dispute, "feedback")


def test_petition_to_mediation_goes_only_to_a_committee_within_reach(t, now):
    petition = petition_in_state("handling", township=t, now=now)
    officer = Desk(staff(t.petition_office, Role.PETITION_OFFICER))
    elsewhere = township_tree("大营").committee
    form = {"title": "王五与李四合同纠纷", "category": Category.objects.get(code="HT").pk}

    outside = officer.client.post(
        reverse("web:refer_mediation", args=[petition.pk]), {**form, "to_agency": elsewhere.pk}
    ).content.decode()
    not_a_committee = officer.client.post(
        reverse("web:refer_mediation", args=[petition.pk]),
        {**form, "to_agency": t.judicial_office.pk},
    ).content.decode()

    assert "「大营镇人民调解委员会」不在可选范围内：须为本辖区内的机构。" in outside
    assert f"「{t.judicial_office.name}」不能接收：须为人民调解委员会。" in not_a_committee
    assert not Case.objects.filter(spawned_from=petition).exists()


# 8. Targets are validated by the service, whatever the client sends ----------------------


def test_the_api_cannot_move_a_case_to_an_agency_nobody_could_act_at(t, now):
    case = dispute_in_state("triaged", township=t, now=now)
    api = APIClient()
    api.force_authenticate(staff(t.centre, Role.SUPERVISOR))

    to_court = api.post(
        f"/api/cases/{case.pk}/transitions/assign/", {"to_agency": t.court.pk}, format="json"
    )
    to_stranger = api.post(
        f"/api/cases/{case.pk}/transitions/assign/",
        {"to_agency": township_tree("大营").committee.pk},
        format="json",
    )

    assert to_court.status_code == 400
    assert to_court.json()["details"]["to_agency"] == [
        f"「{t.court.name}」不能接收：须为人民调解委员会或司法所。"
    ]
    assert to_stranger.status_code == 400
    assert Case.objects.get(pk=case.pk).state == "triaged"


# 9. The 督办单 --------------------------------------------------------------------------------


def test_the_supervision_notice_is_numbered_issued_by_the_supervising_agency_and_agrees_after_an_extension(  # noqa: E501
    overdue_at_the_village, t, set_now
):
    escalation = overdue_at_the_village
    supervisor = Desk(staff(t.centre, Role.SUPERVISOR))
    before = supervisor.get(reverse("web:print_supervision_notice", args=[escalation.pk]))
    supervisor.client.post(
        reverse("web:escalation_action", args=[escalation.pk, "extend"]),
        {"extra_days": "10", "reason": "双方同意延长调解期限"},
    )
    after = supervisor.get(reverse("web:print_supervision_notice", args=[escalation.pk]))

    escalation.refresh_from_db()
    html, later = before.content.decode(), after.content.decode()
    assert escalation.notice_label == "督字〔2026〕第1号"
    assert escalation.issuer_id == t.centre.pk  # the township 综治中心 over the village
    assert "督字〔2026〕第1号" in html
    assert html.count(t.centre.name) >= 2  # red head and signature: the issuing agency
    assert f"{t.village_committee.name}：" in html  # addressed to the agency that owes the duty
    # The text states the due date at issue; after 批准延期 the table adds the new date.
    assert "已于2026年3月11日届满" in later
    assert "<td>2026年3月11日</td>" in later
    assert "批准延期后到期日" in later
    assert "2026年3月23日" in later  # 03-11 + 10 days = Sat 03-21, rolled to Mon 03-23
    assert "批准延期后到期日" not in html


# 11. Printed documents are Chinese whatever the interface language --------------------------


def test_printed_documents_are_in_chinese_when_the_interface_is_english(
    overdue_at_the_village, t, now
):
    supervisor = Desk(staff(t.centre, Role.SUPERVISOR))
    supervisor.client.cookies["django_language"] = "en"
    case = dispute_in_state("agreement_reached", township=t, now=now)
    agreement = case.agreements.get()

    english_page = supervisor.get(reverse("web:case_detail", args=[case.pk])).content.decode()
    notice = supervisor.get(
        reverse("web:print_supervision_notice", args=[overdue_at_the_village.pk])
    )
    doc = supervisor.get(reverse("web:print_agreement", args=[case.pk, agreement.pk]))

    assert "My cases" in english_page or "Cases" in english_page
    assert notice["Content-Language"] == "zh-CN"
    assert "督 办 单" in notice.content.decode()
    assert "签 收 回 执" in notice.content.decode()
    assert "人民调解协议书" in doc.content.decode()
    assert doc["Content-Language"] == "zh-CN"


# 12. Validation -----------------------------------------------------------------------------


def test_a_phone_number_that_is_neither_mobile_nor_landline_is_refused_on_registration(t):
    desk = Desk(staff(t.committee, Role.MEDIATOR))
    category = Category.objects.filter(applies_to="dispute").first()

    response = desk.client.post(
        reverse("web:register", args=["dispute"]),
        {
            "title": "纠纷",
            "category": category.pk,
            "channel": channel("visit").pk,
            "received_on": "2026-03-11",
            "description": "简要情况",
            "mediation_track": "people",
            "risk_level": "low",
            "parties-TOTAL_FORMS": 1,
            "parties-INITIAL_FORMS": 0,
            "parties-MIN_NUM_FORMS": 1,
            "parties-MAX_NUM_FORMS": 50,
            "parties-0-name": "张三",
            "parties-0-role": "applicant",
            "parties-0-phone": "12345",
        },
    )

    assert response.status_code == 200
    assert "电话号码无效：请填写11位手机号码" in response.content.decode()
    assert not Case.objects.exists()


def test_an_agreement_text_of_a_few_characters_is_refused(t, now):
    case = dispute_in_state("mediating", township=t, now=now)
    mediator = Desk(case.assignee)

    html = mediator.refused(case, "record_agreement", form="written", text="赔钱")

    assert "协议内容过短" in html
