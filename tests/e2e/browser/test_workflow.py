"""End-to-end in real headless Chromium (Debian's `chromium`, driven by Playwright) against the
live server, in Chinese:

1. the 综治中心 registers a dispute, triages it and assigns it to the mediation committee; the
   mediator accepts it from the referral inbox, starts mediation, records the agreement and
   prints the 人民调解协议书;
2. a supervisor sees an overdue case in the escalation queue (created by the engine's sweep),
   watches a new one appear without reloading, and acknowledges it.

Screenshots go to test-artifacts/screenshots/ (desktop and phone sizes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections

from mediation.accounts.models import Role, User
from mediation.cases.models import Case, Category
from mediation.escalation.models import Escalation
from mediation.escalation.sweeps import sweep_run
from tests.factories.accounts import staff
from tests.factories.agencies import township_tree
from tests.factories.cases import id_number, register_dispute

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
PASSWORD = "Tiaojie-2026!"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.integration.web.urls"),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="needs Debian's chromium: apt-get install -y chromium"
    ),
    pytest.mark.timeout(180),
]


@pytest.fixture
def clock_file(tmp_path, monkeypatch, now) -> Path:
    """The live server reads `now` from this file (mediation.core.clock)."""
    path = tmp_path / "now.txt"
    path.write_text(now.isoformat(), encoding="utf-8")
    monkeypatch.setenv("MEDIATION_FAKE_NOW_FILE", str(path))
    return path


@pytest.fixture
def browser() -> Iterator[object]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()
            # Django keeps connections per thread *and* context; Playwright's greenlets give
            # the test's ORM calls a context of their own, whose connection would otherwise
            # outlive the test and block dropping the test database.
            connections.close_all()


def _with_password(user: User) -> User:
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    return user


def _shot(page, name: str, *, full_page: bool = True) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def _login(page, base: str, user: User) -> None:
    page.goto(f"{base}/accounts/login/")
    assert "工作人员登录" in page.content()
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click(".login-card button[type=submit]")
    page.wait_for_load_state()


def _logout(page) -> None:
    page.click("form[action='/accounts/logout/'] button")
    page.wait_for_url("**/accounts/login/")


def _act(page, name: str, label: str, fill: dict[str, str] | None = None) -> None:
    """Open a transition's form on the case page, fill it and submit it."""
    page.click(f"#action-{name} > summary")
    for selector, value in (fill or {}).items():
        element = page.locator(f"#action-{name} {selector}")
        if element.evaluate("el => el.tagName") == "SELECT":
            element.select_option(label=value)
        else:
            element.fill(value)
    page.click(f"#action-{name} button[type=submit]")
    page.wait_for_load_state()
    assert f"已完成：{label}" in page.content()


