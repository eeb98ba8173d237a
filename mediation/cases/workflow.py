"""The workflow table: for each step of the two case machines, who takes it and from where.

One row per (case kind, transition or service action), and nothing about who acts is decided
anywhere else. A row says:

- `roles`: the roles allowed to take it;
- `actor`: which agency's staff take it (`Actor`):
  - HOLDER: the agency holding the case; supervisors over it may act for it;
  - RECEIVER: the agency a pending referral names (受理 or 退回 a 交办/转送);
  - COURT: the court the parties applied to for 司法确认 (it records its own ruling);
  - REVIEWER: the organ that reviews the holder's decision (复查, 复核: the next agency up,
    or one an administrator configured, `agencies.ReviewingOrgan`);
- `step`: the step form and what it records (`mediation.cases.steps`);
- `notify`: who is told once it is done (`Audience`), so no hand-off waits unseen;
- `public`: whether its event shows on the parties' public timeline (default: internal).

Everything else is derived from the table: the models' `permission=` hooks (`may_act`), the
actions a page or the API offers, "who acts next" (`next_steps`), and which agencies a step may
hand the case to (`target_*`: of the right kind, within reach, and with staff who can take the
next step there, so that no hand-off dead-ends). Visibility (`mediation.cases.selectors`) is
built to cover every actor this table names.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Literal

from django.db.models import Exists, OuterRef, QuerySet
from django.utils.translation import gettext as _

from mediation.accounts.models import Role, User
from mediation.agencies.models import Agency, AgencyKind
from mediation.agencies.selectors import (
    agency_below_ids,
    agency_chain_ids,
    agency_jurisdiction_ids,
    reviewers_of,
    user_scope,
)
from mediation.cases.models import (
    Case,
    CaseKind,
    Dispute,
    DisputeState,
    Petition,
    PetitionState,
)

if TYPE_CHECKING:
    from mediation.cases.steps import Step

# Roles ---------------------------------------------------------------------------------------

R = Role
# Who may register (登记) a case at their agency.
INTAKE = frozenset(
    {R.MEDIATOR, R.POLICE_OFFICER, R.COURT_CLERK, R.JUDICIAL_OFFICER, R.PETITION_OFFICER}
    | {R.SUPERVISOR}
)
# Who routes a registered dispute (研判分流, 交办): the 综治中心 and 司法所, and a police station
# or court for a dispute it registered itself (警调对接, 人民调解法 Art 18; 委派调解).
ROUTERS = frozenset({R.SUPERVISOR, R.JUDICIAL_OFFICER, R.POLICE_OFFICER, R.COURT_CLERK})
# Who mediates (人民调解员; 司法所 staff; a supervisor over the committee).
MEDIATORS = frozenset({R.MEDIATOR, R.JUDICIAL_OFFICER, R.SUPERVISOR})
# Who records the court's 司法确认 ruling: the court's own clerks (民诉法 Art 205).
COURT = frozenset({R.COURT_CLERK})
# Who handles a petition at the agency that has it: the 信访 staff and supervisors, and the
# staff of a 派出所 or 司法所 a matter was forwarded to as the agency with authority
# (信访工作条例 Art 22, 有权处理的机关).
HANDLERS = frozenset({R.PETITION_OFFICER, R.SUPERVISOR, R.POLICE_OFFICER, R.JUDICIAL_OFFICER})

K = AgencyKind
# The kinds of agency a petition may be forwarded to (courts take litigation-related matters
# through 导入法定程序; mediation committees through 访调对接).
HANDLER_KINDS = frozenset(
    {K.PETITION_OFFICE, K.PEACE_OFFICE, K.GOVERNMENT, K.POLICE_STATION, K.JUDICIAL_OFFICE}
)
MEDIATING_KINDS = frozenset({K.MEDIATION_COMMITTEE, K.JUDICIAL_OFFICE})


# What the accused agency of an accusation may still do when the matter was filed with it.
ACCUSED_MAY = frozenset({"register", "forward"})


class Actor(StrEnum):
    HOLDER = "holder"
    RECEIVER = "receiver"
    COURT = "court"
    REVIEWER = "reviewer"


class Audience(StrEnum):
    """Who is notified when a step is done."""

    RECEIVER = "receiver"  # the agency a referral the step opened names
    COURT = "court"  # the court applied to
    HOLDER = "holder"  # the (new) holder: after 上交, after the court's ruling
    REFERRERS = "referrers"  # agencies that handed the case on: 受理, 退回, 结案 (反馈)


@dataclass(frozen=True)
class Action:
    kind: str
    name: str
    roles: frozenset[str]
    actor: Actor
    step: Step
    notify: frozenset[Audience] = frozenset()
    public: bool = False
    # False for service actions that keep the state (访调对接, clock pauses, the case file).
    transition: bool = True
    # Service actions offered on the case page and in the API's action list: the states in
    # which they are (None: not offered there; 访调对接 and the clock pauses have their own).
    states: frozenset[str] | None = None
    # Only for those who may take a step of the case now (or, once it is closed, its holder's
    # staff: material is still filed, 立卷归档): uploading and withdrawing material.
    follows_steps: bool = False


# The table -----------------------------------------------------------------------------------

FEEDBACK = frozenset({Audience.REFERRERS})

# When the case-file records are taken: sessions while mediating (a petition: while handled,
# Art 33 mediation and hearings), follow-up visits while the agreement is performed (Art 31
# 监督履行), the oral-agreement register once an oral agreement was reached (Art 28).
SESSION_STATES = {
    CaseKind.DISPUTE: frozenset(
        {"accepted", "mediating", "extended", "suspended", "agreement_reached"}
    ),
    CaseKind.PETITION: frozenset({"handling", "extended", "under_review", "under_rereview"}),
}
FOLLOW_UP_STATES = frozenset(
    {"agreement_reached", "confirmation_pending", "performance_monitoring"}
)
ORAL_AGREEMENT_STATES = frozenset(
    {"agreement_reached", "performance_monitoring", "closed_resolved"}
)


@functools.cache
def _table() -> dict[tuple[str, str], Action]:
    from mediation.cases import steps as s

    D, P = CaseKind.DISPUTE, CaseKind.PETITION
    H, RCV, CRT, REV = Actor.HOLDER, Actor.RECEIVER, Actor.COURT, Actor.REVIEWER
    rows = [
        # 矛盾纠纷 (DOMAIN.md §6.1)
        Action(D, "triage", ROUTERS, H, s.TriageStep()),
        Action(D, "accept_own", MEDIATORS, H, s.AcceptDisputeStep(), FEEDBACK, public=True),
        Action(
            D, "assign", ROUTERS, H, s.AssignStep(), frozenset({Audience.RECEIVER}), public=True
        ),
        Action(D, "accept", MEDIATORS, RCV, s.AcceptDisputeStep(), FEEDBACK, public=True),
        Action(D, "decline", MEDIATORS, RCV, s.DeclineStep(), FEEDBACK),
        Action(D, "transfer", ROUTERS | MEDIATORS, H, s.TransferStep(), FEEDBACK, public=True),
        Action(D, "start_mediation", MEDIATORS, H, s.Step(), public=True),
        Action(D, "refuse", MEDIATORS, H, s.ReasonStep(), FEEDBACK, public=True),
        Action(D, "withdraw", MEDIATORS, H, s.ReasonStep(), FEEDBACK, public=True),
        Action(D, "extend", MEDIATORS, H, s.ExtendDisputeStep(), public=True),
        Action(D, "continue_mediation", MEDIATORS, H, s.Step()),
        Action(D, "suspend", MEDIATORS, H, s.SuspendStep(), public=True),
        Action(D, "resume", MEDIATORS, H, s.Step(), public=True),
        Action(D, "record_agreement", MEDIATORS, H, s.AgreementStep(), public=True),
        Action(D, "close_failed", MEDIATORS, H, s.CloseFailedStep(), FEEDBACK, public=True),
        Action(D, "escalate", MEDIATORS, H, s.EscalateStep(), frozenset({Audience.HOLDER}), True),
        Action(
            D,
            "apply_confirmation",
            MEDIATORS,
            H,
            s.ApplyConfirmationStep(),
            frozenset({Audience.COURT}),
            public=True,
        ),
        Action(D, "monitor_performance", MEDIATORS, H, s.Step()),
        Action(
            D, "confirm", COURT, CRT, s.ConfirmStep(), frozenset({Audience.HOLDER}), public=True
        ),
        Action(
            D,
            "reject_confirmation_remediate",
            COURT,
            CRT,
            s.RemediateStep(),
            frozenset({Audience.HOLDER}),
            public=True,
        ),
        Action(
            D,
            "reject_confirmation_fail",
            COURT,
            CRT,
            s.ReasonStep(),
            frozenset({Audience.HOLDER, Audience.REFERRERS}),
            public=True,
        ),
        Action(D, "close_resolved", MEDIATORS, H, s.FollowUpStep(), FEEDBACK, public=True),
        Action(D, "remediate", MEDIATORS, H, s.RemediateStep(), public=True),
        # 信访事项 (DOMAIN.md §6.2)
        Action(P, "register", INTAKE, H, s.RegisterPetitionStep(), public=True),
        Action(
            P, "forward", HANDLERS, H, s.ForwardStep(), frozenset({Audience.RECEIVER}), public=True
        ),
        Action(P, "accept", HANDLERS, H, s.AcceptPetitionStep(), public=True),
        Action(
            P, "accept_forwarded", HANDLERS, RCV, s.AcceptForwardedStep(), FEEDBACK, public=True
        ),
        Action(P, "raise_objection", HANDLERS, RCV, s.ObjectionStep(), FEEDBACK),
        Action(P, "not_accept", HANDLERS, H, s.NotAcceptStep(), FEEDBACK, public=True),
        Action(P, "divert", HANDLERS, H, s.DivertStep(), FEEDBACK, public=True),
        Action(P, "start_handling", HANDLERS, H, s.Step(), public=True),
        Action(P, "extend", HANDLERS, H, s.ExtendPetitionStep(), public=True),
        Action(P, "issue_opinion", HANDLERS, H, s.OpinionStep(), public=True),
        Action(
            P, "record_mediation", HANDLERS | MEDIATORS, H, s.PetitionMediationStep(), public=True
        ),
        Action(P, "close", HANDLERS, H, s.ClosePetitionStep(), FEEDBACK, public=True),
        Action(P, "request_review", HANDLERS, REV, s.ReviewRequestStep(), public=True),
        Action(P, "start_review", HANDLERS, H, s.Step(), public=True),
        Action(P, "issue_review_opinion", HANDLERS, H, s.ReviewOpinionStep(), public=True),
        Action(P, "request_rereview", HANDLERS, REV, s.ReviewRequestStep(), public=True),
        Action(P, "start_rereview", HANDLERS, H, s.Step(), public=True),
        Action(P, "issue_rereview_opinion", HANDLERS, H, s.RereviewOpinionStep(), public=True),
        # Service actions on a petition that keep its state.
        Action(
            P,
            "refer_to_mediation",
            HANDLERS,
            H,
            s.ReferToMediationStep(),
            frozenset({Audience.RECEIVER}),
            transition=False,
        ),
        Action(P, "pause_clock", HANDLERS, H, s.Step(), transition=False),
        Action(P, "resume_clock", HANDLERS, H, s.Step(), transition=False),
    ]
    # The case file (卷宗, 人民调解法 Art 27): whoever of the holder's side may take a step of
    # the case now adds and withdraws material, and after closing its staff still do (the file
    # is completed then, 立卷归档);
    # mediators record sessions, follow-up visits and oral agreements.
    for kind in (D, P):
        everyone = frozenset(INTAKE | ROUTERS | MEDIATORS | HANDLERS)
        states = frozenset(DisputeState.values if kind == D else PetitionState.values)
        rows += [
            Action(
                kind,
                "upload_attachment",
                everyone,
                H,
                s.UploadAttachmentStep(),
                transition=False,
                states=states,
                follows_steps=True,
            ),
            Action(
                kind,
                "withdraw_attachment",
                everyone,
                H,
                s.WithdrawAttachmentStep(),
                transition=False,
                states=states,
                follows_steps=True,
            ),
        ]
    rows += [
        Action(
            D,
            "record_session",
            MEDIATORS,
            H,
            s.SessionStep(),
            transition=False,
            states=SESSION_STATES[D],
        ),
        Action(
            P,
            "record_session",
            HANDLERS | MEDIATORS,
            H,
            s.SessionStep(),
            transition=False,
            states=SESSION_STATES[P],
        ),
        Action(
            D,
            "follow_up_visit",
            MEDIATORS,
            H,
            s.FollowUpVisitStep(),
            transition=False,
            states=FOLLOW_UP_STATES,
        ),
        Action(
            D,
            "register_oral_agreement",
            MEDIATORS,
            H,
            s.OralAgreementStep(),
            transition=False,
            states=ORAL_AGREEMENT_STATES,
        ),
    ]
    return {(str(a.kind), a.name): a for a in rows}


def action(kind: str, name: str) -> Action | None:
    return _table().get((str(kind), name))


def actions(kind: str | None = None) -> list[Action]:
    return [a for a in _table().values() if kind is None or a.kind == kind]


def service_actions(kind: str) -> list[Action]:
    """The service actions offered on the case page and in the API (`Action.states`)."""
    return [a for a in actions(kind) if not a.transition and a.states is not None]


def transition_names(kind: str) -> list[str]:
    return [a.name for a in actions(kind) if a.transition]


# The machines' graph, read once from the models -------------------------------------------------


@functools.cache
def _leaving(kind: str, state: str) -> tuple[str, ...]:
    """Names of the transitions that leave `state` in `kind`'s machine."""
    model = Dispute if kind == CaseKind.DISPUTE else Petition
    names = []
    for t in model._meta.get_field("state").get_all_transitions(model):
        if t.source == state and t.name not in names:
            names.append(t.name)
    return tuple(names)


