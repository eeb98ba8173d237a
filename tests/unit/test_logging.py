"""Structured logs and the personal-data mask (mediation/core/logging.py)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from celery import Celery
from cryptography.fernet import Fernet
from django.core import signals
from django.db import close_old_connections

from mediation.core.logging import (
    ContextFilter,
    JsonFormatter,
    MaskPersonalDataFilter,
    bind_request_id,
    clear_request_id,
    current_request_id,
    mask_personal_data,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
ID_NUMBER = "110105199003071234"
PHONE = "13800138000"


@pytest.fixture
def json_logger() -> Iterator[tuple[logging.Logger, Callable[[], list[dict]]]]:
    """A logger whose one handler is wired like LOGGING's console handler (JSON format)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.addFilter(MaskPersonalDataFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"tests.logging.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield logger, lines
    logger.removeHandler(handler)
    clear_request_id()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"身份证号{ID_NUMBER}，电话{PHONE}", "身份证号<id-number>，电话<phone>"),
        ("id=11010519900307123X;", "id=<id-number>;"),
        ("id=11010519900307123x", "id=<id-number>"),
        (f"tel +86 {PHONE[:3]}-{PHONE[3:7]}-{PHONE[7:]}", "tel <phone>"),
        (f"tel 0086{PHONE} / 86{PHONE}", "tel <phone> / <phone>"),
        ("tel 138 0013 8000.", "tel <phone>."),
        ("landline 01012345678", "landline <phone>"),
        (f"two {PHONE},{PHONE}", "two <phone>,<phone>"),
        # not ID numbers or phone numbers
        ("19 digits 1101051990030712345", "19 digits 1101051990030712345"),
        ("12 digits 138001380001", "12 digits 138001380001"),
        ("10 digits 1380013800", "10 digits 1380013800"),
        ("took 0.129969453999365211s", "took 0.129969453999365211s"),
        ("took 0.13800138000s", "took 0.13800138000s"),
        ("task 1fac6af7-7016-43e4-9d3a-b0b93bc4d7a6", "task 1fac6af7-7016-43e4-9d3a-b0b93bc4d7a6"),
        (
            "case 2026-0042 due 2026-11-27T09:00:00+08:00",
            "case 2026-0042 due 2026-11-27T09:00:00+08:00",
        ),
    ],
)
def test_mask_personal_data(text: str, expected: str) -> None:
    assert mask_personal_data(text) == expected


def test_filter_masks_arguments_and_freezes_the_message(json_logger) -> None:
    logger, lines = json_logger

    logger.info("party %s reached at %s", ID_NUMBER, PHONE)

    [line] = lines()
    assert line["message"] == "party <id-number> reached at <phone>"


def test_filter_masks_the_traceback(json_logger) -> None:
    logger, lines = json_logger

    try:
        raise ValueError(f"duplicate key (id_number)=({ID_NUMBER}), phone {PHONE}")
    except ValueError:
        logger.exception("could not save party")

    [line] = lines()
    assert line["message"] == "could not save party"
    assert "ValueError: duplicate key (id_number)=(<id-number>), phone <phone>" in line["exception"]
    assert ID_NUMBER not in json.dumps(line)
    assert PHONE not in json.dumps(line)


def test_filter_masks_plain_output_too() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskPersonalDataFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "sms to %s", (PHONE,), None)

    handler.handle(record)

    assert stream.getvalue() == "WARNING sms to <phone>\n"


def test_filter_survives_bad_arguments(json_logger) -> None:
    logger, lines = json_logger

    logger.info("two placeholders %s %s for id " + ID_NUMBER, "only one")

    [line] = lines()
    assert line["message"].startswith("two placeholders %s %s for id <id-number>")


def test_json_line_has_the_fields_and_nothing_more(json_logger) -> None:
    logger, lines = json_logger

    logger.warning("第一行\nsecond line")

    [line] = lines()
    assert set(line) == {"time", "level", "logger", "message"}
    assert line["level"] == "WARNING"
    assert line["logger"] == logger.name
    assert line["message"] == "第一行\nsecond line"
    assert line["time"].endswith("Z")
    assert len(line["time"]) == len("2026-11-27T04:45:16.017Z")


