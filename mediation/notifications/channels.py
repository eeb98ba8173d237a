"""Outbound channels: e-mail (SMTP), group-robot webhook (WeCom/DingTalk text), SMS gateway.

Each sender takes an `OutboundMessage` and either returns the address it sent to or raises:
- `TransientError`: worth retrying (connection errors, timeouts, SMTP 4xx, HTTP 5xx/408/429);
- `PermanentError`: retrying cannot help (SMTP 5xx, HTTP 4xx, no address, bad URL).

Every message carries the idempotency key `notification-{id}`: e-mail as
`Message-ID: <notification-{id}@mediation.local>` and `X-Idempotency-Key`, webhooks as the
`Idempotency-Key` header and an `idempotency_key` field in the JSON body, SMS as an argument
to the gateway. A resend after a crash carries the same key (RELIABILITY.md §2.6).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import email.utils
import functools
import http.client
import json
import logging
import re
import smtplib
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class DeliveryError(Exception):
    """Base: `str(exc)` is recorded as the delivery's `last_error`."""


class TransientError(DeliveryError):
    pass


class PermanentError(DeliveryError):
    pass


@dataclass(frozen=True)
class OutboundMessage:
    notification_id: int
    subject: str
    body: str
    email: str = ""
    phone: str = ""
    webhook_url: str = ""
    created_at: dt.datetime | None = None  # the notification's: the e-mail's Date header
    # SMS to a party: the provider template's name (`settings.SMS_TEMPLATES`) and parameters.
    sms_template: str = ""
    sms_params: dict[str, str] = field(default_factory=dict)

    @property
    def idempotency_key(self) -> str:
        return f"notification-{self.notification_id}"

    @property
    def message_id(self) -> str:
        return f"<notification-{self.notification_id}@{settings.NOTIFICATION_MESSAGE_ID_DOMAIN}>"


# E-mail --------------------------------------------------------------------------------------


def _smtp_code_error(code: int, text: str) -> DeliveryError:
    if 400 <= code < 500:
        return TransientError(f"SMTP {code}: {text}")
    return PermanentError(f"SMTP {code}: {text}")