def roles_acting(kind: str, state: str, actor: Actor) -> frozenset[str]:
    """The roles that take a step of `actor`'s side out of `state`: the people a hand-off into
    `state` needs at the agency it goes to."""
    out: set[str] = set()
    for name in _leaving(kind, state):
        a = action(kind, name)
        if a is not None and a.actor is actor:
            out |= a.roles
    return frozenset(out)


def states_left_by(actor: Actor) -> dict[str, frozenset[str]]:
    """{kind: states from which a step of `actor`'s side leaves}: e.g. the states in which the
    reviewing organ must see a petition (the 复查/复核 windows)."""
    out: dict[str, set[str]] = {}
    for kind, model in ((CaseKind.DISPUTE, Dispute), (CaseKind.PETITION, Petition)):
        for t in model._meta.get_field("state").get_all_transitions(model):
            a = action(kind, t.name)
            if a is not None and a.actor is actor:
                out.setdefault(str(kind), set()).add(t.source)
    return {k: frozenset(v) for k, v in out.items()}


# Who acts ----------------------------------------------------------------------------------------


def acting_agency_ids(case: Case, act: Action) -> frozenset[int]:
    """The agencies whose staff take `act` on the case now."""
    if act.actor is Actor.HOLDER:
        return frozenset({case.holder_agency_id})
    if act.actor is Actor.RECEIVER:
        target = case.pending_referral_target_id()
        return frozenset({target}) if target else frozenset()
    if act.actor is Actor.COURT:
        return (
            frozenset({case.confirmation_court_id}) if case.confirmation_court_id else frozenset()
        )
    return reviewers_of(case.holder_agency_id)


