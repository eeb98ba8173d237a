"""The e-mail's bytes, written directly (notifications.channels.render_email)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

from hypothesis import given
from hypothesis import strategies as st

from mediation.notifications.channels import OutboundMessage, _from_header, render_email

CREATED = dt.datetime(2027, 2, 10, 1, 2, 3, tzinfo=dt.UTC)


def _parsed(message: OutboundMessage, from_email: str = "mediation@localhost"):
    header, _sender = _from_header(from_email)
    raw = render_email(message, from_header=header)
    return raw, email.message_from_bytes(raw, policy=email.policy.default)


def test_a_notice_reads_back_as_written_with_its_stable_keys():
    message = OutboundMessage(
        notification_id=126702,
        subject="【即将到期】（2026）将官池人调字第0001号 丁满仓与相关方劳动争议纠纷："
        "调解期限还剩 1 个工作日",
        body="案件：丁满仓与相关方劳动争议纠纷\n到期：2027-02-18 24:00\n请及时处理。",
        email="mediator@example.org",
        created_at=CREATED,
    )
    raw, parsed = _parsed(message, "将官池镇调解系统 <noreply@example.org>")

    assert parsed["Subject"] == message.subject
    assert parsed.get_payload(decode=True).decode("utf-8") == message.body
    assert parsed["Message-ID"] == message.message_id
    assert parsed["X-Idempotency-Key"] == "notification-126702"
    assert parsed["To"] == "mediator@example.org"
    assert parsed["From"].addresses[0].display_name == "将官池镇调解系统"
    assert parsed["From"].addresses[0].addr_spec == "noreply@example.org"
    assert parsed["Date"].datetime == CREATED
    assert all(len(line) <= 78 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")
    # A retry writes the very same bytes.
    header = _from_header("将官池镇调解系统 <noreply@example.org>")[0]
    assert render_email(message, from_header=header) == raw


@given(subject=st.text(max_size=300), body=st.text(max_size=2000))
def test_any_subject_and_body_survive_and_cannot_add_a_header(subject, body):
    message = OutboundMessage(
        notification_id=7, subject=subject, body=body, email="a@example.org", created_at=CREATED
    )
    raw, parsed = _parsed(message)
    head = raw.split(b"\r\n\r\n", 1)[0]

    assert parsed["Subject"] == subject
    assert parsed.get_payload(decode=True).decode("utf-8", "surrogatepass") == body
    assert [
        line.split(b":", 1)[0] for line in head.split(b"\r\n") if not line.startswith(b" ")
    ] == [
        b"From",
        b"To",
        b"Subject",
        b"Date",
        b"Message-ID",
        b"X-Idempotency-Key",
        b"MIME-Version",
        b"Content-Type",
        b"Content-Transfer-Encoding",
    ]