def _decode(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class ChannelSession:
    """Resources shared by deliveries, opened on first use and reused: one SMTP connection,
    and one kept-alive HTTP connection per webhook host (a new TCP + SMTP or HTTP handshake
    per message would cap throughput). A delivery worker process keeps one session across
    its batches (`workers.deliveries`); a batch without one opens its own.

    A connection that failed is closed and the next message opens a new one; one left idle
    for more than `max_idle` seconds is replaced before use (servers drop idle clients, and
    a silently dropped connection would only fail after the timeout).
    """

    def __init__(self, *, max_idle: float = 30.0) -> None:
        self.max_idle = max_idle
        self._email: Any = None
        self._email_used = 0.0
        self._http: dict[tuple[str, str, int | None], http.client.HTTPConnection] = {}
        self._http_used: dict[tuple[str, str, int | None], float] = {}
        self._proxied: dict[tuple[str, str], bool] = {}

    def email_connection(self) -> tuple[Any, bool]:
        """(connection, fresh): `fresh` is False when an earlier message opened it."""
        now = time.monotonic()
        if self._email is not None and now - self._email_used > self.max_idle:
            self.reset_email()
        self._email_used = now
        if self._email is not None:
            return self._email, False
        connection = get_connection(fail_silently=False, timeout=settings.EMAIL_TIMEOUT)
        connection.open()
        self._email = connection
        return connection, True

    def proxied(self, scheme: str, host: str) -> bool:
        """`_proxied`, remembered per host (reading the environment per message is slow)."""
        key = (scheme, host)
        if key not in self._proxied:
            self._proxied[key] = _proxied(scheme, host)
        return self._proxied[key]

    def reset_email(self) -> None:
        connection, self._email = self._email, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        """POST over this batch's kept-alive connection to the URL's host: (status, reason,
        body ≤ 64 KiB). A reused connection the server had closed is replaced once; other
        errors (OSError, http.client.HTTPException) propagate."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname or "", parts.port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        for _attempt in range(2):
            now = time.monotonic()
            if key in self._http and now - self._http_used.get(key, now) > self.max_idle:
                self.reset_http(key)
            self._http_used[key] = now
            conn = self._http.get(key)
            reused = conn is not None
            if conn is None:
                cls = (
                    http.client.HTTPSConnection
                    if parts.scheme == "https"
                    else http.client.HTTPConnection
                )
                conn = cls(key[1], parts.port, timeout=settings.WEBHOOK_TIMEOUT_SECONDS)
                self._http[key] = conn
            try:
                conn.request("POST", target, body=body, headers=headers)
                response = conn.getresponse()
                raw = response.read(65536)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.reset_http(key)
                if reused:
                    continue  # the server closed the idle connection: once more, on a new one
                raise
            except BaseException:
                self.reset_http(key)
                raise
            if response.will_close or not response.isclosed():
                self.reset_http(key)  # not reusable (server closes, or an unread body)
            return response.status, response.reason, raw
        raise http.client.RemoteDisconnected("连接被服务器关闭")

    def reset_http(self, key: tuple[str, str, int | None] | None = None) -> None:
        keys = [key] if key is not None else list(self._http)
        for k in keys:
            conn = self._http.pop(k, None)
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

    def close(self) -> None:
        self.reset_email()
        self.reset_http()

    def __enter__(self) -> ChannelSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def send_email(message: OutboundMessage, session: ChannelSession | None = None) -> str:
    """Send over the configured e-mail backend (SMTP: EMAIL_HOST / EMAIL_PORT)."""
    if not message.email:
        raise PermanentError("收件人没有电子邮件地址")
    own = session is None
    session = session or ChannelSession()
    try:
        return _send_email(message, session)
    except smtplib.SMTPServerDisconnected:
        # A reused connection the server closed meanwhile: nothing was sent; reconnect once.
        session.reset_email()
        return _send_email(message, session)
    finally:
        if own:
            session.close()


# The e-mail's bytes are written directly (`render_email`): Django's EmailMessage.message()
# with header encoding and folding, then `as_bytes`, was about 0.4 ms of the 0.5 ms a delivery
# cost a worker, and the SMTP conversation only 0.1 ms. The bytes depend only on the
# notification (Date is its creation time, Message-ID and X-Idempotency-Key its id), so a retry
# sends exactly the same message.

_ENCODED_WORD_BYTES = 39  # 52 base64 characters: "Subject: " and one word stay within 78
# Printable ASCII without spaces: such an address is written into To: as it is; any other goes
# through Django's EmailMessage (IDNA, refusal of line breaks).
_PLAIN_ADDRESS = re.compile(r"[!-~]+@[!-~]+")


def _encoded_words(text: str) -> str:
    """RFC 2047 base64 encoded words for a header value, split on character boundaries and
    folded (CRLF SP). Every character is encoded, so no CR, LF or other control character of
    the text can end the header."""
    words: list[bytes] = []
    chunk = bytearray()
    for char in text:
        raw = char.encode("utf-8")
        if len(chunk) + len(raw) > _ENCODED_WORD_BYTES:
            words.append(bytes(chunk))
            chunk.clear()
        chunk += raw
    if chunk or not words:
        words.append(bytes(chunk))
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w).decode('ascii')}?=" for w in words)


@functools.cache
def _from_header(from_email: str) -> tuple[str, str]:
    """(header value, envelope address) of DEFAULT_FROM_EMAIL ("Name <addr>" or "addr")."""
    name, address = email.utils.parseaddr(from_email)
    if name and not name.isascii():
        return f"{_encoded_words(name)} <{address}>", address
    return (email.utils.formataddr((name, address)) if name else address), address


def render_email(message: OutboundMessage, *, from_header: str) -> bytes:
    """The message as it goes over SMTP: text/plain UTF-8, base64 body, CRLF line ends."""
    created = message.created_at or dt.datetime.now(dt.UTC)
    head = (
        f"From: {from_header}\r\n"
        f"To: {message.email}\r\n"
        f"Subject: {_encoded_words(message.subject)}\r\n"
        f"Date: {email.utils.format_datetime(created)}\r\n"
        f"Message-ID: {message.message_id}\r\n"
        f"X-Idempotency-Key: {message.idempotency_key}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    )
    body = base64.encodebytes(message.body.encode("utf-8")).replace(b"\n", b"\r\n")
    return head.encode("ascii") + body


_LEADING_DOT = re.compile(rb"(?m)^\.")


def _sendmail(smtp: smtplib.SMTP, sender: str, recipient: str, raw: bytes) -> None:
    """Send one message on an open SMTP connection. When the server offers PIPELINING
    (RFC 2920) the envelope goes in one write (MAIL, RCPT, DATA; then the content): two round
    trips instead of four, which on a loaded machine are what a message costs. Errors raise
    what `smtplib.SMTP.sendmail` raises, so `_send_email` maps them the same way."""
    smtp.ehlo_or_helo_if_needed()
    if not smtp.has_extn("pipelining"):
        smtp.sendmail(sender, [recipient], raw)
        return
    smtp.send(f"MAIL FROM:<{sender}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode("ascii"))
    mail, rcpt, data = smtp.getreply(), smtp.getreply(), smtp.getreply()
    if data[0] != 354:
        if data[0] == 250:  # a server that took DATA without a recipient: end it empty
            smtp.send(b".\r\n")
            smtp.getreply()
        smtp.rset()
        if mail[0] != 250:
            raise smtplib.SMTPSenderRefused(mail[0], mail[1], sender)
        if rcpt[0] not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({recipient: rcpt})
        raise smtplib.SMTPDataError(data[0], data[1])
    if mail[0] != 250 or rcpt[0] not in (250, 251):  # DATA taken anyway: send nothing
        smtp.send(b".\r\n")
        smtp.getreply()
        smtp.rset()
        if mail[0] != 250:
            raise smtplib.SMTPSenderRefused(mail[0], mail[1], sender)
        raise smtplib.SMTPRecipientsRefused({recipient: rcpt})
    body = _LEADING_DOT.sub(b"..", raw)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    smtp.send(body + b".\r\n")
    code, text = smtp.getreply()
    if code != 250:
        smtp.rset()
        raise smtplib.SMTPDataError(code, text)


def _django_email(message: OutboundMessage) -> EmailMessage:
    return EmailMessage(
        subject=message.subject,
        body=message.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.email],
        headers={
            "Message-ID": message.message_id,
            "X-Idempotency-Key": message.idempotency_key,
        },
    )


def _send_email(message: OutboundMessage, session: ChannelSession) -> str:
    fresh = True
    try:
        connection, fresh = session.email_connection()
        smtp = getattr(connection, "connection", None)
        if isinstance(smtp, smtplib.SMTP) and _PLAIN_ADDRESS.fullmatch(message.email):
            # Django's SMTP backend, connected: the pre-written bytes go out as they are.
            header, sender = _from_header(settings.DEFAULT_FROM_EMAIL)
            _sendmail(smtp, sender, message.email, render_email(message, from_header=header))
            sent = 1
        else:  # another backend (tests' locmem, console) or an internationalised address
            sent = connection.send_messages([_django_email(message)])
    except smtplib.SMTPServerDisconnected:
        session.reset_email()
        if not fresh:
            raise  # send_email reconnects once
        raise TransientError("SMTP 连接被服务器关闭") from None
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _msg in exc.recipients.values()]
        code = max(codes) if codes else 550
        texts = "; ".join(_decode(msg) for _code, msg in exc.recipients.values())
        raise _smtp_code_error(code, texts) from exc
    except smtplib.SMTPResponseException as exc:
        session.reset_email()
        raise _smtp_code_error(exc.smtp_code, _decode(exc.smtp_error)) from exc
    except (smtplib.SMTPException, OSError) as exc:
        session.reset_email()
        raise TransientError(f"SMTP 连接错误：{type(exc).__name__}: {exc}") from exc
    if not sent:
        raise TransientError("邮件未被发送（后端返回 0）")
    return message.email


# Webhook -------------------------------------------------------------------------------------

# WeCom/DingTalk answer HTTP 200 with an errcode; these mean "busy / rate limited".
_TRANSIENT_ERRCODES = frozenset({-1, 45009, 45033, 130101})
_TRANSIENT_HTTP = frozenset({408, 425, 429})


def webhook_payload(message: OutboundMessage) -> dict[str, object]:
    return {
        "msgtype": "text",
        "text": {"content": f"{message.subject}\n{message.body}"},
        "idempotency_key": message.idempotency_key,
    }


def send_webhook(message: OutboundMessage, session: ChannelSession | None = None) -> str:
    """POST the group-robot text message to the holder agency's webhook URL.

    Over the batch's kept-alive connection (`ChannelSession.post`); through urllib, one
    connection per message, only when a proxy from the environment applies to the URL.
    Redirects are not followed: a robot URL that answers 3xx is reported as a permanent error.
    """
    url = message.webhook_url
    if not url:
        raise PermanentError("机构未配置群机器人 Webhook")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PermanentError(f"Webhook 地址无效：{url}")
    body = json.dumps(webhook_payload(message), ensure_ascii=False).encode("utf-8")
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Idempotency-Key": message.idempotency_key,
    }
    try:
        proxied = (
            session.proxied(parts.scheme, parts.hostname)
            if session is not None
            else _proxied(parts.scheme, parts.hostname)
        )
        if proxied:
            status, reason, raw = _post_urllib(url, body, headers)
        else:
            own = session is None
            session = session or ChannelSession()
            try:
                status, reason, raw = session.post(url, body, headers)
            finally:
                if own:
                    session.close()
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TransientError(f"Webhook 连接错误：{type(exc).__name__}: {reason}") from exc
    if status >= 300:
        if status >= 500 or status in _TRANSIENT_HTTP:
            raise TransientError(f"HTTP {status}: {reason}")
        raise PermanentError(f"HTTP {status}: {reason}")
    try:
        answer = json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        answer = {}
    errcode = answer.get("errcode", 0) if isinstance(answer, dict) else 0
    if errcode not in (0, None):
        text = f"errcode {errcode}: {answer.get('errmsg', '')}"
        if errcode in _TRANSIENT_ERRCODES:
            raise TransientError(text)
        raise PermanentError(text)
    return url


def _proxied(scheme: str, host: str) -> bool:
    """Whether urllib would send this URL through a proxy from the environment."""
    proxies = urllib.request.getproxies()
    return scheme in proxies and not urllib.request.proxy_bypass(host)


def _post_urllib(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(  # noqa: S310 - scheme checked by the caller
            request, timeout=settings.WEBHOOK_TIMEOUT_SECONDS
        ) as response:
            return response.status, response.reason, response.read(65536)
    except urllib.error.HTTPError as exc:
        return exc.code, str(exc.reason), b""


# SMS -----------------------------------------------------------------------------------------


class Sent(str):
    """The address a message went to, with the provider's id of it (SMS)."""

    provider_message_id: str = ""

    def __new__(cls, address: str, provider_message_id: str = "") -> Sent:
        obj = super().__new__(cls, address)
        obj.provider_message_id = provider_message_id
        return obj


class SmsBackend(Protocol):
    def send(
        self,
        *,
        phone: str,
        text: str,
        idempotency_key: str,
        template: str = "",
        params: dict[str, str] | None = None,
    ) -> str | None:
        """Send one text (a provider template with its parameters when `template` is set);
        return the provider's message id (or None); raise TransientError or PermanentError."""


class LoggingSmsBackend:
    """Default gateway: logs the message instead of sending it (demo and tests)."""

    def send(
        self,
        *,
        phone: str,
        text: str,
        idempotency_key: str,
        template: str = "",
        params: dict[str, str] | None = None,
    ) -> str | None:
        masked = f"{phone[:3]}****{phone[-4:]}" if len(phone) >= 7 else "****"
        # The text of a party's SMS carries their 查询码: never in the log.
        shown = f"template {template}" if template else text
        logger.info("SMS to %s [%s]: %s", masked, idempotency_key, shown)
        return None


def sms_backend() -> SmsBackend:
    return import_string(settings.SMS_BACKEND)()


def send_sms(message: OutboundMessage, session: ChannelSession | None = None) -> str:
    if not message.phone:
        raise PermanentError("收件人没有手机号")
    extra: dict[str, Any] = {}
    if message.sms_template:  # a party's SMS: the provider's template and its parameters
        extra = {"template": message.sms_template, "params": dict(message.sms_params)}
    provider_id = sms_backend().send(
        phone=message.phone, text=message.subject, idempotency_key=message.idempotency_key, **extra
    )
    return Sent(message.phone, provider_id or "")


SENDERS: dict[str, Callable[[OutboundMessage, ChannelSession | None], str]] = {
    "email": send_email,
    "webhook": send_webhook,
    "sms": send_sms,
}
