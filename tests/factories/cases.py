"""Case builders: put a dispute or a petition into any state BY CALLING THE SERVICES.

Nothing here sets `state`: every builder registers a case and then runs the transitions of
one path through the machine with `case_transition`, as the staff who would take them.
Tests about a transition call the service themselves (STYLE.md); these builders only set
the stage.

    dispute_in_state("performance_monitoring", township=township_tree(), now=now)
    petition_in_state("under_rereview", township=t, now=now)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from mediation.accounts.models import Role, User
from mediation.agencies.models import Agency
from mediation.agencies.selectors import reviewers_of
from mediation.cases import workflow
from mediation.cases.models import Case, CaseKind, CasePartyRole, Channel, Referral, ReferralStatus
from mediation.cases.services import (
    PartyInput,
    case_transition,
    dispute_register,
    petition_receive,
)
from mediation.core.clock import local_date
from mediation.parties.idnumbers import check_code
from tests.factories.accounts import head_of, staff
from tests.factories.agencies import Township

# ID numbers ---------------------------------------------------------------------------------


def id_number(n: int = 0, *, born: dt.date = dt.date(1980, 1, 1), region: str = "110105") -> str:
    """A checksum-valid 18-character 居民身份证号 (GB 11643), distinct for each `n` < 1000."""
    first17 = f"{region}{born:%Y%m%d}{n % 1000:03d}"
    return first17 + check_code(first17)


# Registration inputs ------------------------------------------------------------------------


def channel(code: str = "visit") -> Channel:
    """A seeded intake channel (migration 0003); re-created if a flush removed it."""
    return Channel.objects.get_or_create(code=code, defaults={"name": code})[0]


def party_input(
    n: int = 0, *, role: str = CasePartyRole.APPLICANT, name: str | None = None
) -> PartyInput:
    return PartyInput(
        name=name or f"当事人{n}",
        role=role,
        id_number=id_number(n),
        phone=f"138{n:08d}",
        address="将官池镇将官池村",
    )


def dispute_parties() -> list[PartyInput]:
    return [
        party_input(1, role=CasePartyRole.APPLICANT, name="张三"),
        party_input(2, role=CasePartyRole.RESPONDENT, name="李四"),
    ]


def petition_parties() -> list[PartyInput]:
    return [party_input(3, role=CasePartyRole.PETITIONER, name="王五")]


def register_dispute(
    township: Township,
    *,
    now: dt.datetime,
    actor: User | None = None,
    title: str = "邻里宅基地界址纠纷",
    received_on: dt.date | None = None,
    parties: list[PartyInput] | None = None,
    **kwargs: Any,
) -> Case:
    """登记 a dispute at the township 综治中心 (by its supervisor unless `actor` is given)."""
    return dispute_register(
        actor=actor or staff(township.centre, Role.SUPERVISOR),
        title=title,
        channel_id=channel("visit").pk,
        received_on=received_on or local_date(now),
        parties=dispute_parties() if parties is None else parties,
        now=now,
        **kwargs,
    )


def receive_petition(
    township: Township,
    *,
    now: dt.datetime,
    actor: User | None = None,
    title: str = "反映征地补偿款未发放",
    received_on: dt.date | None = None,
    parties: list[PartyInput] | None = None,
    **kwargs: Any,
) -> Case:
    """收到 a petition at the township 信访办 (by its petition officer unless `actor` is given)."""
    return petition_receive(
        actor=actor or staff(township.petition_office, Role.PETITION_OFFICER),
        title=title,
        channel_id=channel("visit").pk,
        received_on=received_on or local_date(now),
        parties=petition_parties() if parties is None else parties,
        now=now,
        **kwargs,
    )


# Who takes a step ---------------------------------------------------------------------------

# The first role of this list that ROLES allows for a step is the one that takes it.
ROLE_PREFERENCE = (
    Role.MEDIATOR,
    Role.PETITION_OFFICER,
    Role.SUPERVISOR,
    Role.JUDICIAL_OFFICER,
    Role.COURT_CLERK,
    Role.POLICE_OFFICER,
)


def actor_for(case: Case, transition: str, n: int = 0) -> User:
    """The n-th member of the acting agency with the preferred allowed role.

    The acting agency is the workflow table's (`workflow.Actor`): the holder; for a receiving
    step (accept a referral, object to a forwarded petition) the agency the pending referral
    was sent to; for the court's ruling the court applied to; for a 复查/复核 request the
    reviewing organ (the next agency up).
    """
    act = workflow.action(case.kind, transition)
    assert act is not None, f"no workflow row for {case.kind}.{transition}"
    role = next(r for r in ROLE_PREFERENCE if r in act.roles)
    agency_id = case.holder_agency_id
    if act.actor is workflow.Actor.RECEIVER:
        agency_id = Referral.objects.get(case=case, status=ReferralStatus.PENDING).to_agency_id
    elif act.actor is workflow.Actor.COURT:
        agency_id = case.confirmation_court_id
    elif act.actor is workflow.Actor.REVIEWER:
        parent = Agency.objects.get(pk=case.holder_agency_id).parent_id
        agency_id = (
            parent
            if parent in reviewers_of(case.holder_agency_id)
            else min(reviewers_of(case.holder_agency_id))
        )
    return staff(Agency.objects.get(pk=agency_id), role, n)


# Step data ----------------------------------------------------------------------------------

StepData = Callable[[Case, Township, dt.date], dict[str, Any]]


def _none(case: Case, t: Township, today: dt.date) -> dict[str, Any]:
    return {}


def _reason(text: str) -> StepData:
    return lambda case, t, today: {"reason": text}


def _opinion(case: Case, t: Township, today: dt.date) -> dict[str, Any]:
    return {"result": "explain", "text": "经调查核实，答复如下。", "served_on": today}


DISPUTE_DATA: dict[str, StepData] = {
    "triage": lambda case, t, today: {"risk_level": "medium"},
    "assign": lambda case, t, today: {"to_agency": t.committee.pk},
    "accept": _none,
    "decline": _reason("不属于本调委会调解范围"),
    "transfer": lambda case, t, today: {"target": "litigation"},
    "start_mediation": _none,
    "refuse": _reason("被申请人明确拒绝调解"),
    "withdraw": _reason("申请人撤回调解申请"),
    "extend": lambda case, t, today: {
        "reason": "双方同意延长调解期限",
        "extra_days": 15,
        "parties_consented": True,
    },
    "continue_mediation": _none,
    "suspend": _reason("等待伤情鉴定"),
    "resume": _none,
    "record_agreement": lambda case, t, today: {
        "form": "written",
        "text": "被申请人于协议生效后二十日内赔偿申请人损失三千元。",
        "performance_due_on": today + dt.timedelta(days=20),
    },
    "close_failed": lambda case, t, today: {
        "reason": "双方分歧较大，调解不成",
        "routes_explained": True,
    },
    "escalate": _reason("村调委会调解不成，上交乡镇"),
    "apply_confirmation": lambda case, t, today: {"court": t.court.pk},
    "monitor_performance": _none,
    "confirm": lambda case, t, today: {"ruling_number": "(2026)冀0123民特1号"},
    "reject_confirmation_remediate": _reason("协议内容违反法律规定，重新调解"),
    "reject_confirmation_fail": _reason("法院驳回确认申请，当事人拟起诉"),
    "close_resolved": lambda case, t, today: {"performed": True, "satisfaction": "satisfied"},
    "remediate": _reason("被申请人未按期履行"),
}

PETITION_DATA: dict[str, StepData] = {
    "register": lambda case, t, today: {"petition_type": "complaint"},
    "forward": lambda case, t, today: {"to_agency": t.judicial_office.pk, "mode": "forward"},
    "accept": _none,
    "accept_forwarded": _none,
    "raise_objection": _reason("不属于本机关法定职责"),
    "not_accept": lambda case, t, today: {"basis": "other", "reason": "不属于信访事项"},
    "divert": lambda case, t, today: {"procedure": "litigation"},
    "start_handling": _none,
    "extend": lambda case, t, today: {
        "reason": "案情复杂，需进一步调查",
        "approver": head_of(case.holder_agency).pk,
        "petitioner_notified_on": today,
    },
    "issue_opinion": _opinion,
    "record_mediation": lambda case, t, today: {
        "form": "settlement",
        "text": "双方自愿达成和解：补偿款于本月底前一次付清，信访人不再就此事信访。",
    },
    "close": lambda case, t, today: {
        "reason": "mediated" if case.state == "mediated" else "satisfied"
    },
    "request_review": _none,
    "start_review": _none,
    "issue_review_opinion": _opinion,
    "request_rereview": _none,
    "start_rereview": _none,
    "issue_rereview_opinion": _opinion,
}

# Paths: the transitions, in order, that lead from registration to each state ---------------

_D_ACCEPTED = ("triage", "assign", "accept")
_D_MEDIATING = (*_D_ACCEPTED, "start_mediation")
_D_AGREEMENT = (*_D_MEDIATING, "record_agreement")
_D_CONFIRMATION = (*_D_AGREEMENT, "apply_confirmation")
_D_PERFORMANCE = (*_D_CONFIRMATION, "confirm")

DISPUTE_PATHS: dict[str, tuple[str, ...]] = {
    "registered": (),
    "triaged": ("triage",),
    "assigned": ("triage", "assign"),
    "accepted": _D_ACCEPTED,
    "mediating": _D_MEDIATING,
    "extended": (*_D_MEDIATING, "extend"),
    "suspended": (*_D_MEDIATING, "suspend"),
    "escalated": (*_D_MEDIATING, "escalate"),
    "agreement_reached": _D_AGREEMENT,
    "confirmation_pending": _D_CONFIRMATION,
    "performance_monitoring": _D_PERFORMANCE,
    "closed_resolved": (*_D_PERFORMANCE, "close_resolved"),
    "closed_failed": (*_D_MEDIATING, "close_failed"),
    "closed_refused": (*_D_ACCEPTED, "refuse"),
    "withdrawn": (*_D_ACCEPTED, "withdraw"),
    "transferred": ("triage", "transfer"),
}

_P_HANDLING = ("register", "accept", "start_handling")
_P_OPINION = (*_P_HANDLING, "issue_opinion")
_P_REVIEW_OPINION = (*_P_OPINION, "request_review", "start_review", "issue_review_opinion")
_P_UNDER_REREVIEW = (*_P_REVIEW_OPINION, "request_rereview", "start_rereview")

PETITION_PATHS: dict[str, tuple[str, ...]] = {
    "received": (),
    "registered": ("register",),
    "forwarded": ("register", "forward"),
    "not_accepted": ("register", "not_accept"),
    "diverted": ("register", "divert"),
    "accepted": ("register", "accept"),
    "handling": _P_HANDLING,
    "extended": (*_P_HANDLING, "extend"),
    "mediated": (*_P_HANDLING, "record_mediation"),
    "opinion_issued": _P_OPINION,
    "review_requested": (*_P_OPINION, "request_review"),
    "under_review": (*_P_OPINION, "request_review", "start_review"),
    "review_opinion_issued": _P_REVIEW_OPINION,
    "rereview_requested": (*_P_REVIEW_OPINION, "request_rereview"),
    "under_rereview": _P_UNDER_REREVIEW,
    "final": (*_P_UNDER_REREVIEW, "issue_rereview_opinion"),
    "closed": (*_P_OPINION, "close"),
}


def step_data(case: Case, transition: str, township: Township, now: dt.datetime) -> dict:
    table = DISPUTE_DATA if case.kind == CaseKind.DISPUTE else PETITION_DATA
    return table[transition](case, township, local_date(now))


def advance(
    case: Case,
    transition: str,
    *,
    township: Township,
    now: dt.datetime,
    actor: User | None = None,
    data: dict[str, Any] | None = None,
) -> Case:
    """Run one transition through `case_transition` with the canonical actor and data."""
    case = Case.objects.get(pk=case.pk).as_proxy()
    return case_transition(
        case_id=case.pk,
        transition=transition,
        actor=actor or actor_for(case, transition),
        now=now,
        data=step_data(case, transition, township, now) if data is None else data,
    )


def _walk(case: Case, path: tuple[str, ...], *, township: Township, now: dt.datetime) -> Case:
    for transition in path:
        case = advance(case, transition, township=township, now=now)
    return Case.objects.get(pk=case.pk).as_proxy()


def dispute_in_state(
    state: str, *, township: Township, now: dt.datetime, **register_kwargs: Any
) -> Case:
    """A dispute registered at the township 综治中心 and walked to `state` at `now`."""
    case = register_dispute(township, now=now, **register_kwargs)
    return _walk(case, DISPUTE_PATHS[state], township=township, now=now)


def petition_in_state(
    state: str, *, township: Township, now: dt.datetime, **receive_kwargs: Any
) -> Case:
    """A petition received at the township 信访办 and walked to `state` at `now`."""
    case = receive_petition(township, now=now, **receive_kwargs)
    return _walk(case, PETITION_PATHS[state], township=township, now=now)
