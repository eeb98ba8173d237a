"""Security headers and start-up checks (issue 11, part 6).

- Content-Security-Policy (django-csp) without inline script, Referrer-Policy and
  Permissions-Policy on pages, the admin and the API, in every settings module;
- no template of the project has inline script, event handlers or style attributes;
- FIELD_ENCRYPTION_KEYS and ID_HASH_KEY validated by a system check, and the web process
  refuses to start with a broken key;
- production reads SESSION_COOKIE_AGE from the environment;
- titles and names made only of invisible characters are refused (web, API, services);
- the API refuses an accused agency without the accusation flag, as the web form does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core import checks
from django.test import override_settings
from django.urls import reverse

from mediation.accounts.models import Role
from mediation.agencies.models import Agency
from mediation.cases.models import Case, Category, Channel
from mediation.cases.services import PartyInput, dispute_register
from mediation.core.errors import InvalidInput
from mediation.core.text import has_visible_text
from tests.factories.accounts import staff
from tests.factories.cases import channel

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]
REPO_ROOT = Path(__file__).resolve().parents[3]
INVISIBLE = [
    "\u200b\u200c\u200d",
    "\u202e\u202d",
    "\u2066\u2069",
    " \u3000\ufeff",
    "\u3164",
    "\u2800",
]


def _csp(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part for part in (p.strip() for p in header.split(";")) if part}


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/", "/api/cases/", "/healthz"])
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path)

    csp = _csp(response)
    assert csp["script-src"] == "script-src 'self'"
    assert csp["style-src"] == "style-src 'self'"
    assert csp["object-src"] == "object-src 'none'"
    assert csp["frame-ancestors"] == "frame-ancestors 'none'"
    assert response["Referrer-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]
    assert "geolocation=()" in response["Permissions-Policy"]


def test_signed_in_pages_carry_the_policy_too(client, township):
    client.force_login(staff(township.committee, Role.MEDIATOR))

    response = client.get(reverse("web:cases_mine"))

    assert response.status_code == 200
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]


def test_the_api_docs_allow_inline_styles_but_never_inline_script(client, township):
    client.force_login(staff(township.committee, Role.MEDIATOR))

    page = client.get("/api/docs/")
    script = client.get("/api/docs/?script=")

    csp = _csp(page)
    assert page.status_code == 200
    assert csp["script-src"] == "script-src 'self'"
    assert "'unsafe-inline'" in csp["style-src"]
    html = page.content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert "<style" not in html
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")


TEMPLATE_DIRS = [REPO_ROOT / "mediation"]
INLINE = [
    (
        "inline <script>",
        re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/(ld\+)?json)[^>]*>"),
    ),
    ("event handler attribute", re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)),
    ("style attribute", re.compile(r"\sstyle\s*=", re.IGNORECASE)),
    ("<style> element", re.compile(r"<style\b", re.IGNORECASE)),
    ("javascript: URL", re.compile(r"javascript:", re.IGNORECASE)),
]


def test_no_template_has_inline_script_or_style():
    templates = [p for d in TEMPLATE_DIRS for p in d.rglob("templates/**/*.html")]
    assert len(templates) > 20

    found = [
        f"{path.relative_to(REPO_ROOT)}: {what}"
        for path in templates
        for what, pattern in INLINE
        if pattern.search(path.read_text(encoding="utf-8"))
    ]

    assert found == []


SETTINGS_PROBE = """
import json, django
django.setup()
from django.conf import settings
print(json.dumps({
    "middleware": settings.MIDDLEWARE,
    "csp": settings.CONTENT_SECURITY_POLICY["DIRECTIVES"],
    "referrer": settings.SECURE_REFERRER_POLICY,
    "permissions": settings.PERMISSIONS_POLICY,
    "session_age": settings.SESSION_COOKIE_AGE,
}))
"""


def _settings_of(module: str, **env: str) -> dict:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": module,
        "DJANGO_SECRET_KEY": "k" * 20 + uuid.uuid4().hex + uuid.uuid4().hex,
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ID_HASH_KEY": uuid.uuid4().hex,
        "LOOKUP_CODE_KEY": uuid.uuid4().hex,
        "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://root@127.0.0.1:5432/postgres"),
        **env,
    }
    result = subprocess.run(
        [sys.executable, "-c", SETTINGS_PROBE],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "module",
    ["mediation.settings.base", "mediation.settings.test", "mediation.settings.production"],
)
def test_every_settings_module_sends_the_headers(module):
    found = _settings_of(module)

    assert "csp.middleware.CSPMiddleware" in found["middleware"]
    assert "mediation.core.middleware.SecurityHeadersMiddleware" in found["middleware"]
    assert found["csp"]["script-src"] == ["'self'"]
    assert found["referrer"] == "same-origin"
    assert "camera=()" in found["permissions"]


def test_production_reads_the_session_age_from_the_environment():
    assert (
        _settings_of("mediation.settings.production", SESSION_COOKIE_AGE="3600")["session_age"]
        == 3600
    )
    assert _settings_of("mediation.settings.production")["session_age"] == 8 * 60 * 60


@pytest.mark.parametrize(
    ("keys", "hash_key", "ids"),
    [
        (["not-a-key"], "a-long-enough-hash-key", {"parties.E001"}),
        ([Fernet.generate_key().decode()[:-4]], "a-long-enough-hash-key", {"parties.E001"}),
        ([], "a-long-enough-hash-key", {"parties.E001"}),
        ([Fernet.generate_key().decode()], "", {"parties.E002"}),
        ([Fernet.generate_key().decode()], "short", {"parties.E002"}),
        ([Fernet.generate_key().decode(), "bad"], "", {"parties.E001", "parties.E002"}),
    ],
)
def test_the_key_check_reports_unusable_keys(keys, hash_key, ids):
    with override_settings(FIELD_ENCRYPTION_KEYS=keys, ID_HASH_KEY=hash_key):
        found = checks.run_checks(tags=["keys"])

    assert {m.id for m in found} == ids
    assert all(m.is_serious() for m in found)
    assert all("FIELD_ENCRYPTION_KEYS" in m.msg or "ID_HASH_KEY" in m.msg for m in found)


def test_the_key_check_passes_good_keys():
    good = [Fernet.generate_key().decode(), Fernet.generate_key().decode()]
    with override_settings(FIELD_ENCRYPTION_KEYS=good, ID_HASH_KEY=uuid.uuid4().hex):
        assert checks.run_checks(tags=["keys"]) == []


def test_the_web_process_refuses_to_start_with_a_broken_key():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mediation.settings.base",
        "FIELD_ENCRYPTION_KEYS": "CHANGE-ME-generate-a-fernet-key",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import mediation.wsgi"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    command = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert "parties.E001" in result.stderr
    assert "FIELD_ENCRYPTION_KEYS" in result.stderr
    assert command.returncode != 0
    assert "parties.E001" in command.stderr


# Invisible titles and names ---------------------------------------------------------------


@pytest.mark.parametrize("text", INVISIBLE)
def test_invisible_text_is_not_visible(text):
    assert not has_visible_text(text)
    assert has_visible_text(text + "张")


def _register_form(title: str, name: str) -> dict:
    data = {
        "title": title,
        "category": Category.objects.filter(applies_to="dispute", is_active=True).first().pk,
        "channel": channel("visit").pk,
        "received_on": "2026-03-11",
        "description": "情况",
        "mediation_track": "people",
        "risk_level": "low",
        "parties-TOTAL_FORMS": 1,
        "parties-INITIAL_FORMS": 0,
        "parties-MIN_NUM_FORMS": 1,
        "parties-MAX_NUM_FORMS": 50,
        "parties-0-name": name,
        "parties-0-role": "applicant",
    }
    return data


@pytest.mark.parametrize("text", INVISIBLE)
@pytest.mark.parametrize("field", ["title", "name"])
def test_the_web_form_refuses_an_invisible_title_or_name(client, township, text, field):
    client.force_login(staff(township.centre, Role.SUPERVISOR))
    form = _register_form("邻里纠纷", "张三")
    form["title" if field == "title" else "parties-0-name"] = text

    response = client.post(reverse("web:register", args=["dispute"]), form)

    assert response.status_code == 200
    assert "不可见字符" in response.content.decode()
    assert not Case.objects.exists()


def _api_body(title: str, name: str) -> dict:
    return {
        "title": title,
        "channel": Channel.objects.get(code="visit").pk,
        "received_on": "2026-03-10",
        "parties": [{"name": name, "role": "applicant"}],
    }


@pytest.mark.parametrize("text", INVISIBLE)
def test_the_api_refuses_an_invisible_title_or_name(township, text):
    from tests.integration.api.conftest import client_for

    api = client_for(staff(township.centre, Role.SUPERVISOR))

    bad_title = api.post("/api/cases/disputes/", _api_body(text, "张三"), format="json")
    bad_name = api.post("/api/cases/disputes/", _api_body("纠纷", text), format="json")

    assert bad_title.status_code == 400
    assert "title" in bad_title.json()["details"]
    assert bad_name.status_code == 400
    assert "parties" in bad_name.json()["details"]
    assert not Case.objects.exists()


@pytest.mark.parametrize("text", INVISIBLE)
def test_the_services_refuse_an_invisible_title_or_name(township, now, text):
    actor = staff(township.centre, Role.SUPERVISOR)
    common = {"actor": actor, "channel_id": channel("visit").pk, "now": now}

    with pytest.raises(InvalidInput):
        dispute_register(
            **common,
            title=text,
            received_on=now.date(),
            parties=[PartyInput(name="张三", role="applicant")],
        )
    with pytest.raises(InvalidInput):
        dispute_register(
            **common,
            title="纠纷",
            received_on=now.date(),
            parties=[PartyInput(name=text, role="applicant")],
        )


# Accused agency -------------------------------------------------------------------------------


def _petition(accused: Agency, **flags) -> dict:
    return {
        "title": "反映村委会问题",
        "channel": Channel.objects.get(code="visit").pk,
        "received_on": "2026-03-10",
        "parties": [{"name": "王五", "role": "petitioner"}],
        "accused_agency": accused.pk,
        **flags,
    }


@pytest.mark.parametrize(
    ("flags", "status"),
    [
        ({}, 400),
        ({"petition_type": "complaint"}, 400),
        ({"involves_accusation": False}, 400),
        ({"involves_accusation": True}, 201),
        ({"petition_type": "accusation"}, 201),
    ],
)
def test_the_api_refuses_an_accused_agency_without_the_accusation_flag(township, flags, status):
    from tests.integration.api.conftest import client_for

    api = client_for(staff(township.petition_office, Role.PETITION_OFFICER))

    response = api.post(
        "/api/cases/petitions/", _petition(township.committee, **flags), format="json"
    )

    assert response.status_code == status, response.content
    if status == 400:
        assert "accused_agency" in response.json()["details"]
        assert not Case.objects.exists()
