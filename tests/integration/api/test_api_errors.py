"""Every API error is `{"code", "message", "details"}` with a stable code and the right status,
in the user's language (zh-hans by default, English with `Accept-Language: en`)."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.utils import translation
from django.utils.translation import gettext
from knox.models import AuthToken
from rest_framework.test import APIClient

from mediation.accounts.models import Role
from mediation.api.errors import MESSAGES
from mediation.cases.models import Case, CaseEvent, Channel
from tests.factories.accounts import staff
from tests.factories.cases import dispute_in_state, petition_in_state
from tests.integration.api.conftest import client_for

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


def error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == code
    assert isinstance(body["details"], dict)
    return body


@pytest.fixture
def mediating(township, now) -> Case:
    return dispute_in_state("mediating", township=township, now=now)


@pytest.fixture
def mediator(township):
    return staff(township.committee, Role.MEDIATOR)


# 400 ---------------------------------------------------------------------------------------


def test_invalid_registration_is_400_with_field_details(mediator):
    body = {"title": "", "channel": 999_999, "received_on": "2026-02-30", "parties": []}

    response = client_for(mediator).post("/api/cases/disputes/", body, format="json")

    details = error(response, 400, "invalid")["details"]
    assert sorted(details) == ["channel", "parties", "received_on", "title"]


def test_a_domain_rule_broken_at_registration_is_400(mediator):
    body = {
        "title": "明日之事",
        "channel": Channel.objects.get(code="visit").pk,
        "received_on": "2026-03-12",
        "parties": [{"name": "张三", "role": "applicant"}],
    }

    response = client_for(mediator).post("/api/cases/disputes/", body, format="json")

    assert error(response, 400, "invalid")["message"] == "收到日期不能晚于今天。"
    assert Case.objects.count() == 0


def test_an_invalid_id_number_is_400_and_does_not_echo_the_number(mediator):
    body = {
        "title": "借款纠纷",
        "channel": Channel.objects.get(code="visit").pk,
        "received_on": "2026-03-11",
        "parties": [{"name": "张三", "role": "applicant", "id_number": "110105198001010010"}],
    }

    response = client_for(mediator).post("/api/cases/disputes/", body, format="json")

    error(response, 400, "invalid")
    assert "110105198001010010" not in response.content.decode()
    assert Case.objects.count() == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("kind=lawsuit", "kind"),
        ("state=sleeping", "state"),
        ("overdue=maybe", "overdue"),
        ("due_within=-1", "due_within"),
        ("due_within=367", "due_within"),
        ("due_within=soon", "due_within"),
        ("holder_agency=abc", "holder_agency"),
        ("holder_agency=99999999", "holder_agency"),
        ("holder_agency=99999999999999999999999", "holder_agency"),
        ("category=-1", "category"),
        ("channel=1.5", "channel"),
        ("q=" + "x" * 101, "q"),
        ("q=%00", "q"),
        ("page=0", "page"),
        ("page=abc", "page"),
        ("page_size=-5", "page_size"),
    ],
)
def test_unknown_filter_values_are_400_naming_the_filter(mediator, query, field):
    response = client_for(mediator).get(f"/api/cases/?{query}")

    assert list(error(response, 400, "invalid")["details"]) == [field]


def test_a_page_past_the_end_is_404(mediator):
    response = client_for(mediator).get("/api/cases/?page=999")

    error(response, 404, "not_found")


def test_malformed_json_is_400_parse_error(mediator, mediating):
    response = client_for(mediator).post(
        f"/api/cases/{mediating.pk}/transitions/suspend/",
        '{"reason": "鉴定",',
        content_type="application/json",
    )

    body = error(response, 400, "parse_error")
    assert body["message"] == "请求内容不是有效的 JSON。"
    assert list(body["details"]) == ["body"]


@pytest.mark.parametrize(
    "raw",
    [
        '{"reason": "\\ud800"}',  # a lone surrogate: valid JSON, not storable text
        "[" * 50_000 + "]" * 50_000,  # nesting deeper than the parser recurses
        '{"reason": NaN}',
    ],
)
def test_json_that_cannot_be_stored_is_400_parse_error(mediator, mediating, raw):
    response = client_for(mediator).post(
        f"/api/cases/{mediating.pk}/transitions/suspend/", raw, content_type="application/json"
    )

    error(response, 400, "parse_error")
    assert Case.objects.get(pk=mediating.pk).state == "mediating"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "x", "extra_days": "ten", "parties_consented": True}, "extra_days"),
        ({"reason": "x", "extra_days": 10, "parties_consented": "perhaps"}, "parties_consented"),
        ({"reason": ["x"], "extra_days": 10, "parties_consented": True}, "reason"),
        ({"reason": "x", "extra_days": 10, "parties_consented": True, "colour": "red"}, "colour"),
        ({"reason": "x", "extra_days": 91, "parties_consented": True}, "extra_days"),
        ({"reason": "x", "extra_days": 10}, "parties_consented"),
        (
            {"reason": "x", "extra_days": 10, "parties_consented": True, "expected_version": "v"},
            "expected_version",
        ),
    ],
)
def test_wrong_step_data_is_400_naming_the_field_and_changes_nothing(
    mediator, mediating, body, field
):
    response = client_for(mediator).post(
        f"/api/cases/{mediating.pk}/transitions/extend/", body, format="json"
    )

    assert field in error(response, 400, "invalid")["details"]
    assert Case.objects.get(pk=mediating.pk).version == mediating.version


def test_a_step_body_that_is_not_an_object_is_400(mediator, mediating):
    response = client_for(mediator).post(
        f"/api/cases/{mediating.pk}/transitions/suspend/", ["鉴定"], format="json"
    )

    error(response, 400, "invalid")


# 401 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/cases/", "/api/cases/1/", "/api/agencies/"])
def test_no_credentials_is_401_with_a_token_challenge(api, url):
    response = api.get(url)

    assert response["WWW-Authenticate"] == "Token"
    error(response, 401, "not_authenticated")


def test_the_schema_needs_credentials(api):
    response = api.get("/api/schema/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_the_docs_page_sends_a_browser_without_a_session_to_login(api):
    response = api.get("/api/docs/")

    assert response.status_code == 302
    assert response["Location"] == f"{settings.LOGIN_URL}?next=/api/docs/"


def test_a_wrong_token_is_401_authentication_failed(api):
    api.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")

    response = api.get("/api/cases/")

    error(response, 401, "authentication_failed")


def test_a_token_from_the_token_endpoint_authenticates(api, mediator, mediating):
    mediator.set_password("s3cret-pass")
    mediator.save()

    issued = api.post(
        "/api/auth/token/",
        {"username": mediator.username, "password": "s3cret-pass"},
        format="json",
    )
    api.credentials(HTTP_AUTHORIZATION=f"Token {issued.json()['token']}")
    listed = api.get("/api/cases/")

    assert issued.status_code == 200
    assert issued["Cache-Control"] == "no-store"
    assert AuthToken.objects.get(user=mediator).token_key == issued.json()["token"][:15]
    assert [row["id"] for row in listed.json()["results"]] == [mediating.pk]


def test_wrong_credentials_at_the_token_endpoint_are_400(api, mediator):
    response = api.post(
        "/api/auth/token/", {"username": mediator.username, "password": "nope"}, format="json"
    )

    assert "non_field_errors" in error(response, 400, "invalid")["details"]


def test_an_inactive_users_token_is_refused(api, mediator):
    _instance, token = AuthToken.objects.create(user=mediator)
    # Deactivating a user deletes their tokens; a token of an inactive user that is still
    # there (a bulk update sends no signal) is refused all the same.
    type(mediator).objects.filter(pk=mediator.pk).update(is_active=False)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    response = api.get("/api/cases/")

    error(response, 401, "authentication_failed")


# 403 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agency", "role", "transition", "body"),
    [
        # The county administrator sees the township's cases but takes no step.
        ("county_centre", Role.ADMINISTRATOR, "suspend", {"reason": "鉴定"}),
        # A police officer at the holder agency may not mediate.
        ("committee", Role.POLICE_OFFICER, "suspend", {"reason": "鉴定"}),
        (
            "committee",
            Role.COURT_CLERK,
            "record_agreement",
            {"form": "oral", "text": "李四于本月底前赔偿张三医疗费三千元，双方不再追究。"},
        ),
    ],
)
def test_a_user_who_sees_the_case_but_lacks_the_role_gets_403(
    township, mediating, agency, role, transition, body
):
    user = staff(getattr(township, agency), role)
    client = client_for(user)

    assert client.get(f"/api/cases/{mediating.pk}/").status_code == 200
    response = client.post(
        f"/api/cases/{mediating.pk}/transitions/{transition}/", body, format="json"
    )

    error(response, 403, "permission_denied")
    assert CaseEvent.objects.filter(case=mediating).count() == mediating.version


def test_registering_without_an_intake_role_is_403(township):
    admin = staff(township.county_centre, Role.ADMINISTRATOR)
    body = {
        "title": "借款纠纷",
        "channel": Channel.objects.get(code="visit").pk,
        "received_on": "2026-03-11",
        "parties": [{"name": "张三", "role": "applicant"}],
    }

    response = client_for(admin).post("/api/cases/disputes/", body, format="json")

    error(response, 403, "permission_denied")


# 404 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/cases/999999999/",
        "/api/cases/999999999/events/",
        "/api/cases/99999999999999999999999/",
        "/api/cases/-1/",
        "/api/cases/abc/",
        "/api/agencies/99999999999999999999999/",
        "/api/no-such-endpoint/",
        "/api/cases",
    ],
)
def test_unknown_resources_are_404(mediator, url):
    error(client_for(mediator).get(url), 404, "not_found")


def test_an_unknown_transition_name_is_404(mediator, mediating):
    response = client_for(mediator).post(
        f"/api/cases/{mediating.pk}/transitions/teleport/", {}, format="json"
    )

    error(response, 404, "not_found")


def test_another_agencys_case_is_404_not_403(other_township, mediator, now):
    theirs = dispute_in_state("mediating", township=other_township, now=now)

    response = client_for(mediator).post(
        f"/api/cases/{theirs.pk}/transitions/suspend/", {"reason": "鉴定"}, format="json"
    )

    body = error(response, 404, "not_found")
    assert body["message"] == "案件不存在或您无权查看。"


# 405, 415 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("delete", "/api/cases/{id}/"),
        ("put", "/api/cases/{id}/"),
        ("post", "/api/cases/"),
        ("get", "/api/cases/{id}/transitions/suspend/"),
        ("delete", "/api/agencies/"),
        ("post", "/api/deadlines/compute/"),
    ],
)
def test_an_unsupported_method_is_405(mediator, mediating, method, url):
    response = getattr(client_for(mediator), method)(url.format(id=mediating.pk))

    error(response, 405, "method_not_allowed")


def test_a_form_encoded_body_is_415(mediator, mediating):
    response = client_for(mediator).post(
        f"/api/cases/{mediating.pk}/transitions/suspend/", {"reason": "鉴定"}, format="multipart"
    )

    error(response, 415, "unsupported_media_type")


# 409 ---------------------------------------------------------------------------------------


def test_a_transition_not_allowed_from_the_current_state_is_409(mediator, mediating):
    response = client_for(mediator).post(
        f"/api/cases/{mediating.pk}/transitions/start_mediation/", {}, format="json"
    )

    body = error(response, 409, "transition_not_allowed")
    assert body["message"] == "案件当前状态为「调解中」，不能执行「开始调解」。"


def test_a_stale_expected_version_is_409_and_changes_nothing(mediator, mediating):
    response = client_for(mediator).post(
        f"/api/cases/{mediating.pk}/transitions/suspend/",
        {"reason": "等待伤情鉴定", "expected_version": mediating.version - 1},
        format="json",
    )

    body = error(response, 409, "stale")
    assert body["message"] == "案件已被他人更新，请刷新后重试。"
    assert Case.objects.get(pk=mediating.pk).state == "mediating"


def test_a_second_client_with_the_same_version_loses_with_409_stale(township, mediator, now):
    case = petition_in_state("handling", township=township, now=now)
    first = client_for(staff(township.petition_office, Role.PETITION_OFFICER))
    second = client_for(staff(township.petition_office, Role.PETITION_OFFICER, n=1))
    body = {"result": "explain", "text": "答复如下。", "served_on": "2026-03-11"}

    won = first.post(
        f"/api/cases/{case.pk}/transitions/issue_opinion/",
        {**body, "expected_version": case.version},
        format="json",
    )
    lost = second.post(
        f"/api/cases/{case.pk}/transitions/issue_opinion/",
        {**body, "expected_version": case.version},
        format="json",
    )

    assert won.status_code == 200
    error(lost, 409, "stale")
    assert case.opinions.count() == 1


# Language ----------------------------------------------------------------------------------
#
# The English wording belongs to the catalogs (the project's in mediation/locale wins over the
# API's own in mediation/api/locale), so these tests ask the catalogs what English to expect.

CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef\u3000-\u303f]")


def english(msgid: str) -> str:
    with translation.override("en"):
        return gettext(msgid)


@pytest.mark.parametrize(
    ("make_request", "status", "code", "zh"),
    [
        (
            lambda c, case: c.get("/api/cases/?state=sleeping"),
            400,
            "invalid",
            "提交的信息有误。",
        ),
        (
            lambda c, case: c.get("/api/cases/999999999/"),
            404,
            "not_found",
            "案件不存在或您无权查看。",
        ),
        (
            lambda c, case: c.post(
                f"/api/cases/{case.pk}/transitions/suspend/",
                {"reason": "鉴定", "expected_version": 1},
                format="json",
            ),
            409,
            "stale",
            "案件已被他人更新，请刷新后重试。",
        ),
        (
            lambda c, case: c.post(
                f"/api/cases/{case.pk}/transitions/start_mediation/", {}, format="json"
            ),
            409,
            "transition_not_allowed",
            "案件当前状态为「调解中」，不能执行「开始调解」。",
        ),
        (
            lambda c, case: c.delete(f"/api/cases/{case.pk}/"),
            405,
            "method_not_allowed",
            "不支持该请求方法。",
        ),
    ],
)
def test_messages_are_chinese_by_default_and_english_on_request(
    mediator, mediating, make_request, status, code, zh
):
    chinese = make_request(client_for(mediator), mediating)
    english_client = client_for(mediator)
    english_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    english_response = make_request(english_client, mediating)

    assert error(chinese, status, code)["message"] == zh
    assert chinese["Content-Language"] == "zh-hans"
    message = error(english_response, status, code)["message"]
    assert english_response["Content-Language"] == "en"
    assert message
    assert not CJK.search(message), message
    if english(zh) != zh:  # a fixed message the catalogs translate: exactly their English
        assert message == english(zh)


def english_for_code(code: str) -> str:
    """The generic message of a code, used when a message has no English translation."""
    with translation.override("en"):
        return str(MESSAGES[code])


def test_field_details_follow_the_language_too(mediator):
    client = client_for(mediator)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"

    response = client.get("/api/cases/?kind=lawsuit")

    assert error(response, 400, "invalid")["details"] == {
        "kind": ['"lawsuit" is not a valid choice.']
    }


def test_unauthenticated_english_message(api):
    api.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"

    body = error(api.get("/api/cases/"), 401, "not_authenticated")

    assert body["message"] == english_for_code("not_authenticated")
    assert not CJK.search(body["message"])


def test_unauthenticated_chinese_message_is_the_default(api):
    body = error(api.get("/api/cases/"), 401, "not_authenticated")

    assert body["message"] == "请先登录。"


def test_a_client_without_json_accept_gets_406(mediator):
    response = client_for(mediator).get("/api/cases/", HTTP_ACCEPT="text/csv")

    error(response, 406, "not_acceptable")


def test_a_session_post_without_the_csrf_token_is_403(mediator, mediating):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(mediator)

    read = client.get(f"/api/cases/{mediating.pk}/")
    write = client.post(
        f"/api/cases/{mediating.pk}/transitions/suspend/", {"reason": "鉴定"}, format="json"
    )

    assert read.status_code == 200
    body = error(write, 403, "permission_denied")
    assert body["details"]["reason"][0].startswith("CSRF Failed")
    assert Case.objects.get(pk=mediating.pk).state == "mediating"


def test_the_docs_page_serves_swagger_ui_from_local_static_files(mediator):
    client = APIClient()
    client.force_login(mediator)

    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn.jsdelivr.net" not in html
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")


def test_a_username_that_is_not_valid_unicode_is_400_not_500(api):
    response = api.post(
        "/api/auth/token/",
        '{"username": "\\ud800", "password": "x"}',
        content_type="application/json",
    )

    error(response, 400, "parse_error")


@pytest.mark.parametrize("day", ["9999-12-30", "0001-01-01"])
def test_an_implausible_step_date_is_400_not_a_server_error(mediator, mediating, day):
    # Without the API's bound, a performance date near 9999 is accepted by the step form and
    # overflows the follow-up clock's date arithmetic on the next step (a 500).
    response = client_for(mediator).post(
        f"/api/cases/{mediating.pk}/transitions/record_agreement/",
        {
            "form": "oral",
            "text": "李四于本月底前赔偿张三医疗费三千元，双方不再追究。",
            "performance_due_on": day,
        },
        format="json",
    )

    assert list(error(response, 400, "invalid")["details"]) == ["performance_due_on"]
    assert Case.objects.get(pk=mediating.pk).state == "mediating"
