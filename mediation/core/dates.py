"""Dates typed into forms and query strings, bounded before any arithmetic.

`date.fromisoformat("9999-12-31")` is a valid date, but the end of that day in Asia/Shanghai,
or a clock counted from it, overflows `datetime` (an OverflowError, a 500), and a range of
eight thousand years keeps a worker busy for half a minute. Cases and clocks live between
1990 and 2199 (the step forms' own bounds, mediation/cases/steps.py).
"""

from __future__ import annotations

import datetime as dt
import re

EARLIEST = dt.date(1990, 1, 1)
LATEST = dt.date(2199, 12, 31)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_plausible_date(value: object) -> dt.date | None:
    """A YYYY-MM-DD date (ASCII digits) between EARLIEST and LATEST, or None."""
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value.strip()):
        return None
    try:
        day = dt.date.fromisoformat(value.strip())
    except ValueError:
        return None
    return day if EARLIEST <= day <= LATEST else None
