"""The SMS provider adapter: the common template-SMS HTTP API shape (as the large Chinese SMS
providers offer it), selected with `SMS_BACKEND="mediation.notifications.sms.ProviderSmsBackend"`.

Request: `POST SMS_PROVIDER_URL`, a JSON body

    {"AccessKeyId", "PhoneNumbers", "SignName", "TemplateCode", "TemplateParam" (a JSON
     string), "OutId" (our idempotency key, `notification-{id}`), "Timestamp",
     "SignatureNonce"}

signed with HMAC-SHA256 of the exact body bytes under `SMS_PROVIDER_SECRET`, hex, in the
`X-Sms-Signature` header (with `X-Sms-Access-Key`). A provider deduplicates by `OutId`, so the
resend after a crash between "accepted" and "recorded" (RELIABILITY.md §2.6) is one message.

Answer: `{"Code": "OK", "Message": …, "BizId": "<provider message id>"}`, or an error code:
- retried (TransientError): HTTP 5xx, 408, 429; flow control and system errors (`RETRY_CODES`);
  connection errors and timeouts;
- permanent (PermanentError): every other code (a bad number, a template or signature the
  provider refuses, our signature refused, …) and other HTTP 4xx: retrying cannot help.

Settings come from the environment (`SMS_PROVIDER_*`, `SMS_TEMPLATES`; README "The public
side"). Messages to parties carry a template and its parameters; a staff member's SMS (no
template) goes out as the provider's generic notice template with the text as parameter.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import json
import secrets
from typing import Any

from django.conf import settings

from mediation.notifications.channels import ChannelSession, PermanentError, TransientError

RETRY_CODES = frozenset(
    {
        "isv.BUSINESS_LIMIT_CONTROL",  # flow control (per number, per minute/hour/day)
        "Throttling",
        "Throttling.User",
        "isp.SYSTEM_ERROR",
        "isp.RAM_PERMISSION_DENY_TEMPORARY",
        "ServiceUnavailable",
    }
)
_TRANSIENT_HTTP = frozenset({408, 425, 429})
GENERIC_TEMPLATE = "notice"


def sign(body: bytes, secret: str) -> str:
    """The request signature: HMAC-SHA256 of the body bytes, hex."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def request_body(
    *, phone: str, template_code: str, params: dict[str, str], out_id: str, now: dt.datetime
) -> bytes:
    payload = {
        "AccessKeyId": settings.SMS_PROVIDER_ACCESS_KEY,
        "PhoneNumbers": phone,
        "SignName": settings.SMS_PROVIDER_SIGN_NAME,
        "TemplateCode": template_code,
        "TemplateParam": json.dumps(params, ensure_ascii=False, sort_keys=True),
        "OutId": out_id,
        "Timestamp": now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "SignatureNonce": secrets.token_hex(16),
    }
    return json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")


class ProviderSmsBackend:
    """Template SMS over the provider's HTTP API (module docstring). One kept-alive
    connection per process (`ChannelSession`), replaced after an error."""

    _session: ChannelSession | None = None

    @classmethod
    def session(cls) -> ChannelSession:
        if cls._session is None:
            cls._session = ChannelSession()
        return cls._session

    def send(
        self,
        *,
        phone: str,
        text: str,
        idempotency_key: str,
        template: str = "",
        params: dict[str, str] | None = None,
    ) -> str | None:
        url = settings.SMS_PROVIDER_URL
        if not url or not settings.SMS_PROVIDER_SECRET:
            raise PermanentError("未配置短信服务商（SMS_PROVIDER_URL / SMS_PROVIDER_SECRET）")
        templates: dict[str, Any] = settings.SMS_TEMPLATES or {}
        name = template or GENERIC_TEMPLATE
        code = templates.get(name)
        if not code:
            raise PermanentError(f"未配置短信模板：{name}")
        values = {k: str(v) for k, v in (params or {}).items()} if template else {"text": text}
        body = request_body(
            phone=phone,
            template_code=str(code),
            params=values,
            out_id=idempotency_key,
            now=dt.datetime.now(dt.UTC),
        )
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Sms-Access-Key": settings.SMS_PROVIDER_ACCESS_KEY,
            "X-Sms-Signature": sign(body, settings.SMS_PROVIDER_SECRET),
            "Idempotency-Key": idempotency_key,
        }
        try:
            status, reason, raw = self.session().post(url, body, headers)
        except (http.client.HTTPException, OSError, ValueError) as exc:
            raise TransientError(f"短信服务商连接错误：{type(exc).__name__}: {exc}") from exc
        try:
            answer = json.loads(raw.decode("utf-8")) if raw else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        error = str(answer.get("Code") or "")
        message = str(answer.get("Message") or reason)
        if status >= 500 or status in _TRANSIENT_HTTP or error in RETRY_CODES:
            raise TransientError(f"短信服务商 HTTP {status} {error}: {message}")
        if status >= 300 or error != "OK":
            raise PermanentError(f"短信服务商 HTTP {status} {error or '-'}: {message}")
        return str(answer.get("BizId") or "")