def may_act(user: User, case: Case, name: str) -> bool:
    """Whether `user` may take step `name` on `case` (state and conditions aside: the machine
    checks those). The one permission rule of every transition and case action."""
    act = action(case.kind, name)
    return act is not None and _allowed(user, case, act)


def _allowed(user: User, case: Case, act: Action) -> bool:
    scope = user_scope(user)
    if scope.empty or getattr(user, "role", None) not in act.roles:
        return False
    # 检举控告 (Art 30 ¶3): the accused agency and those under it never handle the matter;
    # if it was filed with them, they may only register it and pass it on (转送).
    if (
        case.involves_accusation
        and case.accused_agency_id in scope.above
        and act.name not in ACCUSED_MAY
    ):
        return False
    if act.actor is Actor.HOLDER:
        # The holder's staff, or a supervisor over the holder.
        allowed = case.holder_agency_id in scope.below
    else:
        allowed = scope.agency_id in acting_agency_ids(case, act)
    if allowed and act.follows_steps and not case.is_terminal:
        allowed = _takes_a_step_now(user, case)
    return allowed


def _takes_a_step_now(user: User, case: Case) -> bool:
    """Whether `user` may take some transition of the case in its current state."""
    proxy = case.as_proxy()
    for t in proxy.get_available_state_transitions():
        a = action(case.kind, t.name)
        if a is not None and a.transition and _allowed(user, case, a):
            return True
    return False


