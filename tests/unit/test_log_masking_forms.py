"""Every written form of an ID or phone number that the application accepts is masked in log
lines, the access log included (issue 11, part 5).

Each form below is first checked to be accepted by the application's own validators
(`validate_id_number`, `normalise_phone`), so the list cannot drift away from what people
can actually type in; then it is logged, in plain text and as a URL would carry it.
"""

from __future__ import annotations

import io
import json
import logging
import urllib.parse
from pathlib import Path

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger as GunicornLogger

from mediation.core.logging import mask_personal_data
from mediation.parties.idnumbers import normalise_phone, validate_id_number

REPO_ROOT = Path(__file__).resolve().parents[2]
TODAY = __import__("datetime").date(2026, 3, 11)
ID_18 = "110105199003071239"  # valid checksum
ID_18_X = "11010519900307195X"
ID_15 = "110105900307123"
MOBILE = "13912345678"


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() or c in "X" else c for c in text)


ID_FORMS = [
    ID_18,
    ID_18_X,
    ID_18_X.lower(),
    "110105 19900307 1239",
    "110105 1990 0307 1239",
    "1101 0519 9003 0712 39",
    "110105\u300019900307\u30001239",  # ideographic spaces
    _full_width(ID_18),
    _full_width(ID_18_X),
    ID_15,
    "110105 900307 123",
    _full_width(ID_15),
]
PHONE_FORMS = [
    MOBILE,
    "139 1234 5678",
    "139-1234-5678",
    "139 - 1234 - 5678",
    "(139) 1234 5678",
    "+86 139 1234 5678",
    "+8613912345678",
    "0086 13912345678",
    _full_width(MOBILE),
    "１３９ １２３４ ５６７８",
    "0374-1234567",
    "(0374) 1234567",
    "0371-12345678",
    "010 12345678",
]


@pytest.mark.parametrize("form", ID_FORMS)
def test_every_id_form_the_validator_accepts_is_masked(form):
    validate_id_number(form, today=TODAY)  # the application accepts it

    masked = mask_personal_data(f"party id {form} registered")

    assert masked == "party id <id-number> registered"


@pytest.mark.parametrize("form", PHONE_FORMS)
def test_every_phone_form_the_validator_accepts_is_masked(form):
    assert normalise_phone(form)  # the application accepts it

    masked = mask_personal_data(f"call {form} now")

    assert masked == "call <phone> now"


def _url_forms(form: str) -> list[str]:
    return [
        urllib.parse.quote_plus(form),  # spaces as +
        urllib.parse.quote(form),  # spaces as %20, full-width digits as %EF%BC%9x
        "".join(f"%{ord(c):02X}" if c.isascii() else c for c in form),  # every digit escaped
    ]


@pytest.mark.parametrize("form", ID_FORMS + PHONE_FORMS)
def test_url_encoded_forms_are_masked(form):
    mask = "<id-number>" if form in ID_FORMS else "<phone>"
    for encoded in _url_forms(form):
        line = f'GET /cases/agency/?q={encoded}&page=2 HTTP/1.1" 200'

        masked = mask_personal_data(line)

        assert mask in masked, (encoded, masked)
        assert "&page=2 HTTP/1.1" in masked
        assert not any(ch.isdigit() for ch in masked.split("?q=")[1].split("&")[0]), masked


def test_an_id_and_a_phone_side_by_side_are_both_masked():
    masked = mask_personal_data(f"{ID_18} {MOBILE}; 110105+19900307+1239+139+1234+5678")

    assert masked == "<id-number> <phone>; <id-number>+<phone>"


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-11 10:00:00,123 INFO took 12 ms",
        "case 2026-0042 version 17 of 42",
        "took 0.13800138000s",
        "12 digits 138001380001",
        "uuid 1fac6af7-7016-43e4-9d3a-b0b93bc4d7a6",
        "100%25 done, %2Fapi%2Fcases%2F12%2F",
    ],
)
def test_ordinary_numbers_are_left_alone(text):
    assert mask_personal_data(text) == text


def _gunicorn_access_line(path_and_query: str) -> str:
    """One access line written by gunicorn's own logger, configured as in production."""
    namespace: dict = {}
    exec((REPO_ROOT / "deploy" / "gunicorn.conf.py").read_text(), namespace)
    config = Config()
    config.set("accesslog", "-")
    config.set("access_log_format", namespace["access_log_format"])
    config.set("logconfig_dict", namespace["logconfig_dict"])
    logger = GunicornLogger(config)
    stream = io.StringIO()
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(stream)
    path, _, query = path_and_query.partition("?")

    class Response:
        status = "200 OK"
        sent = 512
        headers = []

    class Request:
        headers = []

    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": path_and_query,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_X_FORWARDED_FOR": "203.0.113.7",
    }
    import datetime as dt

    logger.access(Response(), Request(), environ, dt.timedelta(milliseconds=12))
    for handler in logger.access_log.handlers + root.handlers:
        handler.flush()
    return stream.getvalue()


@pytest.mark.parametrize("form", [ID_FORMS[3], ID_FORMS[7], ID_15, PHONE_FORMS[1], "0374-1234567"])
def test_the_access_log_masks_every_form(form):
    for encoded in _url_forms(form):
        output = _gunicorn_access_line(f"/cases/agency/?q={encoded}")

        [line] = [json.loads(x) for x in output.splitlines() if "/cases/agency/" in x]
        assert line["logger"] == "gunicorn.access"
        assert "<id-number>" in line["message"] or "<phone>" in line["message"], line
        digits = line["message"].split("?q=")[1].split(" ")[0]
        assert not any(ch.isdigit() for ch in digits), line
