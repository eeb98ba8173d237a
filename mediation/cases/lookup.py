"""The 查询码 (lookup code) of a case: issued at registration, by any channel.

- Random: derived from a 128-bit random nonce with the server's key (HMAC-SHA256).
- 12 characters from an alphabet without look-alikes (no 0/O/D/Q, 1/I/L/J, 2/Z, 5/S, 8/B,
  6/G, U/V), shown in groups of four (`ABCD-EFGH-JKMN`); typing is forgiving: case, spaces
  and dashes do not matter.
- Stored only as a keyed hash (`CaseLookupCode.code_hash`) beside the nonce: the code is
  re-derived, with the key, to print it (受理告知书) and to send it (SMS), never read back.

One code per case; every party the registration names may use it, with the last four digits
of their own phone (`mediation.public.services.public_lookup`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from mediation.cases.models import Case, CaseLookupCode

ALPHABET = "34679ACEFHKMNPRTWXY"
LENGTH = 12
GROUP = 4


def _key() -> bytes:
    key = getattr(settings, "LOOKUP_CODE_KEY", "")
    if not key:
        raise ImproperlyConfigured("LOOKUP_CODE_KEY is empty")
    return key.encode("utf-8")


def _derive(nonce: str) -> str:
    digest = hmac.new(_key(), b"code:" + nonce.encode("ascii"), hashlib.sha256).digest()
    value = int.from_bytes(digest, "big")
    out = []
    for _ in range(LENGTH):
        value, index = divmod(value, len(ALPHABET))
        out.append(ALPHABET[index])
    return "".join(out)


def normalise(text: str) -> str:
    """The code as typed, upper-cased, without spaces and dashes ("" if it cannot be one)."""
    cleaned = "".join(ch for ch in (text or "").upper() if ch not in " -\u3000－—")
    if len(cleaned) != LENGTH or any(ch not in ALPHABET for ch in cleaned):
        return ""
    return cleaned


def code_hash(code: str) -> str:
    """The keyed hash a normalised code is looked up by."""
    return hmac.new(_key(), b"hash:" + code.encode("ascii"), hashlib.sha256).hexdigest()


def display(code: str) -> str:
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def lookup_code_issue(*, case: Case, now: dt.datetime) -> str:
    """Issue the case's code (in the registration's transaction); returns it for display."""
    nonce = secrets.token_hex(16)
    code = _derive(nonce)
    CaseLookupCode.objects.create(case=case, nonce=nonce, code_hash=code_hash(code), issued_at=now)
    return display(code)


def lookup_code_of(case_id: int) -> str:
    """The case's code as printed ("" for a case registered before codes existed)."""
    nonce = CaseLookupCode.objects.filter(case_id=case_id).values_list("nonce", flat=True).first()
    return display(_derive(nonce)) if nonce else ""


def lookup_case_id(code: str) -> int | None:
    """The id of the case whose code this is (normalised first), or None."""
    cleaned = normalise(code)
    if not cleaned:
        code_hash("X" * LENGTH)  # the same work for a malformed code as for a wrong one
        return None
    return (
        CaseLookupCode.objects.filter(code_hash=code_hash(cleaned))
        .values_list("case_id", flat=True)
        .first()
    )
