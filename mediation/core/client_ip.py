"""The client's address, as the one trusted TLS proxy reports it (docs/DEPLOY.md).

gunicorn is reachable only from the proxy (its port is published on 127.0.0.1), so the peer
address (`REMOTE_ADDR`) is always the proxy's. nginx's `$proxy_add_x_forwarded_for` *appends*
the address it saw to whatever `X-Forwarded-For` the client sent. With `TRUSTED_PROXY_COUNT`
proxies in front (1 in the documented set-up), the client is therefore the entry that many
places from the right; anything to its left came from the outside world and is ignored, so a
spoofed `X-Forwarded-For` changes nothing. With a count of 0 (development, tests) the header
is not read at all.

Used by django-axes (`AXES_CLIENT_IP_CALLABLE`) for login throttling.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings


def _address(text: str) -> str | None:
    text = text.strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def client_ip(request: Any) -> str | None:
    """The client address: `TRUSTED_PROXY_COUNT` entries from the right of X-Forwarded-For,
    or the peer address when there is no proxy or the header is short or malformed."""
    meta = getattr(request, "META", {})
    peer = _address(str(meta.get("REMOTE_ADDR", "")))
    count = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    if count <= 0:
        return peer
    header = str(meta.get("HTTP_X_FORWARDED_FOR", ""))
    forwarded = [part for part in header.split(",") if part.strip()]
    if len(forwarded) < count:
        return peer
    return _address(forwarded[-count]) or peer
