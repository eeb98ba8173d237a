"""Fixtures of the API tests: the API mounted, the clock fixed at `now`, throttles reset."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.urls import NoReverseMatch, reverse
from rest_framework.test import APIClient

from mediation.accounts.models import User
from mediation.core import clock
from tests.factories.agencies import Township, township_tree


def _api_mounted() -> bool:
    try:
        reverse("api:case-list")
    except NoReverseMatch:
        return False
    return True


@pytest.fixture(autouse=True)
def _api_environment(settings, monkeypatch, now: dt.datetime) -> None:
    # Until mediation/urls.py mounts the API, mount it on top of the project's URLs.
    settings.ROOT_URLCONF = "mediation.urls"
    if not _api_mounted():
        settings.ROOT_URLCONF = "tests.integration.api.urls"
    # Views read the clock once per request through mediation.core.clock.now.
    monkeypatch.setattr(clock, "now", lambda: now)
    # Throttle counters live in the (per-process) cache.
    cache.clear()


@pytest.fixture
def township() -> Township:
    return township_tree()


@pytest.fixture
def other_township() -> Township:
    return township_tree()


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=user)
    return client


def grant_reveal(user: User) -> User:
    user.user_permissions.add(Permission.objects.get(codename="reveal_id_number"))
    return User.objects.get(pk=user.pk)  # has_perm caches permissions on the instance
