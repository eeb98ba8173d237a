"""Field encryption and keyed look-up hashes for personal data (DOMAIN.md §5, PIPL Art 51).

``settings.FIELD_ENCRYPTION_KEYS`` is a list of Fernet keys: the first encrypts, every key
decrypts. To rotate, put a new key first, keep the old ones, re-encrypt with ``rotate`` and
only then drop the old keys. ``settings.ID_HASH_KEY`` keys the HMAC; changing it means
recomputing every stored hash, so it is not rotated casually.
"""

from __future__ import annotations

import functools
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

__all__ = ["InvalidToken", "decrypt", "encrypt", "lookup_hash", "phone_hash", "rotate"]


@functools.lru_cache(maxsize=8)
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    # Keyed on the keys themselves, so override_settings in tests gets a fresh instance.
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty")
    return MultiFernet([Fernet(key) for key in keys])


def _fernet() -> MultiFernet:
    return _multi_fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(text: str) -> str:
    """A Fernet token (ASCII) for ``text``, under the first configured key."""
    return _fernet().encrypt(text.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    """The plain text of a token made under any configured key; raises ``InvalidToken``."""
    return _fernet().decrypt(token.encode("ascii")).decode("utf-8")


def rotate(token: str) -> str:
    """The same plain text re-encrypted under the first key (for key-rotation jobs)."""
    return _fernet().rotate(token.encode("ascii")).decode("ascii")


def lookup_hash(normalised_id: str) -> str:
    """HMAC-SHA256 (hex, 64 chars) of a normalised ID number, keyed with ``ID_HASH_KEY``."""
    key = settings.ID_HASH_KEY
    if not key:
        raise ImproperlyConfigured("ID_HASH_KEY is empty")
    return hmac.new(key.encode("utf-8"), normalised_id.encode("utf-8"), hashlib.sha256).hexdigest()


def phone_hash(normalised_phone: str) -> str:
    """HMAC-SHA256 (hex) of a normalised phone number, for look-ups (search, the duplicate
    warning) that never compare phone numbers in clear.

    Keyed with ``ID_HASH_KEY`` under its own domain prefix, so a phone's digest can never
    equal an ID number's (a 15-digit legacy ID and a landline cannot collide). As with the ID
    hash, changing the key means recomputing every stored digest (migration
    ``parties/0005_phone_hash`` shows how)."""
    return lookup_hash("phone:" + normalised_phone)