def test_dispute_from_registration_to_agreement(browser, live_server, clock_file):
    township = township_tree("将官池")
    centre = _with_password(staff(township.centre, Role.SUPERVISOR))
    mediator = _with_password(staff(township.committee, Role.MEDIATOR))
    category = Category.objects.filter(applies_to="dispute").first()
    base = live_server.url
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    page = context.new_page()

    # 综治中心 logs in and registers the dispute with two parties.
    page.goto(f"{base}/accounts/login/")
    _shot(page, "01_login")
    _login(page, base, centre)
    page.goto(f"{base}/cases/new/dispute/")
    assert "登记矛盾纠纷" in page.content()
    page.fill("#id_title", "宅基地排水沟纠纷")
    page.select_option("#id_category", label=category.name)
    page.select_option("#id_channel", index=1)
    page.fill("#id_description", "申请人称被申请人修建排水沟占用其宅基地约两平方米。")
    page.fill("#id_parties-0-name", "张三")
    page.fill("#id_parties-0-id_number", id_number(1))
    page.fill("#id_parties-0-phone", "13800000001")
    page.fill("#id_parties-1-name", "李四")
    page.click("text=增加当事人")
    page.fill("#id_parties-2-name", "王二")
    page.select_option("#id_parties-2-role", label="其他当事人")
    _shot(page, "02_register_form")
    page.click("button:has-text('提交登记')")
    page.wait_for_load_state()
    assert "登记成功" in page.content()
    case = Case.objects.get(title="宅基地排水沟纠纷")
    assert case.case_parties.count() == 3

    # Triage and assign it to the township mediation committee.
    _act(page, "triage", "研判分流", {"select[name=risk_level]": "中"})
    _act(page, "assign", "交办", {"select[name=to_agency]": township.committee.name})
    _shot(page, "03_case_assigned")
    _logout(page)

    # The mediator finds it in the referral inbox and accepts it.
    _login(page, base, mediator)
    page.click("nav.mainnav >> text=移送待接收")
    assert case.number in page.content()
    assert "交办签收确认期限" in page.content()
    _shot(page, "04_referral_inbox")
    page.click(f"tr:has-text('{case.number}') >> text=办理")
    _act(page, "accept", "受理")
    _act(page, "start_mediation", "开始调解")
    assert "人民调解期限" in page.content()
    _act(
        page,
        "record_agreement",
        "达成协议",
        {
            "textarea[name=text]": "被申请人于十日内拆除占用部分并恢复原状。",
            "input[name=performance_due_on]": "2026-03-21",
        },
    )
    assert "达成协议" in page.locator(".case-no .state").inner_text()
    _shot(page, "05_case_agreement_desktop")

    # Print the agreement.
    with page.expect_popup() as popup:
        page.click("text=打印人民调解协议书")
    doc = popup.value
    doc.wait_for_load_state()
    assert "人民调解协议书" in doc.content()
    assert "张三" in doc.content()
    assert "本协议一式4份" in doc.content()
    _shot(doc, "06_agreement_print")

    # The same case page on a phone.
    phone = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True)
    mobile = phone.new_page()
    _login(mobile, base, mediator)
    mobile.goto(f"{base}/cases/{case.pk}/")
    assert "办理记录" in mobile.content()
    _shot(mobile, "07_case_phone_top", full_page=False)
    _shot(mobile, "07_case_phone")
    mobile.goto(f"{base}/cases/mine/")
    _shot(mobile, "08_my_cases_phone")
    # The language switch turns the pages into English and back.
    mobile.click(".langswitch button[value=en]")
    mobile.wait_for_load_state()
    assert "My cases" in mobile.content()
    _shot(mobile, "08b_my_cases_phone_english", full_page=False)
    mobile.click(".langswitch button[value=zh-hans]")
    mobile.wait_for_load_state()
    assert "我的案件" in mobile.content()
    phone.close()
    context.close()

    case.refresh_from_db()
    assert case.state == "agreement_reached"
    assert case.assignee_id == mediator.pk


def test_supervisor_acknowledges_an_overdue_case_from_the_queue(
    browser, live_server, clock_file, now
):
    township = township_tree("将官池")
    supervisor = _with_password(staff(township.centre, Role.SUPERVISOR))
    overdue = register_dispute(township, now=now - dt.timedelta(days=7), title="久拖未研判的纠纷")
    sweep_run(now=now, trigger="e2e")
    escalation = Escalation.objects.get(case=overdue)
    base = live_server.url
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    page = context.new_page()

    _login(page, base, supervisor)
    assert page.url.endswith("/supervision/")
    assert "超期督办" in page.content()
    assert overdue.number in page.content()
    assert "承办机构负责人" in page.content()  # level 1

    # A new escalation appears while the page stays open (the queue polls every 15 s).
    later = register_dispute(township, now=now - dt.timedelta(days=5), title="新近超期的纠纷")
    sweep_run(now=now + dt.timedelta(seconds=1), trigger="e2e")
    page.wait_for_selector(f"#queue >> text={later.number}", timeout=25_000)
    _shot(page, "09_supervision_queue")
    with page.expect_popup() as popup:
        page.click(f"tr[data-escalation='{escalation.pk}'] >> text=督办单")
    notice = popup.value
    notice.wait_for_load_state()
    assert "督 办 单" in notice.content()
    assert overdue.number in notice.content()
    _shot(notice, "09b_supervision_notice_print")
    notice.close()

    page.click(f"tr[data-escalation='{escalation.pk}'] >> button:has-text('签收')")
    page.wait_for_load_state()
    assert "已签收督办" in page.content()
    escalation.refresh_from_db()
    assert escalation.status == "acknowledged"
    assert escalation.acknowledged_by_id == supervisor.pk

    page.goto(f"{base}/stats/?date_from=2026-01-01&date_to=2026-03-31")
    assert "按期办结率" in page.content()
    _shot(page, "10_statistics")

    phone = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True)
    mobile = phone.new_page()
    _login(mobile, base, supervisor)
    _shot(mobile, "11_supervision_phone")
    phone.close()
    context.close()
