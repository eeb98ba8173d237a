"""Delivery over real sockets: an aiosmtpd SMTP server and an http.server webhook receiver run
in-process on free ports (no mocks). Asserts the idempotency keys on the wire, retry with
backoff for transient errors, permanent failures recorded, and leases."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from mediation.accounts.models import Role
from mediation.core.clock import SHANGHAI
from mediation.notifications.channels import ChannelSession, PermanentError
from mediation.notifications.models import ChannelPreference, Delivery, Notification
from mediation.notifications.selectors import (
    delivery_list_failed,
    notification_list_for,
    notification_unread_count,
)
from mediation.notifications.services import (
    NotificationSpec,
    deliveries_deliver,
    deliveries_dispatch,
    notification_mark_all_read,
    notification_mark_read,
    notifications_create_bulk,
)
from mediation.notifications.services import delivery as services
from tests.factories.accounts import staff
from tests.factories.agencies import township_tree
from tests.factories.deliveries import delivery_attempt

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 11, 10, 0, tzinfo=SHANGHAI)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Real servers --------------------------------------------------------------------------------


class SmtpHandler:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.data_replies: list[str] = []  # consumed one per DATA; empty: accept
        self.refuse: set[str] = set()
        self.peers: list[object] = []
        self.servers: list[object] = []  # aiosmtpd protocol per accepted message

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_replies:
            return self.data_replies.pop(0)
        self.peers.append(session.peer)
        self.servers.append(server)
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 Message accepted"


@pytest.fixture
def smtp() -> Iterator[SmtpHandler]:
    handler = SmtpHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    handler.controller = controller
    try:
        with override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=port,
            EMAIL_TIMEOUT=5,
            EMAIL_USE_TLS=False,
            EMAIL_USE_SSL=False,
        ):
            yield handler
    finally:
        controller.stop()


class Robot:
    """A WeCom/DingTalk-style group robot: records every POST, answers as told."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict]] = []
        self.statuses: list[int] = []  # consumed one per request; empty: 200 errcode 0
        robot = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length).decode("utf-8"))
                robot.requests.append((dict(self.headers.items()), body))
                status = robot.statuses.pop(0) if robot.statuses else 200
                payload = json.dumps({"errcode": 0 if status == 200 else 1, "errmsg": "ok"})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(payload.encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cgi-bin/webhook/send?key=k"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def robot() -> Iterator[Robot]:
    r = Robot()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


# Rows ----------------------------------------------------------------------------------------


@pytest.fixture
def town():
    return township_tree()


@pytest.fixture
def user(town):
    u = staff(town.village_committee, Role.MEDIATOR)
    u.email = "mediator@example.org"
    u.phone = "13800000001"
    u.save(update_fields=["email", "phone"])
    return u


def notify(user, key="k1", *, webhook_agency=None, subject="【期限提醒】测试", body="正文"):
    notifications_create_bulk(
        [
            NotificationSpec(
                recipient_id=user.pk,
                kind="reminder",
                subject=subject,
                body=body,
                key=key,
                data={"webhook_agency_id": webhook_agency.pk if webhook_agency else None},
                webhook_agency_id=webhook_agency.pk if webhook_agency else None,
            )
        ],
        now=NOW,
    )
    return Notification.objects.get(key=key)


def delivery(notification, channel):
    return Delivery.objects.get(notification=notification, channel=channel)


# E-mail --------------------------------------------------------------------------------------


def test_email_goes_over_smtp_with_message_id_and_idempotency_key(smtp, user):
    note = notify(user)
    row = delivery(note, "email")

    outcome = delivery_attempt(delivery_id=row.pk, now=NOW, worker="w1")

    assert outcome == "sent"
    row.refresh_from_db()
    assert (row.status, row.attempts, row.address, row.last_error) == (
        "sent",
        1,
        "mediator@example.org",
        "",
    )
    assert row.sent_at >= NOW
    assert row.lease_until is None
    [message] = smtp.messages
    assert message["Message-ID"] == f"<notification-{note.pk}@mediation.local>"
    assert message["X-Idempotency-Key"] == f"notification-{note.pk}"
    assert message["To"] == "mediator@example.org"
    assert message["Subject"] == "【期限提醒】测试"
    assert message.get_content().strip() == "正文"
    # Running it again sends nothing: the row is no longer claimable.
    assert delivery_attempt(delivery_id=row.pk, now=NOW, worker="w2") == "skipped"
    assert len(smtp.messages) == 1


def test_smtp_4xx_is_retried_with_backoff_and_jitter(smtp, user):
    smtp.data_replies = ["451 4.3.0 try again later"]
    note = notify(user)
    row = delivery(note, "email")

    assert delivery_attempt(delivery_id=row.pk, now=NOW, worker="w1") == "retry"

    row.refresh_from_db()
    assert (row.status, row.attempts, row.lease_until) == ("pending", 1, None)
    assert "451" in row.last_error
    wait = (row.next_attempt_at - NOW).total_seconds()
    assert 15 <= wait <= 31  # base 30 s: half fixed, half random
    assert delivery_attempt(delivery_id=row.pk, now=NOW, worker="w1") == "skipped"
    assert delivery_attempt(delivery_id=row.pk, now=row.next_attempt_at, worker="w1") == "sent"
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 2)
    [message] = smtp.messages
    assert message["X-Idempotency-Key"] == f"notification-{note.pk}"


