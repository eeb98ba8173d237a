"""What the printable documents show: 受理告知书, 人民调解协议书, 督办单.

Each builder returns a plain context; the templates under web/docs/ lay it out for A4. The
documents are official papers served on parties and agencies: they are rendered in Chinese
whatever the interface language (`DOCUMENT_LANGUAGE`, `chinese_document`).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any

from django.utils import translation

from mediation.cases.models import (
    Agreement,
    Case,
    CaseKind,
    CaseParty,
    CasePartyRole,
)
from mediation.cases.selectors import protected_texts, redact
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
DOCUMENT_LANGUAGE = "zh-hans"


def chinese_document(view: Callable[..., Any]) -> Callable[..., Any]:
    """Render a print view in Chinese, whatever language the user chose for the interface."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with translation.override(DOCUMENT_LANGUAGE):
            response = view(*args, **kwargs)
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
            response.headers["Content-Language"] = "zh-CN"
            return response

    return wrapper


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


def agreement_document(case: Case, agreement: Agreement, *, hidden: bool = False) -> dict[str, Any]:
    """人民调解协议书 (人民调解法 Art 29): the parties, facts, terms, performance, signatures."""
    parties = _parties(case)
    rows = []
    for cp in parties:
        p = cp.party
        if hidden and cp.role != CasePartyRole.RESPONDENT:
            rows.append(
                {
                    "role": cp.get_role_display(),
                    "name": "（保密）",
                    "is_person": p.kind == PartyKind.PERSON,
                    "gender": "",
                    "age": None,
                    "id_masked": "（保密）",
                    "phone": "（保密）",
                    "address": "（保密）",
                }
            )
            continue
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
    secrets = protected_texts([case.pk]).get(case.pk, []) if hidden else []
    signers = [r for r in rows if r["role"]]
    recorder = agreement.recorded_by
    committee = recorder.agency if recorder.agency_id else case.holder_agency
    return {
        "case": case,
        "agreement": agreement,
        "description": redact(case.description, secrets),
        "terms": redact(agreement.text, secrets),
        "parties": rows,
        "signers": signers,
        "mediator": case.assignee or recorder,
        "committee": committee,
        "copies": len(rows) + 1,
        "recorded_on": local_date(agreement.recorded_at),
    }


def supervision_notice(escalation: Any, *, today: dt.date) -> dict[str, Any]:
    """督办单 (信访工作条例 Arts 38–40): issued by the supervising agency to the agency that owes
    the duty, numbered 督字〔year〕第N号 per issuer and year. The text states the facts at
    issue (due date, days overdue); when an extension was approved afterwards the table shows
    the new due date beside the original one, so text and table agree."""
    data = escalation.data or {}
    clock = escalation.clock
    issued_due = dt.date.fromisoformat(data["due"]) if data.get("due") else clock.due
    issued_days = data.get("days_overdue")
    if issued_days is None:
        issued_days = max((local_date(escalation.created_at) - issued_due).days, 0)
    addressee = data.get("responsible_agency") or escalation.case.holder_agency.name
    issuer = (
        escalation.issuer.name
        if escalation.issuer_id
        else (escalation.agency.name if escalation.agency_id else "")
    )
    return {
        "issuer_name": issuer,
        "addressee": addressee,
        "notice_label": escalation.notice_label,
        "issued_due": issued_due,
        "days_overdue_at_issue": issued_days,
        "current_due": clock.due,
        "due_moved": clock.due != issued_due,
        "days_overdue_now": max((today - clock.due).days, 0),
    }
