"""Chinese by default; English through Django's set_language view."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from django.urls import reverse

from tests.factories.cases import dispute_in_state

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("tests.integration.web.urls"),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


def test_pages_are_in_chinese_by_default(login, mediator):
    response = login(mediator).get(reverse("web:cases_mine"))

    html = response.content.decode()
    assert '<html lang="zh-CN">' in html
    assert "我的案件" in html
    assert "My cases" not in html


def test_the_language_switch_turns_the_pages_into_english(login, township, now):
    case = dispute_in_state("mediating", township=township, now=now)
    client = login(case.assignee)

    switched = client.post(
        reverse("set_language"), {"language": "en", "next": reverse("web:cases_mine")}
    )
    listing = client.get(reverse("web:cases_mine"))
    page = client.get(reverse("web:case_detail", args=[case.pk]))

    assert switched.status_code == 302
    html = listing.content.decode()
    assert '<html lang="en">' in html
    assert "My cases" in html
    assert "Sorted by urgency" in html
    assert "我的案件" not in html
    detail = page.content.decode()
    assert "People&#x27;s mediation period" in detail  # the clock's rule label
    assert "Mediating" in detail  # the state label from the cases app
    assert "Case history" in detail


def test_switching_back_to_chinese(login, mediator):
    client = login(mediator)
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})

    response = client.get(reverse("web:cases_mine"))

    assert "我的案件" in response.content.decode()


def _entries(po: str) -> list[tuple[str, str]]:
    """(msgid, msgstr) of the singular entries of a .po file (header excluded)."""
    out = []
    for block in po.split("\n\n"):
        lines = [line for line in block.splitlines() if not line.startswith("#")]
        text = "\n".join(lines)
        if "msgid_plural" in text or not text.startswith("msgid"):
            continue
        msgid_part, _, msgstr_part = text.partition("\nmsgstr ")
        msgid = "".join(re.findall(r'"(.*)"', msgid_part))
        msgstr = "".join(re.findall(r'"(.*)"', msgstr_part))
        if msgid:
            out.append((msgid, msgstr))
    return out


def test_every_catalogue_entry_is_translated_and_compiled():
    locale = Path(__file__).resolve().parents[3] / "mediation" / "locale" / "en" / "LC_MESSAGES"
    po = (locale / "django.po").read_text(encoding="utf-8")
    with (locale / "django.mo").open("rb") as fh:
        compiled = gettext.GNUTranslations(fh)

    entries = _entries(po)
    assert len(entries) > 600
    assert [msgid for msgid, msgstr in entries if not msgstr] == []
    assert "#, fuzzy" not in po
    # The .mo was compiled from this .po.
    plain = [m for m, _ in entries if "\\" not in m]
    assert [m for m in plain if compiled.gettext(m) == m] == []