def test_backoff_grows_exponentially_and_is_capped():
    with override_settings(DELIVERY_BACKOFF_BASE_SECONDS=10, DELIVERY_BACKOFF_MAX_SECONDS=100):
        for attempts, (low, high) in {1: (5, 10), 2: (10, 20), 3: (20, 40), 9: (50, 100)}.items():
            for _ in range(20):
                assert low <= services.backoff_seconds(attempts) <= high


def test_smtp_5xx_fails_permanently_without_blocking_the_others(smtp, town, user):
    bad = staff(town.village_committee, Role.MEDIATOR, n=1)
    bad.email = "nobody@example.org"
    bad.save(update_fields=["email"])
    smtp.refuse = {"nobody@example.org"}
    bad_row = delivery(notify(bad, "k-bad"), "email")
    good_row = delivery(notify(user, "k-good"), "email")

    tally = deliveries_deliver([bad_row.pk, good_row.pk], worker="w1", clock=lambda: NOW)

    assert (tally.failed, tally.sent) == (1, 1)
    bad_row.refresh_from_db()
    assert bad_row.status == "failed"
    assert bad_row.last_error.startswith("SMTP 550")
    assert list(delivery_list_failed()) == [bad_row]
    assert [m["To"] for m in smtp.messages] == ["mediator@example.org"]


def test_a_batch_reuses_one_smtp_connection(smtp, town, user):
    rows = [delivery(notify(user, f"k{i}"), "email") for i in range(3)]

    tally = deliveries_deliver([r.pk for r in rows], worker="w1", clock=lambda: NOW)

    assert tally.sent == 3
    assert len(smtp.messages) == 3
    assert len(set(smtp.peers)) == 1
    ids = {m["X-Idempotency-Key"] for m in smtp.messages}
    assert ids == {f"notification-{r.notification_id}" for r in rows}


@pytest.fixture
def eager_worker():
    """Celery tasks run in-process, as in one worker process; its channel session is closed
    afterwards."""
    from workers import deliveries as delivery_tasks
    from workers.celery import app

    old = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    try:
        yield delivery_tasks
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = old
        delivery_tasks._close_channel_session()


def test_a_worker_process_keeps_one_smtp_connection_across_batches(smtp, user, eager_worker):
    rows = [delivery(notify(user, f"k{i}"), "email") for i in range(3)]

    # The first batch carries one id; it hands the other two to a successor batch.
    eager_worker.deliver_batch.apply(args=[[rows[0].pk]]).get()

    assert Delivery.objects.filter(status="sent").count() == 3
    assert len(smtp.messages) == 3
    assert len(set(smtp.peers)) == 1