def test_request_id_comes_from_the_request_signals(json_logger) -> None:
    logger, lines = json_logger

    # Django's own receivers on these signals (close_old_connections) touch the database
    # connection an earlier test in this process may have left open; this unit test is about
    # ours alone, so theirs are detached for its duration.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        signals.request_started.send(sender=None, environ={"HTTP_X_REQUEST_ID": "req-7f3a.1"})
        logger.info("inside")
        signals.request_finished.send(sender=None)
        logger.info("outside")
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)

    inside, outside = lines()
    assert inside["request_id"] == "req-7f3a.1"
    assert "request_id" not in outside
    assert current_request_id() is None


def test_request_without_an_acceptable_header_gets_a_fresh_id() -> None:
    for header in (None, "", "x" * 65, "bad id with spaces", f"id-{ID_NUMBER}"):
        request_id = bind_request_id(header)
        assert len(request_id) == 32
        assert request_id != header
        assert current_request_id() == request_id
    clear_request_id()


def test_task_id_and_name_inside_a_celery_task(json_logger) -> None:
    logger, lines = json_logger
    app = Celery("logging-test", set_as_current=False)

    @app.task(name="tests.log_something")
    def log_something() -> None:
        logger.info("in the task")

    log_something.apply(task_id="4be0c1c2-0f0e-4f53-9d8f-6c1f3c1b2a10")
    logger.info("after the task")

    in_task, after = lines()
    assert in_task["task_id"] == "4be0c1c2-0f0e-4f53-9d8f-6c1f3c1b2a10"
    assert in_task["task_name"] == "tests.log_something"
    assert "task_id" not in after


def _log_under(settings_module: str, **extra_env: str) -> str:
    """stderr of a process that logs an ID number and a phone number under the given settings."""
    dot_env = REPO_ROOT / ".env"  # the settings read it; it must not choose the format here
    if "LOG_FORMAT" not in extra_env and "LOG_FORMAT" in (
        dot_env.read_text() if dot_env.exists() else ""
    ):
        pytest.skip("the checkout's .env sets LOG_FORMAT")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": settings_module,
        "DJANGO_SECRET_KEY": "k" * 20 + uuid.uuid4().hex + uuid.uuid4().hex,
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ID_HASH_KEY": "test-only-id-hash-key",
        "LOOKUP_CODE_KEY": "test-only-lookup-code-key",
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
        **extra_env,
    }
    code = (
        "import django, logging; django.setup(); "
        f"logging.getLogger('mediation.probe').warning('party %s phone %s', '{ID_NUMBER}', "
        f"'{PHONE}')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stderr


def test_production_settings_write_masked_json_lines() -> None:
    stderr = _log_under("mediation.settings.production")

    probe = [json.loads(line) for line in stderr.splitlines() if "mediation.probe" in line]
    assert len(probe) == 1
    assert probe[0]["logger"] == "mediation.probe"
    assert probe[0]["level"] == "WARNING"
    assert probe[0]["message"] == "party <id-number> phone <phone>"
    assert ID_NUMBER not in stderr
    assert PHONE not in stderr


def test_log_format_plain_overrides_the_production_default() -> None:
    stderr = _log_under("mediation.settings.production", LOG_FORMAT="plain")

    [probe] = [line for line in stderr.splitlines() if "mediation.probe" in line]
    assert probe.endswith(" WARNING mediation.probe party <id-number> phone <phone>")
    assert not probe.startswith("{")


def test_development_settings_default_to_plain_lines() -> None:
    stderr = _log_under("mediation.settings.base")

    [probe] = [line for line in stderr.splitlines() if "mediation.probe" in line]
    assert probe.endswith(" WARNING mediation.probe party <id-number> phone <phone>")
