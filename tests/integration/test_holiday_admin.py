"""The admin's holiday pages (issue 10): every write is recorded for the recompute, bad input
is a form error, a busy calendar is a message, and 法定期限 → 导入放假通知 previews and imports."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from django.contrib.messages import get_messages
from django.db import connections, transaction
from django.urls import reverse

from mediation.accounts.models import Role
from mediation.deadlines import holidays
from mediation.deadlines.calendar_source import current_calendar
from mediation.deadlines.models import HolidayChange, HolidayOverride, HolidayYear
from tests.factories.accounts import UserFactory

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "holiday_notices"
IMPORT_URL = "admin:deadlines_holidaynotice_changelist"


@pytest.fixture
def admin_client(client):
    user = UserFactory(
        username="holiday-admin", role=Role.ADMINISTRATOR, is_staff=True, is_superuser=True
    )
    client.force_login(user)
    return client


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_adding_an_override_in_the_admin_records_the_change(admin_client):
    response = admin_client.post(
        reverse("admin:deadlines_holidayoverride_add"),
        {"date": "2026-12-15", "is_workday": "", "name": "测试", "source": "测试依据"},
    )
    assert response.status_code == 302
    change = HolidayChange.objects.get()
    assert (change.dates, change.source, change.status) == (["2026-12-15"], "测试依据", "pending")
    assert change.actor.username == "holiday-admin"


def test_the_bulk_delete_action_records_the_change(admin_client):
    for day in (dt.date(2026, 12, 15), dt.date(2026, 12, 16)):
        HolidayOverride.objects.create(date=day, is_workday=False, name="测试", source="旧")
    ids = list(HolidayOverride.objects.values_list("pk", flat=True))
    response = admin_client.post(
        reverse("admin:deadlines_holidayoverride_changelist"),
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    assert response.status_code == 302
    assert not HolidayOverride.objects.exists()
    assert HolidayChange.objects.get().dates == ["2026-12-15", "2026-12-16"]


@pytest.mark.parametrize("year", ["1999", "2100", "20277"])
def test_a_year_out_of_range_is_a_form_error(admin_client, year):
    response = admin_client.post(
        reverse("admin:deadlines_holidayyear_add"), {"year": year, "source": "x"}
    )
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert not HolidayYear.objects.exists()


def test_an_override_date_out_of_range_is_a_form_error(admin_client):
    response = admin_client.post(
        reverse("admin:deadlines_holidayoverride_add"),
        {"date": "1899-01-01", "is_workday": "", "name": "x", "source": "x"},
    )
    assert response.status_code == 200
    assert "日期须在 2000 年至 2099 年之间。" in response.content.decode()
    assert not HolidayChange.objects.exists()


def test_the_import_page_previews_and_imports_the_notice(admin_client):
    url = reverse(IMPORT_URL)
    assert admin_client.get(url).status_code == 200
    index = admin_client.get(reverse("admin:app_list", args=["deadlines"])).content.decode()
    assert "导入放假通知" in index
    text = (FIXTURES / "2026.txt").read_text(encoding="utf-8")

    preview = admin_client.post(url, {"text": text, "preview": "1"})
    page = preview.content.decode()
    assert preview.status_code == 200
    assert "2026 年 2 月" in page
    assert page.count("<br>休") == 33
    assert page.count("<br>班") == 6
    assert 'name="confirm"' in page
    assert not HolidayOverride.objects.exists()

    done = admin_client.post(url, {"text": text, "confirm": "1"})
    assert done.status_code == 302
    assert HolidayOverride.objects.count() == 39
    assert HolidayYear.objects.get().year == 2026
    assert set(HolidayOverride.objects.values_list("source", flat=True)) == {
        "国办发明电〔2025〕7号"
    }

    again = admin_client.post(url, {"text": text, "confirm": "1"})
    assert again.status_code == 302
    assert HolidayOverride.objects.count() == 39
    assert "新增 0 日" in " ".join(_messages(again))


def test_the_import_page_lists_failed_items_and_offers_no_confirmation(admin_client):
    text = (
        (FIXTURES / "2025.txt")
        .read_text(encoding="utf-8")
        .replace("共8天。1月26日", "共9天。1月26日")
    )
    response = admin_client.post(reverse(IMPORT_URL), {"text": text, "confirm": "1"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "第二项（春节）：共9天与 1月28日至2月4日 的 8 天不符" in page
    assert 'name="confirm"' not in page
    assert not HolidayOverride.objects.exists()
    empty = admin_client.post(reverse(IMPORT_URL), {"text": "", "preview": "1"})
    assert empty.status_code == 200
    assert "通知文本为空" in empty.content.decode()


def test_the_import_page_needs_the_holiday_permissions(client):
    user = UserFactory(username="staff-only", role=Role.MEDIATOR, is_staff=True)
    client.force_login(user)
    assert client.get(reverse(IMPORT_URL)).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_a_save_while_the_calendar_is_in_use_is_a_message_not_a_500(client, monkeypatch):
    user = UserFactory(
        username="holiday-admin", role=Role.ADMINISTRATOR, is_staff=True, is_superuser=True
    )
    client.force_login(user)
    monkeypatch.setattr(holidays, "LOCK_TIMEOUT", "200ms")
    holding, release = threading.Event(), threading.Event()

    def reader():
        try:
            with transaction.atomic():
                current_calendar()
                holding.set()
                release.wait(5)
        finally:
            connections.close_all()

    thread = threading.Thread(target=reader)
    thread.start()
    assert holding.wait(5)
    try:
        response = client.post(
            reverse("admin:deadlines_holidayoverride_add"),
            {"date": "2030-06-01", "is_workday": "on", "name": "调休", "source": "x"},
            follow=True,
        )
    finally:
        release.set()
        thread.join(5)
    assert response.status_code == 200
    assert "节假日数据正被其他操作使用，请稍后重试。" in response.content.decode()
    assert not HolidayOverride.objects.exists()