def refusal(user: User, case: Case, name: str) -> str | None:
    """Why `user` may not take step `name` on `case` (for the user), or None if they may."""
    act = action(case.kind, name)
    if act is None:
        return _("未知的操作：%(name)s") % {"name": name}
    if _allowed(user, case, act):
        return None
    scope = user_scope(user)
    if (
        not scope.empty
        and case.involves_accusation
        and case.accused_agency_id in scope.above
        and act.name not in ACCUSED_MAY
    ):
        return _("检举控告事项不得由被检举控告机构及其下属机构办理（信访工作条例第三十条）。")
    return _who_acts_text(case, act)


def _role_names(roles: Iterable[str]) -> str:
    order = list(Role.values)
    return "、".join(str(Role(r).label) for r in sorted(roles, key=order.index))


def _who_acts_text(case: Case, act: Action) -> str:
    names = "、".join(
        Agency.objects.filter(pk__in=acting_agency_ids(case, act))
        .order_by("level", "name")
        .values_list("name", flat=True)
    )
    if act.actor is Actor.REVIEWER:
        return _("本步骤由原办理机关的上一级机关（%(agencies)s）的%(roles)s办理。") % {
            "agencies": names or _("未设置"),
            "roles": _role_names(act.roles),
        }
    return _("本步骤由%(agencies)s的%(roles)s办理。") % {
        "agencies": names or _("（尚无办理机构）"),
        "roles": _role_names(act.roles),
    }


