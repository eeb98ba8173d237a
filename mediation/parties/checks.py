"""System check: the personal-data keys are usable (README "Configuration", docs/DEPLOY.md).

A wrong FIELD_ENCRYPTION_KEYS otherwise shows up only at the first registration with an ID
number (a 500 from `cryptography`), and an empty ID_HASH_KEY at the first look-up. The check
runs with every management command that checks (migrate, runserver, check) and when the web
process starts (mediation/wsgi.py), so a stack with a broken key does not start.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

KEYS_TAG = "keys"
MIN_HASH_KEY_LENGTH = 16
FERNET_HINT = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)


def _fernet_key_problem(key: Any) -> str | None:
    if not isinstance(key, str) or not key.strip():
        return "空值 / empty"
    try:
        raw = base64.urlsafe_b64decode(key.strip().encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return "不是 URL-safe base64 / not URL-safe base64"
    if len(raw) != 32:
        return f"解码后为 {len(raw)} 字节，应为 32 / decodes to {len(raw)} bytes, not 32"
    return None


@register(KEYS_TAG)
def check_personal_data_keys(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    keys = getattr(settings, "FIELD_ENCRYPTION_KEYS", None)
    if isinstance(keys, str):
        keys = [k for k in keys.split(",") if k]
    if not keys:
        errors.append(
            Error(
                "FIELD_ENCRYPTION_KEYS 为空：无法加密身份证号。"
                " / FIELD_ENCRYPTION_KEYS is empty: ID numbers cannot be encrypted.",
                hint=f"Set one or more Fernet keys, newest first: {FERNET_HINT}",
                id="parties.E001",
            )
        )
    else:
        for position, key in enumerate(keys, start=1):
            problem = _fernet_key_problem(key)
            if problem:
                errors.append(
                    Error(
                        f"FIELD_ENCRYPTION_KEYS 第 {position} 个密钥不是有效的 Fernet 密钥"
                        f"（{problem}）。 / Key {position} of FIELD_ENCRYPTION_KEYS is not a "
                        "Fernet key (32 bytes, URL-safe base64, 44 characters).",
                        hint=f"Generate one with: {FERNET_HINT}",
                        id="parties.E001",
                    )
                )
    hash_key = getattr(settings, "ID_HASH_KEY", "")
    if not isinstance(hash_key, str) or len(hash_key.strip()) < MIN_HASH_KEY_LENGTH:
        errors.append(
            Error(
                f"ID_HASH_KEY 为空或过短（至少 {MIN_HASH_KEY_LENGTH} 个字符）：无法按身份证号查重。"
                f" / ID_HASH_KEY is empty or shorter than {MIN_HASH_KEY_LENGTH} characters.",
                hint='python -c "import secrets; print(secrets.token_urlsafe(32))"; never change '
                "it once data exists (docs/DEPLOY.md, Secrets).",
                id="parties.E002",
            )
        )
    return errors
