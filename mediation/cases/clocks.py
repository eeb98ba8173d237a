"""Which statutory clocks a case runs in its current state (DOMAIN.md §6, §7).

`wanted_clocks(case)` is a pure function of the case row and its latest step records; the
service reconciles the case's live clocks against it after every change, which is what
"entering a state starts its clock, leaving it stops it" means when one clock spans several
states (the mediation period runs through accepted → mediating ⇄ extended/suspended).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from mediation.agencies.models import AgencyKind
from mediation.cases.models import (
    Case,
    CaseKind,
    MediationTrack,
    OpinionStage,
    ReferralKind,
    ReferralStatus,
)
from mediation.core.clock import local_date

PauseMode = Literal["run", "pause", "manual"]


@dataclass(frozen=True)
class ClockSpec:
    rule_code: str
    start_date: dt.date
    extra_days: int = 0
    # run: the clock must be running; pause: the state itself pauses it (中止 for 鉴定);
    # manual: paused and resumed by explicit actions (复核 hearings, Art 36 ¶2).
    pause_mode: PauseMode = "run"
    # The agency that owes the duty when it is not the holder: the receiver of a referral owes
    # its acceptance (受理/签收), and an overdue acceptance escalates against it.
    agency_id: int | None = None


MEDIATION_RULES = {
    MediationTrack.PEOPLE: "dispute.mediate",
    MediationTrack.PEOPLE_MONTH: "dispute.mediate_month",
    MediationTrack.COURT_ENTRUSTED: "dispute.court_entrusted",
    MediationTrack.LABOUR: "dispute.labour",
    MediationTrack.MEDICAL: "dispute.medical",
}
MEDIATION_STATES = {"accepted", "mediating", "extended", "suspended"}
# Clocks that explicit pause/resume actions may stop and restart.
MANUALLY_PAUSABLE = {"petition.rereview"}


def _entered(case: Case) -> dt.date:
    return local_date(case.state_entered_at)


def _latest_opinion_served(case: Case, stage: str) -> dt.date | None:
    return (
        case.opinions.filter(stage=stage).order_by("-issued_at").values_list("served_on", flat=True)
    ).first()


def _pending_referral(case: Case) -> tuple[str | None, int | None]:
    known = getattr(case, "known_pending_referral", None)  # set by the service that opened it
    if known is not None:
        return known
    row = (
        case.referrals.filter(status=ReferralStatus.PENDING)
        .values_list("kind", "to_agency_id")
        .first()
    )
    return (row[0], row[1]) if row else (None, None)


def wanted_clocks(case: Case) -> list[ClockSpec]:
    s = case.state
    if case.kind == CaseKind.DISPUTE:
        return _dispute_clocks(case, s)
    return _petition_clocks(case, s)


def _dispute_clocks(case: Case, s: str) -> list[ClockSpec]:
    if s in ("registered", "escalated"):
        # 研判 within 1 working day; after 上交 the higher rung triages again.
        return [ClockSpec("dispute.triage", _entered(case))]
    if s == "assigned":
        kind, receiver = _pending_referral(case)
        rule = (
            "referral.police_ack" if kind == ReferralKind.POLICE_MEDIATION else "dispute.assign_ack"
        )
        return [ClockSpec(rule, _entered(case), agency_id=receiver)]
    if s in MEDIATION_STATES:
        start = case.mediation_period_start or case.accepted_on or _entered(case)
        return [
            ClockSpec(
                MEDIATION_RULES[case.mediation_track],
                start,
                extra_days=case.extension_days,
                pause_mode="pause" if s == "suspended" else "run",
            )
        ]
    if s == "agreement_reached":
        effective = (
            case.agreements.order_by("-recorded_at").values_list("effective_on", flat=True).first()
        )
        return [ClockSpec("confirmation.apply", effective or _entered(case))]
    if s == "confirmation_pending":
        applied = case.confirmation_applied_on or _entered(case)
        return [
            ClockSpec("confirmation.decide", applied),
            ClockSpec("confirmation.decide_target", applied),
        ]
    if s == "performance_monitoring":
        agreement = case.agreements.order_by("-recorded_at").first()
        start = _entered(case)
        if agreement is not None:
            start = agreement.performance_due_on or agreement.effective_on
        return [ClockSpec("dispute.followup", start)]
    return []


def _petition_clocks(case: Case, s: str) -> list[ClockSpec]:
    if s == "registered":
        # Art 22 (a 信访部门 routes) or Art 23 ¶2 (another agency tells the petitioner);
        # both 15 days from receipt (收到之日, DOMAIN.md §2.2 ¶5).
        rule = (
            "petition.route"
            if case.holder_agency.kind == AgencyKind.PETITION_OFFICE
            else "petition.notify"
        )
        return [ClockSpec(rule, case.received_on)]
    if s == "forwarded":
        entered = _entered(case)
        _kind, receiver = _pending_referral(case)
        return [
            ClockSpec("petition.notify", entered, agency_id=receiver),
            ClockSpec("petition.objection", entered, agency_id=receiver),
        ]
    if s in ("accepted", "handling"):
        return [ClockSpec("petition.handle", case.accepted_on or _entered(case))]
    if s == "extended":
        # Art 34: counted as one 90-day period from 受理 (DOMAIN.md §2.2 ¶2).
        return [ClockSpec("petition.handle_extended", case.accepted_on or _entered(case))]
    if s == "opinion_issued":
        served = _latest_opinion_served(case, OpinionStage.HANDLING) or _entered(case)
        return [ClockSpec("petition.review_request", served)]
    if s in ("review_requested", "under_review"):
        return [ClockSpec("petition.review", case.review_requested_on or _entered(case))]
    if s == "review_opinion_issued":
        served = _latest_opinion_served(case, OpinionStage.REVIEW) or _entered(case)
        return [ClockSpec("petition.rereview_request", served)]
    if s in ("rereview_requested", "under_rereview"):
        return [
            ClockSpec(
                "petition.rereview",
                case.rereview_requested_on or _entered(case),
                pause_mode="manual",
            )
        ]
    return []