@dataclass(frozen=True)
class NextStep:
    """One group of "who acts next": the agencies whose staff (with these roles) may take these
    steps now."""

    actor: Actor
    agencies: tuple[Agency, ...]
    roles: tuple[str, ...]
    steps: tuple[tuple[str, str], ...]  # (name, label)

    @property
    def agency_names(self) -> str:
        return "、".join(a.name for a in self.agencies)

    @property
    def role_names(self) -> str:
        return _role_names(self.roles)


def next_steps(case: Case) -> list[NextStep]:
    """Who may move the case on from its current state, grouped by acting agencies. Empty for a
    closed case. The case page shows it to everyone who cannot act themselves."""
    from mediation.cases.labels import transition_label

    case = case.as_proxy()
    groups: dict[tuple[Actor, frozenset[int]], tuple[set[str], list[tuple[str, str]]]] = {}
    for t in case.get_available_state_transitions():
        act = action(case.kind, t.name)
        if act is None:
            continue
        key = (act.actor, acting_agency_ids(case, act))
        roles, names = groups.setdefault(key, (set(), []))
        roles |= act.roles
        names.append((t.name, transition_label(case.kind, t.name)))
    all_ids = {i for _actor, ids in groups for i in ids}
    agencies = {a.pk: a for a in Agency.objects.filter(pk__in=all_ids)}
    order = list(Role.values)
    out = []
    for (actor, ids), (roles, names) in groups.items():
        out.append(
            NextStep(
                actor=actor,
                agencies=tuple(
                    sorted((agencies[i] for i in ids if i in agencies), key=lambda a: a.name)
                ),
                roles=tuple(sorted(roles, key=order.index)),
                steps=tuple(names),
            )
        )
    return out


# The parties' public timeline (/public/track/) ---------------------------------------------------
#
# What a party who tracks their case with its 查询码 is shown: each state and each event kind is
# public or internal here, and only here. A transition's event is public when its row says
# `public=True`; of the events that are not transitions, only registration (收到/登记) is.
# Everything else, including every event kind added later, is internal unless marked here:
# clock pauses, the case file, supervision (督办) steps, holiday recomputations.

PUBLIC_SERVICE_EVENTS = frozenset({"register"})

# States the parties see by name. An internal state shows as the public state it belongs to
# (`PUBLIC_STATE_AS`): a dispute being routed inside the township (研判分流, 交办 awaiting the
# committee) is still "received, to be accepted" for the applicant.
INTERNAL_STATES = {
    CaseKind.DISPUTE: frozenset({"triaged", "assigned"}),
    CaseKind.PETITION: frozenset(),
}
PUBLIC_STATE_AS = {"triaged": "registered", "assigned": "registered"}