def test_an_smtp_connection_the_server_dropped_is_reopened_and_the_message_sent(smtp, user):
    first, second = (delivery(notify(user, f"k{i}"), "email") for i in range(2))
    session = ChannelSession()
    assert deliveries_deliver([first.pk], worker="w1", clock=lambda: NOW, session=session).sent
    # The server closes the idle connection (e.g. its idle timeout) between two batches.
    [server] = smtp.servers
    smtp.controller.loop.call_soon_threadsafe(server.transport.close)
    time.sleep(0.2)

    tally = deliveries_deliver([second.pk], worker="w1", clock=lambda: NOW, session=session)
    session.close()

    assert (tally.sent, tally.retry) == (1, 0)
    assert len(set(smtp.peers)) == 2
    assert sorted(m["X-Idempotency-Key"] for m in smtp.messages) == sorted(
        f"notification-{r.notification_id}" for r in (first, second)
    )


def test_an_smtp_connection_idle_too_long_is_replaced_before_use(smtp, user):
    first, second = (delivery(notify(user, f"k{i}"), "email") for i in range(2))
    session = ChannelSession(max_idle=0.05)
    deliveries_deliver([first.pk], worker="w1", clock=lambda: NOW, session=session)
    time.sleep(0.1)
    deliveries_deliver([second.pk], worker="w1", clock=lambda: NOW, session=session)
    session.close()

    assert len(smtp.messages) == 2
    assert len(set(smtp.peers)) == 2


def test_database_statements_per_batch_do_not_grow_with_its_size(smtp, robot, town, user):
    town.village_committee.webhook_url = robot.url
    town.village_committee.save(update_fields=["webhook_url"])

    def statements(n: int, prefix: str) -> int:
        ids = [
            r.pk
            for i in range(n)
            for r in Delivery.objects.filter(
                notification=notify(user, f"{prefix}{i}", webhook_agency=town.village_committee)
            )
        ]
        with CaptureQueriesContext(connection) as queries:
            tally = deliveries_deliver(ids, worker="w1", clock=lambda: NOW)
        assert tally.sent == len(ids) == 2 * n
        return len(queries)

    assert statements(2, "a") == statements(20, "b")


def test_a_row_taken_over_within_a_batch_is_not_sent(smtp, user, monkeypatch):
    # The lease re-check before each send is batched (one statement per
    # CONFIRM_WITHIN_SECONDS); with 0 it runs before every message.
    monkeypatch.setattr(services, "CONFIRM_WITHIN_SECONDS", 0.0)
    first, second = (delivery(notify(user, f"k{i}"), "email") for i in range(2))
    send_email = services.SENDERS["email"]

    def send_then_lose_the_second(message, session):
        address = send_email(message, session)
        Delivery.objects.filter(pk=second.pk).update(claimed_by="B")  # an operator reset + B
        return address

    monkeypatch.setitem(services.SENDERS, "email", send_then_lose_the_second)

    tally = deliveries_deliver([first.pk, second.pk], worker="A", clock=lambda: NOW)

    assert (tally.sent, tally.lost) == (1, 1)
    assert [m["X-Idempotency-Key"] for m in smtp.messages] == [
        f"notification-{first.notification_id}"
    ]
    second.refresh_from_db()
    assert (second.status, second.claimed_by) == ("sending", "B")


def test_smtp_server_down_is_transient(user):
    row = delivery(notify(user), "email")
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=free_port(),  # nothing listens
        EMAIL_TIMEOUT=2,
    ):
        assert delivery_attempt(delivery_id=row.pk, now=NOW, worker="w1") == "retry"
    row.refresh_from_db()
    assert row.status == "pending"
    assert "ConnectionRefusedError" in row.last_error


def test_missing_address_is_a_permanent_failure(smtp, user):
    row = delivery(notify(user), "email")
    user.email = ""
    user.save(update_fields=["email"])

    assert delivery_attempt(delivery_id=row.pk, now=NOW, worker="w1") == "failed"
    row.refresh_from_db()
    assert (row.status, row.last_error) == ("failed", "收件人没有电子邮件地址")


def test_transient_errors_give_up_after_max_attempts(smtp, user):
    smtp.data_replies = ["421 4.7.0 busy"] * 3
    row = delivery(notify(user), "email")
    with override_settings(DELIVERY_MAX_ATTEMPTS=2):
        assert delivery_attempt(delivery_id=row.pk, now=NOW, worker="w1") == "retry"
        row.refresh_from_db()
        assert delivery_attempt(delivery_id=row.pk, now=row.next_attempt_at, worker="w1") == (
            "failed"
        )
    row.refresh_from_db()
    assert row.status == "failed"
    assert row.last_error.startswith("重试 2 次后放弃")


