"""API tokens (django-rest-knox): hashed at rest, a new one per login with a lifetime,
revoked by logout, logout-everywhere, `manage.py revoke_tokens`, a password change and a
deactivation. Real PostgreSQL, the real token endpoint; no mocks."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from mediation.accounts.models import Role
from tests.factories.accounts import staff

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]
PASSWORD = "s3cret-pass-9"


@pytest.fixture
def mediator(township):
    user = staff(township.committee, Role.MEDIATOR)
    user.set_password(PASSWORD)
    user.save()
    return user


def login(user, password: str = PASSWORD) -> dict:
    response = APIClient().post(
        "/api/auth/token/", {"username": user.username, "password": password}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def with_token(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def authenticates(token: str) -> bool:
    status = with_token(token).get("/api/notifications/unread-count/").status_code
    assert status in (200, 401)
    return status == 200


def test_tokens_are_stored_hashed_never_in_plain(mediator):
    token = login(mediator)["token"]

    row = AuthToken.objects.get(user=mediator)
    assert len(token) == 64
    assert row.digest != token
    assert token not in row.digest
    assert len(row.digest) == 128  # SHA-512, hex
    assert row.token_key == token[:15]


def test_each_login_issues_a_new_token_and_both_work(mediator):
    first = login(mediator)["token"]
    second = login(mediator)["token"]

    assert first != second
    assert AuthToken.objects.filter(user=mediator).count() == 2
    assert authenticates(first)
    assert authenticates(second)


def test_a_token_lives_eight_hours_by_default(mediator):
    before = timezone.now()
    issued = login(mediator)

    expiry = AuthToken.objects.get(user=mediator).expiry
    assert before + dt.timedelta(hours=8) <= expiry <= timezone.now() + dt.timedelta(hours=8)
    assert dt.datetime.fromisoformat(issued["expiry"]) == expiry


def test_the_lifetime_comes_from_the_environment():
    code = "import django; django.setup(); from knox.settings import knox_settings;"
    code += "print(knox_settings.TOKEN_TTL.total_seconds())"
    env = {**os.environ, "API_TOKEN_TTL_HOURS": "1.5"}

    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[3],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout

    assert float(out.strip().splitlines()[-1]) == 5400.0


def test_an_expired_token_is_refused_and_deleted(mediator):
    _row, token = AuthToken.objects.create(user=mediator, expiry=dt.timedelta(seconds=-1))

    response = with_token(token).get("/api/cases/")

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert not AuthToken.objects.filter(user=mediator).exists()


def test_logout_revokes_only_the_token_it_was_sent_with(mediator):
    first, second = login(mediator)["token"], login(mediator)["token"]

    response = with_token(first).post("/api/auth/logout/")

    assert response.status_code == 204
    assert response["Cache-Control"] == "no-store"
    assert not authenticates(first)
    assert authenticates(second)


def test_logout_everywhere_revokes_every_token_of_the_user_only(mediator, township):
    other = staff(township.committee, Role.MEDIATOR, n=1)
    other.set_password(PASSWORD)
    other.save()
    mine = [login(mediator)["token"] for _ in range(3)]
    theirs = login(other)["token"]

    response = with_token(mine[0]).post("/api/auth/logout-all/")

    assert response.status_code == 204
    assert not any(authenticates(t) for t in mine)
    assert authenticates(theirs)


def test_logout_without_a_token_is_401(mediator):
    response = APIClient().post("/api/auth/logout/")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_a_password_change_revokes_every_token(mediator):
    tokens = [login(mediator)["token"] for _ in range(2)]

    mediator.set_password("another-pass-77")
    mediator.save()

    assert not any(authenticates(t) for t in tokens)
    assert authenticates(login(mediator, "another-pass-77")["token"])


def test_a_deactivation_revokes_every_token(mediator):
    token = login(mediator)["token"]

    mediator.is_active = False
    mediator.save()

    assert not AuthToken.objects.filter(user=mediator).exists()
    assert not authenticates(token)


def test_saving_other_fields_keeps_the_tokens(mediator):
    token = login(mediator)["token"]

    mediator.display_name = "新名字"
    mediator.save()

    assert authenticates(token)


def test_the_command_revokes_a_users_tokens(mediator):
    tokens = [login(mediator)["token"] for _ in range(2)]
    out = StringIO()

    call_command("revoke_tokens", mediator.username, stdout=out)

    assert "2" in out.getvalue()
    assert not any(authenticates(t) for t in tokens)


def test_the_command_refuses_an_unknown_user_with_status_2(mediator):
    token = login(mediator)["token"]

    with pytest.raises(CommandError) as raised:
        call_command("revoke_tokens", mediator.username, "no-such-user")

    assert raised.value.returncode == 2
    assert "no-such-user" in str(raised.value)
    assert authenticates(token)  # nothing revoked


def test_the_command_as_a_process_exits_2_on_bad_input():
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mediation.settings.test"}

    missing = subprocess.run(
        [sys.executable, "manage.py", "revoke_tokens"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert missing.returncode == 2
    assert "USERNAME" in missing.stderr


@pytest.mark.parametrize(
    "header",
    [
        b"Token \xff\xfe",  # not UTF-8
        "Token 令牌".encode(),
        b"Token " + b"a" * 5000,
        b"Token abc def",
    ],
)
def test_a_malformed_token_header_is_401_not_500(header):
    client = APIClient()

    response = client.get("/api/cases/", HTTP_AUTHORIZATION=header.decode("latin-1"))

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_the_schema_documents_the_token_scheme_and_endpoints(mediator):
    token = login(mediator)["token"]

    schema = json.loads(
        with_token(token)
        .get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
        .content
    )

    scheme = schema["components"]["securitySchemes"]["tokenAuth"]
    assert scheme["type"] == "apiKey"
    assert scheme["name"] == "Authorization"
    assert "Token <token>" in scheme["description"]
    assert "/api/auth/token/" in schema["info"]["description"]
    for path in ("/api/auth/token/", "/api/auth/logout/", "/api/auth/logout-all/"):
        assert "post" in schema["paths"][path]
    # The login itself needs no credentials.
    assert schema["paths"]["/api/auth/token/"]["post"].get("security", [{}]) in ([], [{}])
    assert schema["paths"]["/api/cases/"]["get"]["security"][0] == {"tokenAuth": []}
