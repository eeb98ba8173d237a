"""The SMS provider adapter against a real HTTP sink on loopback (`harness.SmsSink`): signed
template requests, the provider's message id, error codes mapped to retry or permanent
failure, and the outbox's idempotency key as `OutId`.

Dates: the `now` fixture is Wed 2026-03-11 10:00 Asia/Shanghai (inside the quiet hours).
"""

from __future__ import annotations

import dataclasses

import pytest
from django.test import override_settings

from mediation.cases import lookup
from mediation.notifications.models import Delivery, DeliveryStatus
from tests.e2e.faults.harness import SmsSink
from tests.factories.cases import party_input, register_dispute
from tests.factories.deliveries import delivery_attempt

pytestmark = pytest.mark.django_db

SECRET = "sink-secret-0123456789"


@pytest.fixture
def sink(tmp_path):
    sink = SmsSink(tmp_path, secret=SECRET)
    sink.start()
    with override_settings(
        SMS_BACKEND="mediation.notifications.sms.ProviderSmsBackend",
        SMS_PROVIDER_URL=sink.url,
        SMS_PROVIDER_ACCESS_KEY="test-access-key",
        SMS_PROVIDER_SECRET=SECRET,
        DELIVERY_MAX_ATTEMPTS=3,
    ):
        yield sink
    sink.stop()


def consenting(n: int, **kw):
    return dataclasses.replace(party_input(n, **kw), sms_consent=True)


def _case_with_sms(township, now, phone_n: int = 1):
    case = register_dispute(
        township,
        now=now,
        parties=[consenting(phone_n, name="张三"), party_input(2, role="respondent")],
    )
    return case, Delivery.objects.get(notification__case=case, channel="sms")


def test_the_lookup_code_sms_is_a_signed_template_request_with_the_code(township, now, sink):
    case, delivery = _case_with_sms(township, now)

    outcome = delivery_attempt(delivery_id=delivery.pk, now=now, worker="t1")

    assert outcome == "sent"
    (record,) = sink.records()
    assert record["signed"] is True
    assert record["template"] == "SMS_LOOKUP_CODE"
    assert record["phone"] == "13800000001"
    assert record["key"] == f"notification-{delivery.notification_id}"
    assert record["params"]["number"] == case.number
    assert lookup.lookup_case_id(record["params"]["lookup_code"]) == case.pk
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert delivery.provider_message_id == "biz-000001"
    assert delivery.address == "13800000001"


def test_flow_control_is_retried_and_the_message_arrives_once(township, now, sink):
    _case, delivery = _case_with_sms(township, now)
    sink.script["13800000001"] = ["isv.BUSINESS_LIMIT_CONTROL", "HTTP503"]

    first = delivery_attempt(delivery_id=delivery.pk, now=now, worker="t1")
    delivery.refresh_from_db()
    later = delivery.next_attempt_at
    second = delivery_attempt(delivery_id=delivery.pk, now=later, worker="t1")
    delivery.refresh_from_db()
    third = delivery_attempt(delivery_id=delivery.pk, now=delivery.next_attempt_at, worker="t1")

    assert (first, second, third) == ("retry", "retry", "sent")
    assert [r["code"] for r in sink.records()] == [
        "isv.BUSINESS_LIMIT_CONTROL",
        "HTTP503",
        "OK",
    ]
    assert sink.delivered() == {f"notification-{delivery.notification_id}": 1}


def test_a_permanent_provider_error_fails_the_delivery_without_retrying(township, now, sink):
    _case, delivery = _case_with_sms(township, now)
    sink.script["13800000001"] = ["isv.MOBILE_NUMBER_ILLEGAL"]

    outcome = delivery_attempt(delivery_id=delivery.pk, now=now, worker="t1")

    delivery.refresh_from_db()
    assert outcome == "failed"
    assert delivery.status == DeliveryStatus.FAILED
    assert "isv.MOBILE_NUMBER_ILLEGAL" in delivery.last_error
    assert sink.delivered() == {}


def test_a_bad_signature_is_refused_by_the_provider_and_is_permanent(township, now, sink):
    _case, delivery = _case_with_sms(township, now)

    with override_settings(SMS_PROVIDER_SECRET="not-the-providers-secret"):
        outcome = delivery_attempt(delivery_id=delivery.pk, now=now, worker="t1")

    assert outcome == "failed"
    assert [(r["signed"], r["code"]) for r in sink.records()] == [(False, "SignatureDoesNotMatch")]


def test_a_resend_after_a_crash_carries_the_same_out_id_and_reaches_the_phone_once(
    township, now, sink
):
    _case, delivery = _case_with_sms(township, now)
    assert delivery_attempt(delivery_id=delivery.pk, now=now, worker="t1") == "sent"
    # The worker died after the provider accepted it and before the row said so.
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.PENDING)

    assert delivery_attempt(delivery_id=delivery.pk, now=now, worker="t2") == "sent"

    assert [r["duplicate"] for r in sink.records()] == [False, True]
    assert sink.delivered() == {f"notification-{delivery.notification_id}": 1}
    delivery.refresh_from_db()
    assert delivery.provider_message_id == "biz-000001"


def test_no_consent_no_sms(township, now, sink):
    register_dispute(township, now=now, parties=[party_input(1), party_input(2, role="respondent")])

    assert not Delivery.objects.filter(channel="sms").exists()
