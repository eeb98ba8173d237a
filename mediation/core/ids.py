"""Ids from request text: ASCII digits only, within PostgreSQL's bigint.

`str.isdigit()` is true for "²" and "١", which `int()` then refuses or reads as another
number, and `int()` itself accepts " 12 ", "1_2" and "１２"; a number beyond bigint reaches
PostgreSQL as an out-of-range error. Every id a view reads from a query string or a form goes
through `parse_id`.
"""

from __future__ import annotations

import re

MAX_ID = 2**63 - 1
_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")


def parse_id(value: object) -> int | None:
    """The id in `value`, or None when it is not 1–19 ASCII digits within 1..2**63-1."""
    if not isinstance(value, str) or not _ASCII_DIGITS.fullmatch(value):
        return None
    number = int(value)
    return number if 0 < number <= MAX_ID else None


def parse_int(value: object, *, lo: int, hi: int) -> int | None:
    """A small integer (an optional minus sign and ASCII digits) within lo..hi, or None."""
    if not isinstance(value, str) or not re.fullmatch(r"-?[0-9]{1,9}", value.strip()):
        return None
    number = int(value.strip())
    return number if lo <= number <= hi else None
