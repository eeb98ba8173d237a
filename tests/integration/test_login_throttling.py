"""Login throttling (django-axes, mediation/accounts/throttling.py) behind the TLS proxy.

Real axes, real database rows, the real login views (web, admin and the API token endpoint).
Requests come from the proxy (REMOTE_ADDR 127.0.0.1) with the X-Forwarded-For that nginx's
`$proxy_add_x_forwarded_for` builds: what the client sent, then the address nginx saw.
"""

from __future__ import annotations

import datetime as dt

import pytest
from axes.models import AccessAttempt
from django.test import Client, override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from mediation.accounts.models import User

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-9"
BEHIND_PROXY = override_settings(
    AXES_ENABLED=True,
    TRUSTED_PROXY_COUNT=1,
    AXES_FAILURE_LIMIT=5,
    AXES_ADDRESS_FAILURE_LIMIT=20,
    AXES_USERNAME_FAILURE_LIMIT=30,
)


def _user(name: str) -> User:
    return User.objects.create_user(name, password=PASSWORD)


def _login(username: str, password: str, client_address: str, spoofed: str = "") -> int:
    """POST the web login through the proxy; the status code (302 = signed in)."""
    forwarded = f"{spoofed}, {client_address}" if spoofed else client_address
    response = Client().post(
        "/accounts/login/",
        {"username": username, "password": password},
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR=forwarded,
    )
    return response.status_code


@override_settings(AXES_ENABLED=True, AXES_FAILURE_LIMIT=3)
def test_repeated_wrong_passwords_lock_out_even_the_right_one(client) -> None:
    User.objects.create_user("tiaojie9", password=PASSWORD)
    for _ in range(3):
        client.post("/admin/login/", {"username": "tiaojie9", "password": "wrong"})

    response = client.post("/admin/login/", {"username": "tiaojie9", "password": PASSWORD})

    assert response.status_code == 429
    assert AccessAttempt.objects.filter(username="tiaojie9").count() == 1
    assert AccessAttempt.objects.get(username="tiaojie9").failures_since_start >= 3


@BEHIND_PROXY
def test_the_address_is_the_one_the_proxy_appended_not_the_spoofed_ones():
    _user("li")
    for i in range(4):
        _login("li", "wrong", "203.0.113.7", spoofed=f"10.9.9.{i}, 198.51.100.{i}")

    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.7"}
    # The fifth failure locks li out at that address, whatever the client claims to be.
    _login("li", "wrong", "203.0.113.7", spoofed="192.0.2.200")
    assert _login("li", PASSWORD, "203.0.113.7", spoofed="192.0.2.201") == 429


@BEHIND_PROXY
def test_offices_behind_one_proxy_do_not_share_a_lock():
    _user("wang")
    for _ in range(5):
        _login("wang", "wrong", "203.0.113.7")

    assert _login("wang", PASSWORD, "203.0.113.7") == 429
    # The same user from another office is not locked out by the first office's failures.
    assert _login("wang", PASSWORD, "203.0.113.8") == 302


@override_settings(AXES_ENABLED=True, TRUSTED_PROXY_COUNT=0)
def test_without_a_trusted_proxy_the_header_is_ignored():
    _user("zhao")

    _login("zhao", "wrong", "203.0.113.9")

    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == ["127.0.0.1"]


@BEHIND_PROXY
def test_spraying_few_tries_against_many_users_locks_the_address():
    # The finding: four tries against each of nine users from one address went unnoticed.
    users = [_user(f"spray{i}") for i in range(10)]
    for user in users[:9]:
        for _ in range(4):
            assert _login(user.username, "wrong", "203.0.113.50") in (200, 429)

    # Past 20 failures the address is locked for every username, even with the right password,
    assert _login(users[9].username, PASSWORD, "203.0.113.50") == 429
    # while the users themselves can still sign in from their own offices.
    assert _login(users[0].username, PASSWORD, "203.0.113.51") == 302


@BEHIND_PROXY
def test_a_username_is_locked_only_after_many_failures_from_many_addresses():
    _user("chen")
    for i in range(29):
        _login("chen", "wrong", f"198.51.100.{i + 1}")
    assert _login("chen", PASSWORD, "192.0.2.1") == 302

    _login("chen", "wrong", "198.51.100.100")  # the 30th failure within the cool-off

    assert _login("chen", PASSWORD, "192.0.2.2") == 429


@BEHIND_PROXY
def test_a_flood_during_a_lock_does_not_extend_it():
    _user("liu")
    for i in range(30):
        _login("liu", "wrong", f"198.51.100.{i + 1}")
    locked_at = AccessAttempt.objects.order_by("-attempt_time").first().attempt_time

    for i in range(40):  # the flood goes on from fresh addresses
        assert _login("liu", "wrong", f"192.0.2.{i + 1}") == 429

    assert AccessAttempt.objects.filter(attempt_time__gt=locked_at).count() == 0
    total = sum(AccessAttempt.objects.values_list("failures_since_start", flat=True))
    assert total == 30
    # Half an hour after the lock began, the owner signs in, flood or not.
    AccessAttempt.objects.update(attempt_time=timezone.now() - dt.timedelta(minutes=31))
    assert _login("liu", PASSWORD, "203.0.113.60") == 302


@BEHIND_PROXY
def test_a_successful_login_does_not_wipe_the_addresss_spraying_count():
    own = _user("attacker")
    for i in range(19):
        _login(f"victim{i}", "wrong", "203.0.113.70")

    assert _login(own.username, PASSWORD, "203.0.113.70") == 302
    _login("victim-last", "wrong", "203.0.113.70")  # the 20th failure from the address

    assert _login(own.username, PASSWORD, "203.0.113.70") == 429


@BEHIND_PROXY
def test_the_api_token_endpoint_is_throttled_with_the_apis_error_shape():
    _user("api-user")
    client = APIClient()
    for _ in range(5):
        client.post(
            "/api/auth/token/",
            {"username": "api-user", "password": "wrong"},
            format="json",
            REMOTE_ADDR="127.0.0.1",
            HTTP_X_FORWARDED_FOR="203.0.113.80",
        )

    response = client.post(
        "/api/auth/token/",
        {"username": "api-user", "password": PASSWORD},
        format="json",
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="203.0.113.80",
    )

    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "locked_out"
    assert set(body) == {"code", "message", "details"}
    assert body["details"]["cooloff_minutes"] == 30
    assert int(response["Retry-After"]) == 1800


@BEHIND_PROXY
def test_a_very_long_username_is_refused_without_a_server_error():
    # The finding: a 10,000-character username reached axes' varchar(255) (DataError).
    client = APIClient()

    response = client.post(
        "/api/auth/token/", {"username": "u" * 10_000, "password": "x"}, format="json"
    )
    web = Client().post("/accounts/login/", {"username": "u" * 10_000, "password": "x"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert web.status_code == 200
