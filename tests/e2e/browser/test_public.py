"""The people's own door in real headless Chromium (Debian's `chromium`, Playwright) against
the live server, on a 390 px phone, in Chinese (issue 14):

1. a person applies for mediation online and gets the 查询码 on the confirmation page; the
   SMS with the same code reaches the provider sink on loopback (a real signed HTTP request
   from the outbox's delivery service); staff triage, assign, accept, mediate and close it in
   their own pages; the person looks up the progress with the code and the phone's last four
   digits and rates the outcome;
2. somebody guessing codes gets the same answer each time, then 429 with a clear message.

Screenshots of each page go to test-artifacts/screenshots/public_*.png.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

from mediation.accounts.models import Role
from mediation.cases import lookup
from mediation.cases.models import Case
from mediation.public.models import LookupAttempt, Rating
from tests.e2e.browser.test_workflow import (
    CHROMIUM,
    DESKTOP,
    PHONE,
    _login,
    _logout,
    _shot,
    _with_password,
    browser,  # noqa: F401 (fixture)
    clock_file,  # noqa: F401 (fixture)
)
from tests.e2e.faults.harness import SmsSink
from tests.factories.accounts import staff
from tests.factories.agencies import township_tree
from tests.factories.cases import id_number

pytest.importorskip("playwright.sync_api")

SECRET = "browser-sms-secret-0123456789"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.integration.web.urls"),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="needs Debian's chromium: apt-get install -y chromium"
    ),
    pytest.mark.timeout(240),
]


@pytest.fixture
def sms_sink(tmp_path) -> Iterator[SmsSink]:
    sink = SmsSink(tmp_path, secret=SECRET)
    sink.start()
    limits = {**settings.CACHES["limits"], "KEY_PREFIX": f"e2e-limits-{uuid.uuid4().hex}"}
    with override_settings(
        CACHES={**settings.CACHES, "limits": limits},
        SMS_BACKEND="mediation.notifications.sms.ProviderSmsBackend",
        SMS_PROVIDER_URL=sink.url,
        SMS_PROVIDER_ACCESS_KEY="e2e-access-key",
        SMS_PROVIDER_SECRET=SECRET,
    ):
        yield sink
    sink.stop()


def _deliver_outbox(now) -> None:
    """What a delivery worker does: claim what is due and send it (here, in the test)."""
    from mediation.notifications.services import deliveries_claimable_ids, deliveries_deliver

    deliveries_deliver(
        deliveries_claimable_ids(now=now, limit=100), worker="e2e", clock=lambda: now
    )


def _act(page, name: str, label: str, fill: dict[str, str] | None = None) -> None:
    page.click(f"#action-{name} > summary")
    for selector, value in (fill or {}).items():
        element = page.locator(f"#action-{name} {selector}")
        kind = element.evaluate("el => el.tagName + ':' + (el.type || '')")
        if kind.startswith("SELECT"):
            element.select_option(label=value)
        elif kind.endswith("checkbox"):
            element.check()
        else:
            element.fill(value)
    page.click(f"#action-{name} button[type=submit]")
    page.wait_for_load_state()
    assert f"已完成：{label}" in page.content()


def test_a_person_applies_gets_the_code_by_sms_follows_the_case_and_rates_it(
    browser,  # noqa: F811
    live_server,
    clock_file,  # noqa: F811
    now,
    sms_sink,
):
    township = township_tree("将官池")
    centre = _with_password(staff(township.centre, Role.SUPERVISOR))
    mediator = _with_password(staff(township.committee, Role.MEDIATOR))
    base = live_server.url
    phone = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True)
    page = phone.new_page()

    # 1. The person applies: the privacy notice first, then the form.
    page.goto(f"{base}/public/")
    _shot(page, "public_01_home")
    page.click("text=申请调解")
    assert "个人信息处理告知" in page.content()
    _shot(page, "public_02_privacy_notice")
    page.click("#agree")
    page.fill("#id_applicant_name", "赵六")
    page.fill("#id_applicant_id_number", id_number(41))
    page.fill("#id_applicant_phone", "13912345678")
    page.fill("#id_applicant_address", "将官池镇将官池村")
    page.fill("#id_other_name", "钱七")
    page.fill("#id_place", "将官池村二组")
    page.select_option("#id_category", label="邻里纠纷")
    page.fill("#id_summary", "邻居在两家之间的通道上堆放杂物，影响通行。")
    page.fill("#id_requests", "清除杂物，恢复通道。")
    # A wrong ID number first: the error is in the form.
    page.fill("#id_applicant_id_number", "110105198001010000")
    page.check("#id_privacy")
    page.click("#apply-form button[type=submit]")
    page.wait_for_load_state()
    assert "校验码" in page.content()
    _shot(page, "public_03_apply_form_error")
    page.fill("#id_applicant_id_number", id_number(41))
    page.click("#apply-form button[type=submit]")
    page.wait_for_load_state()
    assert "申请已提交" in page.content()
    code = page.inner_text("#lookup-code").strip()
    _shot(page, "public_04_applied_with_code")
    case = Case.objects.get()
    assert case.channel.name == "网上申请"
    assert lookup.lookup_case_id(code) == case.pk
    # The page fits the phone: nothing wider than the 390 px viewport.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # 2. The SMS with the same code reaches the provider.
    _deliver_outbox(now)
    (sms,) = [r for r in sms_sink.records() if r["accepted"]]
    assert sms["signed"]
    assert sms["phone"] == "13912345678"
    assert sms["template"] == "SMS_LOOKUP_CODE"
    assert sms["params"]["lookup_code"] == code

    # 3. Staff handle it in their own pages.
    desk = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    staff_page = desk.new_page()
    _login(staff_page, base, centre)
    staff_page.goto(f"{base}/cases/{case.pk}/")
    assert "网上申请" in staff_page.content()
    _act(staff_page, "triage", "研判分流", {"select[name=risk_level]": "低"})
    _act(staff_page, "assign", "交办", {"select[name=to_agency]": township.committee.name})
    _logout(staff_page)
    _login(staff_page, base, mediator)
    staff_page.goto(f"{base}/cases/{case.pk}/")
    _act(staff_page, "accept", "受理")
    _act(staff_page, "start_mediation", "开始调解")
    _shot(staff_page, "public_05_staff_case_page")
    _act(
        staff_page,
        "close_failed",
        "终止调解",
        {"textarea[name=reason]": "双方分歧较大，调解不成", "input[name=routes_explained]": "on"},
    )
    desk.close()
    _deliver_outbox(now)
    templates = [r["template"] for r in sms_sink.records() if r["accepted"]]
    assert templates == ["SMS_LOOKUP_CODE", "SMS_ACCEPTED", "SMS_CLOSED"]

    # 4. The person looks up the progress and rates it.
    page.goto(f"{base}/public/track/")
    _shot(page, "public_06_track_form")
    page.fill("#id_code", code.lower())
    page.fill("#id_phone_last4", "5678")
    page.click("#track-form button[type=submit]")
    page.wait_for_load_state()
    timeline = page.inner_text("#timeline")
    assert "收到申请，已登记" in timeline
    assert township.committee.name in timeline
    assert "受理" in timeline
    assert "双方分歧较大，调解不成" in timeline
    assert "研判分流" not in timeline
    assert "钱七" not in page.content()
    assert mediator.username not in page.content()
    _shot(page, "public_07_timeline")
    page.check("input[name=value][value=satisfied]")
    page.fill("#id_comment", "工作人员很耐心。")
    page.click("#rating-form button[type=submit]")
    page.wait_for_load_state()
    assert "感谢您的评价" in page.content()
    assert "您的评价：满意" in page.content()
    _shot(page, "public_08_rated")
    phone.close()
    rating = Rating.objects.get()
    assert (rating.value, rating.comment, rating.agency_id) == (
        "satisfied",
        "工作人员很耐心。",
        township.committee.pk,
    )


@override_settings(PUBLIC_LOOKUP_FAILURES_PER_ADDRESS=3)
def test_guessing_codes_ends_in_429_with_a_clear_message(
    browser,  # noqa: F811
    live_server,
    clock_file,  # noqa: F811
    sms_sink,
):
    base = live_server.url
    phone = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True)
    page = phone.new_page()
    answers = []
    for guess in ("ACEF-HKMN-PRTW", "ACEF-HKMN-PRTX", "ACEF-HKMN-PRTY"):
        page.goto(f"{base}/public/track/")
        page.fill("#id_code", guess)
        page.fill("#id_phone_last4", "1234")
        with page.expect_navigation() as nav:
            page.click("#track-form button[type=submit]")
        assert nav.value.status == 200
        answers.append(page.inner_text("#track-failed"))
    _shot(page, "public_09_track_wrong_code")
    assert len(set(answers)) == 1
    assert "不正确" in answers[0]

    page.goto(f"{base}/public/track/")
    page.fill("#id_code", "ACEF-HKMN-PRWX")
    page.fill("#id_phone_last4", "1234")
    with page.expect_navigation() as nav:
        page.click("#track-form button[type=submit]")

    assert nav.value.status == 429
    assert "查询失败次数过多，请一小时后再试" in page.inner_text("#throttled")
    _shot(page, "public_10_track_429")
    phone.close()
    assert (
        list(LookupAttempt.objects.order_by("pk").values_list("success", flat=True)) == [False] * 4
    )
