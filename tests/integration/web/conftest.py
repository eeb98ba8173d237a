"""Fixtures of the web page tests: the pages read the same fixed `now` as the test (through
MEDIATION_FAKE_NOW_FILE), and a small township with its staff."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from mediation.accounts.models import Role, User
from tests.factories.accounts import staff
from tests.factories.agencies import Township, township_tree


@pytest.fixture
def set_now(tmp_path, monkeypatch) -> Callable[[dt.datetime], None]:
    """Move the clock the web views read (core.clock.now)."""
    path = tmp_path / "now.txt"
    monkeypatch.setenv("MEDIATION_FAKE_NOW_FILE", str(path))

    def move(instant: dt.datetime) -> None:
        path.write_text(instant.isoformat(), encoding="utf-8")

    return move


@pytest.fixture(autouse=True)
def _pages_follow_the_test_clock(now, set_now) -> None:
    set_now(now)


@pytest.fixture
def township() -> Township:
    return township_tree("将官池")


@pytest.fixture
def supervisor(township) -> User:
    """综治中心 督办人员: registers, triages and assigns disputes."""
    return staff(township.centre, Role.SUPERVISOR)


@pytest.fixture
def mediator(township) -> User:
    return staff(township.committee, Role.MEDIATOR)


@pytest.fixture
def petition_officer(township) -> User:
    return staff(township.petition_office, Role.PETITION_OFFICER)


@pytest.fixture
def outsider() -> User:
    """A mediator of another township: sees none of the first township's cases."""
    return staff(township_tree("大营").committee, Role.MEDIATOR)


def grant_reveal(user: User) -> User:
    user.user_permissions.add(Permission.objects.get(codename="reveal_id_number"))
    return User.objects.get(pk=user.pk)


@pytest.fixture
def login(client) -> Callable[[User], Client]:
    def as_user(user: User) -> Client:
        client.force_login(user)
        return client

    return as_user