# The clocks the parties are shown with their due dates: the legal periods of handling and
# mediation, and their own windows (复查/复核 requests). Internal routing clocks (研判分流,
# 交办签收, 异议, 回访) are not.
PUBLIC_CLOCKS = frozenset(
    {
        "petition.notify",
        "petition.handle",
        "petition.handle_extended",
        "petition.review_request",
        "petition.review",
        "petition.rereview_request",
        "petition.rereview",
        "dispute.mediate",
        "dispute.mediate_month",
        "dispute.court_entrusted",
        "dispute.labour",
        "dispute.medical",
    }
)


def event_is_public(kind: str, event_kind: str) -> bool:
    """Whether an event of `event_kind` shows on the parties' public timeline."""
    if event_kind in PUBLIC_SERVICE_EVENTS:
        return True
    act = action(kind, event_kind)
    return act is not None and act.transition and act.public


def public_state(kind: str, state: str) -> str:
    """The state as the parties are told it (an internal state as its public one)."""
    if state in INTERNAL_STATES.get(str(kind), frozenset()):
        return PUBLIC_STATE_AS.get(state, "registered")
    return state


# Where a hand-off may go -------------------------------------------------------------------------

Reach = Literal["jurisdiction", "above", "below"]


@dataclass(frozen=True)
class TargetRule:
    """Which agencies a step may name: `kinds` (None: any), within `reach` of the actor
    (jurisdiction: the actor's whole tree; above: the holder's ancestors; below: the actor's
    supervisory scope), with active staff of the roles that take the next step there
    (`roles_acting(*staffed_by)`), never the accused agency of an accusation or anything under
    it, and the holder itself only where `holder_ok` (a 综治中心 sending a committee's own
    walk-in back to it)."""

    kinds: frozenset[str] | None
    kinds_label: str
    reach: Reach
    staffed_by: tuple[str, str, Actor] | None
    holder_ok: bool = False


def _rules() -> dict[str, TargetRule]:
    return {
        "assign": TargetRule(
            MEDIATING_KINDS,
            _("人民调解委员会或司法所"),
            "jurisdiction",
            (CaseKind.DISPUTE, "assigned", Actor.RECEIVER),
            holder_ok=True,
        ),
        "forward": TargetRule(
            HANDLER_KINDS,
            _("信访部门、综治中心、人民政府、派出所或司法所"),
            "jurisdiction",
            (CaseKind.PETITION, "forwarded", Actor.RECEIVER),
        ),
        "escalate": TargetRule(
            MEDIATING_KINDS | {K.PEACE_OFFICE},
            _("上级人民调解委员会、司法所或综治中心"),
            "above",
            (CaseKind.DISPUTE, "escalated", Actor.HOLDER),
        ),
        "court": TargetRule(
            frozenset({K.PEOPLES_COURT}),
            _("人民法院（人民法庭）"),
            "jurisdiction",
            (CaseKind.DISPUTE, "confirmation_pending", Actor.COURT),
        ),
        "refer_to_mediation": TargetRule(
            frozenset({K.MEDIATION_COMMITTEE}),
            _("人民调解委员会"),
            "jurisdiction",
            (CaseKind.DISPUTE, "assigned", Actor.RECEIVER),
        ),
        "reassign": TargetRule(None, "", "below", None),
    }


def _reach_ids(rule: TargetRule, case: Case, actor: User) -> frozenset[int]:
    scope = user_scope(actor)
    if scope.empty:
        return frozenset()
    if rule.reach == "above":
        return frozenset(agency_chain_ids(case.holder_agency_id)[1:])
    if rule.reach == "below":
        return scope.below
    return agency_jurisdiction_ids(scope.agency_id)


def _staff_roles(rule: TargetRule, case: Case) -> frozenset[str]:
    if rule.staffed_by is not None:
        return roles_acting(*rule.staffed_by)
    # 改派: someone at the new holder must be able to take the case's next holder step.
    roles = roles_acting(case.kind, case.state, Actor.HOLDER)
    return roles or frozenset(
        r for a in actions(case.kind) if a.actor is Actor.HOLDER for r in a.roles
    )


def accused_ids(case: Case) -> frozenset[int]:
    """检举控告: the accused agency and everything under it (信访工作条例 Art 30 ¶3): no
    accusation, nor anything spawned from one, may be handed to them."""
    if not case.involves_accusation or case.accused_agency_id is None:
        return frozenset()
    return agency_below_ids(case.accused_agency_id)