# Webhook -------------------------------------------------------------------------------------


def test_webhook_posts_wecom_text_with_idempotency_key(robot, town, user):
    village = town.village_committee
    village.webhook_url = robot.url
    village.save(update_fields=["webhook_url"])
    note = notify(user, webhook_agency=village, subject="【超期督办】案号", body="督办单")
    row = delivery(note, "webhook")

    assert delivery_attempt(delivery_id=row.pk, now=NOW, worker="w1") == "sent"

    [(headers, body)] = robot.requests
    assert headers["Idempotency-Key"] == f"notification-{note.pk}"
    assert headers["Content-Type"].startswith("application/json")
    assert body == {
        "msgtype": "text",
        "text": {"content": "【超期督办】案号\n督办单"},
        "idempotency_key": f"notification-{note.pk}",
    }
    row.refresh_from_db()
    assert (row.status, row.address) == ("sent", robot.url)


def test_webhook_5xx_is_retried_and_4xx_fails(robot, town, user):
    village = town.village_committee
    village.webhook_url = robot.url
    village.save(update_fields=["webhook_url"])
    robot.statuses = [503, 400]
    first = delivery(notify(user, "k1", webhook_agency=village), "webhook")
    second = delivery(notify(user, "k2", webhook_agency=village), "webhook")

    assert delivery_attempt(delivery_id=first.pk, now=NOW, worker="w1") == "retry"
    assert delivery_attempt(delivery_id=second.pk, now=NOW, worker="w1") == "failed"

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.last_error[:8]) == ("pending", "HTTP 503")
    assert (second.status, second.last_error[:8]) == ("failed", "HTTP 400")


def test_webhook_timeout_is_transient(town, user):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    village = town.village_committee
    village.webhook_url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
    village.save(update_fields=["webhook_url"])
    row = delivery(notify(user, webhook_agency=village), "webhook")
    try:
        with override_settings(WEBHOOK_TIMEOUT_SECONDS=0.5):
            assert delivery_attempt(delivery_id=row.pk, now=NOW, worker="w1") == "retry"
    finally:
        silent.close()
    row.refresh_from_db()
    assert "Webhook 连接错误" in row.last_error


def test_agency_preference_can_turn_the_group_robot_off(town, user):
    village = town.village_committee
    village.webhook_url = "http://127.0.0.1:9/hook"
    village.save(update_fields=["webhook_url"])
    ChannelPreference.objects.create(agency=village, webhook=False)

    note = notify(user, webhook_agency=village)

    assert sorted(note.deliveries.values_list("channel", flat=True)) == ["email"]


# SMS -----------------------------------------------------------------------------------------


class RefusingSms:
    def send(self, *, phone, text, idempotency_key):
        raise PermanentError("号码无效")


def test_sms_goes_through_the_configured_gateway(user, caplog):
    ChannelPreference.objects.create(user=user, email=False, sms=True)
    note = notify(user)
    row = delivery(note, "sms")

    with caplog.at_level("INFO", logger="mediation.notifications.channels"):
        assert delivery_attempt(delivery_id=row.pk, now=NOW, worker="w1") == "sent"
    assert f"notification-{note.pk}" in caplog.text
    assert "138****0001" in caplog.text

    other = delivery(notify(user, "k2"), "sms")
    with override_settings(SMS_BACKEND="tests.integration.test_delivery.RefusingSms"):
        assert delivery_attempt(delivery_id=other.pk, now=NOW, worker="w1") == "failed"


# Leases and dispatch -------------------------------------------------------------------------


