"""What the printable documents show: 受理告知书, 人民调解协议书, 督办单.

Each builder returns a plain context; the templates under web/docs/ lay it out for A4.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from mediation.cases.models import (
    Agreement,
    Case,
    CaseKind,
    CaseParty,
    CasePartyRole,
)
from mediation.core.clock import local_date
from mediation.deadlines import services as clock_services
from mediation.deadlines.calendar_source import current_calendar
from mediation.deadlines.models import Clock
from mediation.parties import idnumbers
from mediation.parties.models import PartyKind

# 受理告知书: states a petition can be in once it has been accepted (受理).
PETITION_ACCEPTED_OR_LATER = frozenset(
    {
        "accepted",
        "handling",
        "extended",
        "mediated",
        "opinion_issued",
        "review_requested",
        "under_review",
        "review_opinion_issued",
        "rereview_requested",
        "under_rereview",
        "final",
        "closed",
    }
)
HANDLING_DAYS = 60  # 信访工作条例 Art 34


def acceptance_notice_available(case: Case) -> bool:
    return (
        case.kind == CaseKind.PETITION
        and case.state in PETITION_ACCEPTED_OR_LATER
        and case.accepted_on is not None
    )


def _parties(case: Case, roles: tuple[str, ...] | None = None) -> list[CaseParty]:
    qs = CaseParty.objects.filter(case=case).select_related("party").order_by("pk")
    if roles is not None:
        qs = qs.filter(role__in=roles)
    return list(qs)


def _handling_due(case: Case) -> dt.date:
    """The due day of the 60-day handling period counted from 受理 (Art 34)."""
    assert case.accepted_on is not None
    clock = (
        Clock.objects.filter(case=case, rule_code="petition.handle", start_date=case.accepted_on)
        .order_by("-started_at")
        .first()
    )
    if clock is not None:
        return clock.due
    return clock_services.clock_compute(
        rule_code="petition.handle", start_date=case.accepted_on, calendar=current_calendar()
    ).due


def acceptance_notice(case: Case, *, hidden: bool) -> dict[str, Any]:
    petitioners = _parties(case, (CasePartyRole.PETITIONER, CasePartyRole.REPRESENTATIVE))
    return {
        "case": case,
        "petitioner_names": [] if hidden else [cp.party.name for cp in petitioners],
        "hidden": hidden,
        "handling_days": HANDLING_DAYS,
        "due": _handling_due(case),
        "agency": case.holder_agency,
    }


def _age(born: dt.date | None, on: dt.date) -> int | None:
    if born is None:
        return None
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def agreement_document(case: Case, agreement: Agreement) -> dict[str, Any]:
    """人民调解协议书 (人民调解法 Art 29): the parties, facts, terms, performance, signatures."""
    parties = _parties(case)
    rows = []
    for cp in parties:
        p = cp.party
        rows.append(
            {
                "role": cp.get_role_display(),
                "name": p.name,
                "is_person": p.kind == PartyKind.PERSON,
                "gender": p.get_gender_display() if p.gender else "",
                "age": _age(p.birth_date, agreement.effective_on),
                "id_masked": p.id_number_masked,
                "phone": idnumbers.mask_phone(p.phone) if p.phone else "",
                "address": p.address,
            }
        )
    signers = [r for r in rows if r["role"]]
    recorder = agreement.recorded_by
    committee = recorder.agency if recorder.agency_id else case.holder_agency
    return {
        "case": case,
        "agreement": agreement,
        "parties": rows,
        "signers": signers,
        "mediator": case.assignee or recorder,
        "committee": committee,
        "copies": len(rows) + 1,
        "recorded_on": local_date(agreement.recorded_at),
    }
