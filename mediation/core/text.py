"""Checks on submitted text, shared by the web forms, the API and the services.

- `control_character_in(value)`: the first control character (Unicode category Cc other than
  tab, line feed and carriage return) anywhere in a value, nested lists and dict values
  included.
  PostgreSQL cannot store NUL in text at all (a `DataError`, i.e. a 500), and the other C0/C1
  controls have no business in a case file. `mediation.core.middleware.RejectControlCharacters`
  applies it once to every request's query string, form fields and JSON body.
- `has_visible_text(value)`: whether a title or name shows anything at all: text made only of
  spaces, zero-width and bidi-control characters, fillers and lone combining marks is blank
  to the reader (and a way to hide or reorder what others see).
- `validate_visible_text`: the same as a Django validator (forms, DRF serializers).
"""

from __future__ import annotations

import unicodedata
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

ALLOWED_CONTROLS = frozenset("\t\n\r")
# Letters and symbols that render as nothing (Hangul fillers, the braille blank, …).
INVISIBLE_GRAPHICS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5")
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me", "Cn", "Co", "Cs"})


def is_control_character(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc" and ch not in ALLOWED_CONTROLS


def control_character_in(value: Any) -> str | None:
    """The first disallowed control character in `value` (str, or lists/dicts of them)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            for ch in item:
                if is_control_character(ch):
                    return ch
        elif isinstance(item, dict):
            # Values only: unknown keys are ignored by every form and serializer (and the
            # known ones are plain names), so a key is never stored.
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return None


def describe(ch: str) -> str:
    return f"U+{ord(ch):04X}"


def is_visible_character(ch: str) -> bool:
    return (
        not ch.isspace()
        and ch not in INVISIBLE_GRAPHICS
        and unicodedata.category(ch) not in _INVISIBLE_CATEGORIES
    )


def has_visible_text(value: str | None) -> bool:
    return any(is_visible_character(ch) for ch in value or "")


def validate_visible_text(value: str) -> None:
    if not has_visible_text(value):
        raise ValidationError(_("请填写可见的文字（不能只有空格或不可见字符）。"), code="invisible")