def test_a_leased_delivery_is_taken_over_only_after_the_lease_expires(smtp, user, monkeypatch):
    note = notify(user)
    row = delivery(note, "email")
    # Leases run on the real clock; drive it by hand here.
    lease_now = [NOW]
    monkeypatch.setattr(services, "lease_clock", lambda: lease_now[0])
    # Worker A claims it and dies before sending (kill -9).
    assert services._claim(row.pk, now=NOW, worker="A") is not None
    row.refresh_from_db()
    assert (row.status, row.claimed_by) == ("sending", "A")
    assert row.lease_until == NOW + dt.timedelta(seconds=60)

    lease_now[0] = NOW + dt.timedelta(seconds=59)
    assert delivery_attempt(delivery_id=row.pk, now=lease_now[0], worker="B") == "skipped"
    lease_now[0] = NOW + dt.timedelta(seconds=60)
    assert delivery_attempt(delivery_id=row.pk, now=lease_now[0], worker="B") == "sent"
    row.refresh_from_db()
    assert (row.status, row.claimed_by, row.attempts) == ("sent", "B", 2)
    # A, coming back, cannot overwrite B's result.
    assert services._finish(row.pk, "A", status="failed") is False
    assert [m["Message-ID"] for m in smtp.messages] == [f"<notification-{note.pk}@mediation.local>"]


def test_lease_lost_during_a_slow_send_is_not_sent(smtp, user):
    row = delivery(notify(user), "email")
    services._claim(row.pk, now=NOW, worker="A")
    Delivery.objects.filter(pk=row.pk).update(claimed_by="B")  # B took over meanwhile

    assert services._still_ours_many([row.pk], "A") == set()


def test_dispatch_hands_ids_out_once_until_the_mark_expires(user):
    notify(user, "k1")
    notify(user, "k2")

    first = deliveries_dispatch(now=NOW, limit=10)
    again = deliveries_dispatch(now=NOW + dt.timedelta(seconds=30), limit=10)
    after_lease = deliveries_dispatch(now=NOW + dt.timedelta(seconds=61), limit=10)

    assert len(first) == 2
    assert again == []
    assert sorted(after_lease) == sorted(first)  # the Celery message may have been lost


def test_delivery_test_delay_setting_sleeps_before_sending(smtp, user):
    row = delivery(notify(user), "email")
    with override_settings(DELIVERY_TEST_DELAY_SECONDS=0.2):
        started = dt.datetime.now(dt.UTC)
        assert delivery_attempt(delivery_id=row.pk, now=NOW, worker="w1") == "sent"
    assert (dt.datetime.now(dt.UTC) - started).total_seconds() >= 0.2


# Inbox ---------------------------------------------------------------------------------------


def test_inbox_unread_count_and_mark_read(town, user):
    other = staff(town.village_committee, Role.MEDIATOR, n=2)
    a = notify(user, "k1")
    b = notify(user, "k2")
    c = notify(other, "k3")

    assert notification_unread_count(user=user) == 2
    assert [n.pk for n in notification_list_for(user=user)] == [b.pk, a.pk]
    assert notification_mark_read(user=user, notification_ids=[a.pk, c.pk], now=NOW) == 1
    assert notification_unread_count(user=user) == 1
    assert notification_unread_count(user=other) == 1
    assert [n.pk for n in notification_list_for(user=user, unread_only=True)] == [b.pk]
    assert notification_mark_all_read(user=user, now=NOW) == 1
    assert notification_unread_count(user=user) == 0


def test_inactive_users_get_nothing_and_keys_are_idempotent(town, user):
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert (
        notifications_create_bulk(
            [
                NotificationSpec(
                    recipient_id=user.pk, kind="reminder", subject="s", body="b", key="x"
                )
            ],
            now=NOW,
        ).notifications
        == 0
    )
    active = staff(town.village_committee, Role.MEDIATOR, n=3)
    spec = NotificationSpec(recipient_id=active.pk, kind="reminder", subject="s", body="b", key="y")
    assert notifications_create_bulk([spec], now=NOW).notifications == 1
    assert notifications_create_bulk([spec], now=NOW).notifications == 0
    assert Notification.objects.filter(key="y").count() == 1


def test_a_business_clock_jump_does_not_expire_a_live_lease(smtp, user):
    # A worker is sending under its lease when the business clock steps a week ahead: the row
    # must stay the first worker's (a take-over here sent duplicates in the clock-jump test).
    row = delivery(notify(user), "email")
    assert services._claim(row.pk, now=NOW, worker="A") is not None

    jumped = NOW + dt.timedelta(days=7)
    assert delivery_attempt(delivery_id=row.pk, now=jumped, worker="B") == "skipped"
    row.refresh_from_db()
    assert (row.status, row.claimed_by) == ("sending", "A")
