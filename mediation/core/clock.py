"""The one clock of the system.

Services and sweeps take `now` as a parameter; entry points (views, tasks, commands) read it
here exactly once. `MEDIATION_FAKE_NOW_FILE` lets worker processes in fault tests follow a
test clock: patching Python's clock reaches neither PostgreSQL's now() nor other processes.
The file holds an ISO-8601 instant, or an offset in seconds prefixed with '+'.
"""

from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def now() -> dt.datetime:
    real = dt.datetime.now(dt.UTC)
    path = os.environ.get("MEDIATION_FAKE_NOW_FILE")
    if not path:
        return real
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read().strip()
    except FileNotFoundError:
        return real
    if not text:
        return real
    if text.startswith("+") or text.startswith("-"):
        return real + dt.timedelta(seconds=float(text))
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=SHANGHAI)
    return value


def local_date(instant: dt.datetime) -> dt.date:
    """The calendar date in Asia/Shanghai of an aware instant."""
    return instant.astimezone(SHANGHAI).date()


def end_of_day(day: dt.date) -> dt.datetime:
    """The instant a day ends in Asia/Shanghai (民法典 Art 203 ¶2: the last day ends at 24:00)."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 0), tzinfo=SHANGHAI)
