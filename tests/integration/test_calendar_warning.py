"""Administrators are warned on admin pages when holiday data runs out within 180 days."""

from __future__ import annotations

import datetime as dt

import pytest

from mediation.accounts.models import User
from mediation.deadlines.models import HolidayYear

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, tmp_path, monkeypatch):
    # Fix the system clock to 2026-11-27: the chinese-calendar package stops at 2026-12-31.
    fake = tmp_path / "now"
    fake.write_text("2026-11-27T10:00:00+08:00")
    monkeypatch.setenv("MEDIATION_FAKE_NOW_FILE", str(fake))
    user = User.objects.create_superuser("root-admin", password="pw-123456789")
    client.force_login(user)
    return client


def test_admin_warns_when_calendar_does_not_cover_next_180_days(admin_client) -> None:
    response = admin_client.get("/admin/")

    assert response.status_code == 200
    assert "节假日数据只覆盖到 2026-12-31" in response.content.decode()


def test_admin_is_quiet_once_next_year_is_declared(admin_client) -> None:
    HolidayYear.objects.create(year=2027, source="国办发明电〔2026〕X号")

    response = admin_client.get("/admin/")

    assert response.status_code == 200
    assert "节假日数据只覆盖到" not in response.content.decode()


def test_warning_horizon_is_measured_from_today() -> None:
    from mediation.deadlines.calendar_source import calendar_coverage_warning

    assert calendar_coverage_warning(today=dt.date(2026, 6, 1)) is None
    assert calendar_coverage_warning(today=dt.date(2026, 7, 5)) is not None
