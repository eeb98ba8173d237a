"""The search box at county scale (issue 13 §1): every kind of entry, as the county 综治中心
supervisor (sees all 1,000,000 cases) and as a village mediator (sees one village's 1,000),
through the case list page (`/cases/agency/?q=…`), server time in-process (`pages.measure`).

The target is case 500,001 (village 0, so both users see it). Its applicant gets a real
ID number and real keyed digests (`parties.crypto`); the other 2 M parties keep datagen's
stand-in digests, so the digest indexes have their full size.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

TARGET = 500_001
USERS = {"county_supervisor": 100, "village_mediator": 10001}


def prepare() -> dict[str, str]:
    """Give the target's applicant real digests; returns {kind: what is typed}."""
    from django.db import connection

    from mediation.cases.models import Case
    from mediation.parties import crypto, idnumbers

    first17 = "41010519800101" + f"{TARGET % 1000:03d}"
    number = first17 + idnumbers.check_code(first17)
    phone = f"138{TARGET:08d}"
    applicant = 2 * TARGET - 1
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE parties_party SET id_number_hash = %s, phone_hash = %s WHERE id = %s",
            [crypto.lookup_hash(number), crypto.phone_hash(phone), applicant],
        )
        cur.execute("SELECT name FROM parties_party WHERE id = %s", [applicant])
        name = cur.fetchone()[0]
        cur.execute("ANALYZE parties_party")
    case = Case.objects.get(pk=TARGET)
    return {
        "number": case.number,
        "sequence": f"第{case.sequence}号",
        "name_exact": name,
        "name_prefix": name[:2],
        "id_number": number,
        "phone": phone,
        "title_word": "土地承包",  # 1 case in 16
        "summary_word": "牲畜损坏庄稼",  # 1 case in 10, in the summary only
        "rare_word": f"事由编号{TARGET % 9973}",  # ~100 cases: the summary's own number
    }


def run(measure: Any, entries: dict[str, str], requests: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind, q in entries.items():
        for who, user_id in USERS.items():
            result = measure(f"/cases/agency/?q={quote(q)}", user_id, requests)
            out[f"search:{kind}/{who}"] = result
    return out
