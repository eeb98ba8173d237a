"""Log output for every process: JSON lines or plain text, with personal data masked.

Wired in `LOGGING` (mediation/settings/base.py) and in gunicorn's own logging
(deploy/gunicorn.conf.py), on the one console handler, so every record that is written passes
through both filters, whatever logger it came from:

- `ContextFilter` stamps `request_id` (web requests) and `task_id` / `task_name` (Celery tasks)
  on the record.
- `MaskPersonalDataFilter` masks 18-digit ID-number-like and 11-digit phone-like substrings in
  the message, the traceback and the stack (DOMAIN.md §5: ID numbers and phone numbers never
  reach a log).

`JsonFormatter` (LOG_FORMAT=json, the production default) writes one JSON object per line:
time (UTC, ISO 8601), level, logger, message, and request_id, task_id, task_name and exception
where present.

This module must import without Django settings: gunicorn's master process configures its
logging from it before any Django code runs.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import unicodedata
import uuid
from typing import Any

# --- personal data --------------------------------------------------------------------------

# Every written form of an ID number or a phone number that the application itself accepts
# (mediation/parties/idnumbers.py normalises NFKC and drops whitespace, hyphens and
# parentheses), and the forms they take in a URL (the access log): full-width digits and Ｘ,
# spaces, hyphens, parentheses, `+` (a space in a query string) and percent-escapes of all of
# these (`%20`, `%2B`, `%34%31`, UTF-8 full-width digits `%EF%BC%91`). The text is read as a
# sequence of units (a character, or one percent-escape), digits are grouped across
# separators, and the longest run of consecutive groups that reads as an ID or phone number is
# replaced, escapes and separators included:
#
# - ID numbers: 17 digits and a check digit or X (18 in all, checksum not required), or the
#   legacy 15 digits with a plausible region code and birth date;
# - phones: any 11 digits (mainland mobiles, landlines with a 3-digit area code), also after
#   86 / 0086 / +86, and landlines of 10 or 12 digits starting with 0 (0374-1234567).
#
# A longer plain run of digits is something else and left alone, and so are the decimals of a
# number ("succeeded in 0.129969453999365211s"). Masking a harmless number now and then is the
# price.
ID_NUMBER_MASK = "<id-number>"
PHONE_MASK = "<phone>"
_SEPARATORS = frozenset(" \t+-()")
_MAX_SEPARATOR_RUN = 3
# A percent-escaped ASCII character, or a 3-byte UTF-8 character (full-width digits and Ｘ,
# the ideographic space).
_ESCAPE = re.compile(r"%(?:E[0-9A-F](?:%[89AB][0-9A-F]){2}|[0-7][0-9A-F])", re.IGNORECASE)


def _units(text: str) -> list[tuple[int, int, str]]:
    """(start, end, character) per character or percent-escape, NFKC-normalised."""
    units = []
    i, n = 0, len(text)
    while i < n:
        end, ch = i + 1, text[i]
        if ch == "%":
            match = _ESCAPE.match(text, i)
            if match:
                try:
                    decoded = bytes.fromhex(match.group().replace("%", "")).decode("utf-8")
                except UnicodeDecodeError:
                    decoded = ""
                if decoded:
                    end, ch = match.end(), decoded
        units.append((i, end, unicodedata.normalize("NFKC", ch) or ch))
        i = end
    return units


def _is_digit(ch: str) -> bool:
    return len(ch) == 1 and "0" <= ch <= "9"


def _plausible_legacy_id(digits: str) -> bool:
    if digits[0] not in "12345678" or digits[1] == "0":
        return False
    try:
        dt.date(1900 + int(digits[6:8]), int(digits[8:10]), int(digits[10:12]))
    except ValueError:
        return False
    return True


def _classify(digits: str) -> str | None:
    n = len(digits)
    if n == 18 and digits[:17].isdigit() and (digits[17].isdigit() or digits[17] == "X"):
        return ID_NUMBER_MASK
    if not digits.isdigit():
        return None
    if n == 15 and _plausible_legacy_id(digits):
        return ID_NUMBER_MASK
    if n == 11:
        return PHONE_MASK
    if n == 13 and digits.startswith("861"):
        return PHONE_MASK
    if n == 15 and digits.startswith("00861"):
        return PHONE_MASK
    if n in (10, 12) and digits[0] == "0":
        return PHONE_MASK
    return None


def _groups(units: list[tuple[int, int, str]], start: int) -> tuple[list[tuple[int, int]], int]:
    """Digit groups (first unit, last unit + 1) of the run that starts at `start`."""
    groups: list[tuple[int, int]] = []
    i, n = start, len(units)
    while i < n and _is_digit(units[i][2]):
        j = i
        while j < n and _is_digit(units[j][2]):
            j += 1
        if j < n and units[j][2] in ("X", "x") and not (j + 1 < n and _is_digit(units[j + 1][2])):
            groups.append((i, j + 1))
            return groups, j + 1
        groups.append((i, j))
        k = j
        while k < n and k - j < _MAX_SEPARATOR_RUN and units[k][2] in _SEPARATORS:
            k += 1
        if k == j or k >= n or not _is_digit(units[k][2]):
            return groups, j
        i = k
    return groups, i


def mask_personal_data(text: str) -> str:
    """`text` with ID-number-like and phone-like substrings replaced by placeholders."""
    if not any(ch.isdigit() or ch == "%" for ch in text):
        return text
    units = _units(text)
    spans: list[tuple[int, int, str]] = []
    i, n = 0, len(units)
    while i < n:
        ch = units[i][2]
        if not _is_digit(ch) or (i and _is_digit(units[i - 1][2])):
            i += 1
            continue
        if i >= 2 and units[i - 1][2] == "." and _is_digit(units[i - 2][2]):
            while i < n and _is_digit(units[i][2]):  # decimals of a number
                i += 1
            continue
        groups, after = _groups(units, i)
        g = 0
        while g < len(groups):
            for h in range(len(groups), g, -1):
                digits = "".join(units[u][2] for a, b in groups[g:h] for u in range(a, b))
                mask = _classify(digits.upper())
                if mask:
                    first = groups[g][0]
                    before = units[first - 1][2] if first else ""
                    if mask == PHONE_MASK and (
                        before == "(" or (before == "+" and digits.startswith(("86", "0086")))
                    ):
                        first -= 1  # the + of +86, the ( of an area code
                    spans.append((units[first][0], units[groups[h - 1][1] - 1][1], mask))
                    g = h
                    break
            else:
                g += 1
        i = max(after, i + 1)
    if not spans:
        return text
    out, last = [], 0
    for start, end, mask in spans:
        out.append(text[last:start])
        out.append(mask)
        last = end
    out.append(text[last:])
    return "".join(out)


class MaskPersonalDataFilter(logging.Filter):
    """Masks personal data in the record's message, traceback and stack; never drops a record.

    The message is rendered (msg % args) and frozen, so arguments are masked too. Attach it to
    the handler, not to a logger: a logger's filters do not see records propagated from its
    children.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # bad arguments: keep what can be shown, masked
            message = f"{record.msg} (unformattable log arguments)"
        record.msg = mask_personal_data(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_personal_data(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_personal_data(record.stack_info)
        return True


# --- request and task context ---------------------------------------------------------------

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "mediation_request_id", default=None
)
# A request id the TLS proxy sends (nginx: `proxy_set_header X-Request-ID $request_id;`) is
# kept when it is short and plain; otherwise the request gets a fresh one.
_ACCEPTABLE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def current_request_id() -> str | None:
    return _request_id.get()


def bind_request_id(header_value: str | None = None) -> str:
    """Set the request id of the current context: the proxy's, if acceptable, else a new one."""
    if (
        header_value
        and _ACCEPTABLE_REQUEST_ID.fullmatch(header_value)
        and mask_personal_data(header_value) == header_value
    ):
        request_id = header_value
    else:
        request_id = uuid.uuid4().hex
    _request_id.set(request_id)
    return request_id


def clear_request_id() -> None:
    _request_id.set(None)


def _on_request_started(sender: Any, environ: dict[str, Any] | None = None, **kwargs: Any) -> None:
    bind_request_id((environ or {}).get("HTTP_X_REQUEST_ID"))


def _on_request_finished(sender: Any, **kwargs: Any) -> None:
    clear_request_id()


def connect_request_signals() -> None:
    """Bind a request id for each request Django handles (idempotent).

    Django sends `request_started` with the WSGI environ in the thread that handles the
    request, and `request_finished` when the response is closed; gunicorn writes its access
    line before closing the response, so that line carries the id too.
    """
    from django.core import signals

    signals.request_started.connect(
        _on_request_started, weak=False, dispatch_uid="mediation.core.logging.request_started"
    )
    signals.request_finished.connect(
        _on_request_finished, weak=False, dispatch_uid="mediation.core.logging.request_finished"
    )


def _current_task() -> tuple[str | None, str | None]:
    try:
        from celery import current_task
    except ImportError:  # pragma: no cover - celery is a runtime dependency
        return None, None
    if not current_task:  # the proxy is falsy outside a task
        return None, None
    return getattr(current_task.request, "id", None), getattr(current_task, "name", None)


class ContextFilter(logging.Filter):
    """Stamps `request_id`, `task_id` and `task_name` (None when absent) on every record."""

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        connect_request_signals()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        if getattr(record, "task_id", None) is None:
            record.task_id, record.task_name = _current_task()
        return True


# --- output ---------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line; newlines inside a message or traceback stay escaped."""

    def format(self, record: logging.LogRecord) -> str:
        created = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
        entry: dict[str, Any] = {
            "time": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "task_id", "task_name"):
            value = getattr(record, key, None)
            if value:
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