@dataclass(frozen=True)
class Targets:
    """The agencies a step may name, and why any other one is refused.

    A target must be active, within reach (`reach`), of a kind the rule allows, staffed for
    the next step (`staff_roles`), not an agency the accusation rule excludes (`accused`) and,
    unless the rule allows it, not the holder. Checking one submitted agency reads only that
    agency (`lookup`, `problem`); the whole list (`rows`, `queryset`: a form's choices, the
    nearest target up the tree) is read only when asked for: a county's jurisdiction is a
    thousand agencies, and a step that names one need not read them all.
    """

    rule: TargetRule
    case: Case
    actor: User
    reach: frozenset[int]
    staff_roles: frozenset[str]
    accused: frozenset[int]

    def _excluded(self) -> set[int]:
        out = set(self.accused)
        if not self.rule.holder_ok or self.actor.agency_id == self.case.holder_agency_id:
            out.add(self.case.holder_agency_id)
        return out

    def _staffed(self) -> Exists:
        return Exists(
            User.objects.filter(
                agency_id=OuterRef("pk"), is_active=True, role__in=sorted(self.staff_roles)
            )
        )

    def queryset(self) -> QuerySet[Agency]:
        """The valid targets (active, within reach, of the right kind, staffed, allowed)."""
        qs = Agency.objects.filter(pk__in=self.reach, is_active=True).filter(self._staffed())
        if self.rule.kinds is not None:
            qs = qs.filter(kind__in=self.rule.kinds)
        return qs.exclude(pk__in=self._excluded()).order_by("level", "name")

    @cached_property
    def rows(self) -> dict[int, Agency]:
        """The valid targets, read once (one query; the EXISTS probes the users' agency
        index)."""
        return {a.pk: a for a in self.queryset()}

    @property
    def allowed(self) -> frozenset[int]:
        return frozenset(self.rows)

    def lookup(self, agency_id: int) -> Agency | None:
        """The agency with id `agency_id` (or None), read with whether it is staffed for the
        next step, for `problem`: one query, whatever the reach."""
        if "rows" in self.__dict__ and agency_id in self.rows:
            return self.rows[agency_id]
        return Agency.objects.filter(pk=agency_id).annotate(_target_staffed=self._staffed()).first()

    def problem(self, agency: Agency) -> str | None:
        """None if the step may name `agency`; otherwise the reason, for the user."""
        name = agency.name
        if not agency.is_active:
            return _("「%(name)s」已停用。") % {"name": name}
        if agency.pk in self.accused:
            return _("检举控告事项不得交由被检举控告机构及其下属机构办理（信访工作条例第三十条）。")
        if agency.pk in self._excluded():
            return _("「%(name)s」是本案现在的承办机构。") % {"name": name}
        if agency.pk not in self.reach:
            where = {
                "above": _("本案承办机构的上级机构"),
                "below": _("您督办范围内的机构"),
                "jurisdiction": _("本辖区内的机构"),
            }[self.rule.reach]
            return _("「%(name)s」不在可选范围内：须为%(where)s。") % {"name": name, "where": where}
        if self.rule.kinds is not None and agency.kind not in self.rule.kinds:
            return _("「%(name)s」不能接收：须为%(kinds)s。") % {
                "name": name,
                "kinds": self.rule.kinds_label,
            }
        staffed = getattr(agency, "_target_staffed", None)
        if staffed is None:
            if "rows" in self.__dict__:
                staffed = agency.pk in self.rows
            else:
                staffed = User.objects.filter(
                    agency_id=agency.pk, is_active=True, role__in=sorted(self.staff_roles)
                ).exists()
        if staffed:
            return None
        return _("「%(name)s」没有可以办理下一步的在岗人员（%(roles)s），移交后将无人办理。") % {
            "name": name,
            "roles": _role_names(self.staff_roles),
        }


def targets(step: str, case: Case, actor: User) -> Targets:
    """The agencies step `step` ("assign", "forward", "escalate", "court",
    "refer_to_mediation", "reassign") may hand `case` to when `actor` takes it."""
    rule = _rules()[step]
    return Targets(
        rule=rule,
        case=case,
        actor=actor,
        reach=frozenset(_reach_ids(rule, case, actor)),
        staff_roles=_staff_roles(rule, case),
        accused=accused_ids(case),
    )
