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
import uuid
from typing import Any

# --- personal data --------------------------------------------------------------------------

# Resident identity numbers (GB 11643-1999): 17 digits and a check digit or X. A longer run of
# digits is something else and is left alone, and so are the decimals of a number
# ("succeeded in 0.129969453999365211s").
_NOT_AFTER = r"(?<!\d)(?<!\d\.)"
_ID_NUMBER = re.compile(_NOT_AFTER + r"\d{17}[\dXx](?!\d)")
# Phone numbers: mainland mobiles, also with +86 / 0086 / 86 in front and spaces or hyphens
# between the groups (138 0013 8000); and any other run of exactly 11 digits (landlines with
# their area code). Masking a harmless 11-digit number now and then is the price.
_PHONE = re.compile(
    _NOT_AFTER + r"(?<!\+)(?:(?:\+|00)?86[ -]?)?1\d{2}[ -]?\d{4}[ -]?\d{4}(?!\d)"
    r"|" + _NOT_AFTER + r"\d{11}(?!\d)"
)
ID_NUMBER_MASK = "<id-number>"
PHONE_MASK = "<phone>"


def mask_personal_data(text: str) -> str:
    """`text` with ID-number-like and phone-like substrings replaced by placeholders."""
    return _PHONE.sub(PHONE_MASK, _ID_NUMBER.sub(ID_NUMBER_MASK, text))


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
