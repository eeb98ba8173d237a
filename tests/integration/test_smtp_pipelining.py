"""E-mail over a server that offers PIPELINING (RFC 2920): the envelope in one write, errors
mapped as without it. A small threaded SMTP server on loopback records each read (no mocks)."""

from __future__ import annotations

import email
import email.policy
import socketserver
import threading
from collections.abc import Iterator

import pytest
from django.test import override_settings

from mediation.notifications.channels import (
    ChannelSession,
    OutboundMessage,
    PermanentError,
    TransientError,
    send_email,
)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.reads: list[bytes] = []  # every recv() outside DATA content
        self.messages: list[bytes] = []
        self.rcpt_reply = b"250 OK"


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: _Server = self.server  # type: ignore[assignment]
        sock = self.request
        sock.sendall(b"220 pipelining test server\r\n")
        buffer = b""
        in_data = False
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return
            if not in_data:
                server.reads.append(chunk)
            buffer += chunk
            replies = []
            while True:
                if in_data:
                    end = buffer.find(b"\r\n.\r\n")
                    if end < 0:
                        break
                    server.messages.append(buffer[: end + 2].replace(b"\r\n..", b"\r\n."))
                    buffer = buffer[end + 5 :]
                    in_data = False
                    replies.append(b"250 queued")
                    continue
                line, sep, rest = buffer.partition(b"\r\n")
                if not sep:
                    break
                buffer = rest
                verb = line[:4].upper()
                if verb == b"EHLO":
                    replies.append(b"250-test\r\n250-PIPELINING\r\n250 8BITMIME")
                elif verb == b"RCPT":
                    replies.append(server.rcpt_reply)
                elif verb == b"DATA":
                    ok = server.rcpt_reply.startswith(b"25")
                    replies.append(b"354 go ahead" if ok else b"554 no valid recipients")
                    in_data = ok
                elif verb == b"QUIT":
                    sock.sendall(b"221 bye\r\n")
                    return
                else:  # MAIL, RSET, NOOP, HELO
                    replies.append(b"250 OK")
            if replies:
                sock.sendall(b"\r\n".join(replies) + b"\r\n")


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        with override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=srv.server_address[1],
            EMAIL_TIMEOUT=5,
            EMAIL_USE_TLS=False,
            EMAIL_USE_SSL=False,
            DEFAULT_FROM_EMAIL="将官池镇调解系统 <noreply@example.org>",
        ):
            yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def _message(n: int, body: str = "请及时处理。") -> OutboundMessage:
    return OutboundMessage(
        notification_id=n, subject=f"督办通知 {n}", body=body, email=f"u{n}@example.org"
    )


def test_the_envelope_goes_in_one_write_and_the_message_arrives_whole(server):
    body = "第一行\n.以点开头的一行\n..两个点"
    with ChannelSession() as session:
        assert send_email(_message(1, body), session) == "u1@example.org"
        assert send_email(_message(2), session) == "u2@example.org"

    envelopes = [r for r in server.reads if r.startswith(b"MAIL")]
    assert envelopes == [
        b"MAIL FROM:<noreply@example.org>\r\nRCPT TO:<u1@example.org>\r\nDATA\r\n",
        b"MAIL FROM:<noreply@example.org>\r\nRCPT TO:<u2@example.org>\r\nDATA\r\n",
    ]
    first = email.message_from_bytes(server.messages[0], policy=email.policy.default)
    assert first["Subject"] == "督办通知 1"
    assert first["X-Idempotency-Key"] == "notification-1"
    assert first.get_payload(decode=True).decode("utf-8") == body
    assert len(server.messages) == 2


@pytest.mark.parametrize(
    ("reply", "error"),
    [(b"550 5.1.1 no such mailbox", PermanentError), (b"451 4.3.0 try later", TransientError)],
)
def test_a_refused_recipient_is_mapped_as_without_pipelining_and_the_session_goes_on(
    server, reply, error
):
    with ChannelSession() as session:
        server.rcpt_reply = reply
        with pytest.raises(error, match=reply.decode()[:3]):
            send_email(_message(3), session)
        server.rcpt_reply = b"250 OK"
        assert send_email(_message(4), session) == "u4@example.org"

    assert [email.message_from_bytes(m)["X-Idempotency-Key"] for m in server.messages] == [
        "notification-4"
    ]
