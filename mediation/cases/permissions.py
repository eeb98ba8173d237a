"""Who may take which transition: one table, used by the models' `permission=` hooks, the
services, the admin, the web pages and the API alike.

A user may act when (1) their role is allowed for the transition and (2) the case is in
their scope for it: held by their agency, or, for the receiving side of a referral, referred
to their agency; supervisors also act on cases held by agencies below theirs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mediation.accounts.models import Role

if TYPE_CHECKING:
    from mediation.accounts.models import User
    from mediation.cases.models import Case

INTAKE = frozenset(
    {
        Role.MEDIATOR,
        Role.POLICE_OFFICER,
        Role.COURT_CLERK,
        Role.JUDICIAL_OFFICER,
        Role.PETITION_OFFICER,
        Role.SUPERVISOR,
    }
)
COORDINATORS = frozenset({Role.SUPERVISOR, Role.JUDICIAL_OFFICER})
MEDIATORS = frozenset({Role.MEDIATOR, Role.JUDICIAL_OFFICER, Role.SUPERVISOR})
COURT = frozenset({Role.COURT_CLERK})
PETITION = frozenset({Role.PETITION_OFFICER, Role.SUPERVISOR})

# The court's 司法确认 ruling is recorded either by the holder's mediators or by a clerk of the
# court named when the parties applied (民诉法 Art 205), although the court does not hold the case.
COURT_TRANSITIONS = frozenset(
    {
        ("dispute", "confirm"),
        ("dispute", "reject_confirmation_remediate"),
        ("dispute", "reject_confirmation_fail"),
    }
)

# Transitions performed by the agency a case was referred to, not by its current holder.
RECEIVER_TRANSITIONS = frozenset(
    {
        ("dispute", "accept"),
        ("dispute", "decline"),
        ("petition", "accept_forwarded"),
        ("petition", "raise_objection"),
    }
)

ROLES: dict[tuple[str, str], frozenset[str]] = {
    # 矛盾纠纷 (DOMAIN.md §6.1)
    ("dispute", "triage"): COORDINATORS,
    ("dispute", "assign"): COORDINATORS,
    ("dispute", "transfer"): COORDINATORS | MEDIATORS,
    ("dispute", "accept"): MEDIATORS,
    ("dispute", "decline"): MEDIATORS,
    ("dispute", "start_mediation"): MEDIATORS,
    ("dispute", "refuse"): MEDIATORS,
    ("dispute", "withdraw"): MEDIATORS,
    ("dispute", "extend"): MEDIATORS,
    ("dispute", "continue_mediation"): MEDIATORS,
    ("dispute", "suspend"): MEDIATORS,
    ("dispute", "resume"): MEDIATORS,
    ("dispute", "record_agreement"): MEDIATORS,
    ("dispute", "close_failed"): MEDIATORS,
    ("dispute", "escalate"): MEDIATORS | COORDINATORS,
    ("dispute", "apply_confirmation"): MEDIATORS,
    ("dispute", "monitor_performance"): MEDIATORS,
    ("dispute", "confirm"): MEDIATORS | COURT,
    ("dispute", "reject_confirmation_remediate"): MEDIATORS | COURT,
    ("dispute", "reject_confirmation_fail"): MEDIATORS | COURT,
    ("dispute", "close_resolved"): MEDIATORS,
    ("dispute", "remediate"): MEDIATORS,
    # 信访 (DOMAIN.md §6.2)
    ("petition", "register"): INTAKE,
    ("petition", "forward"): PETITION,
    ("petition", "accept"): PETITION,
    ("petition", "accept_forwarded"): PETITION,
    ("petition", "raise_objection"): PETITION,
    ("petition", "not_accept"): PETITION,
    ("petition", "divert"): PETITION,
    ("petition", "start_handling"): PETITION,
    ("petition", "extend"): PETITION,
    ("petition", "issue_opinion"): PETITION,
    ("petition", "record_mediation"): PETITION | MEDIATORS,
    ("petition", "close"): PETITION,
    ("petition", "request_review"): PETITION,
    ("petition", "start_review"): PETITION,
    ("petition", "issue_review_opinion"): PETITION,
    ("petition", "request_rereview"): PETITION,
    ("petition", "start_rereview"): PETITION,
    ("petition", "issue_rereview_opinion"): PETITION,
}


def scope_agency_ids(user: User) -> set[int]:
    """The agencies whose cases the user may see and act on: their own, and for supervisors
    and administrators every agency below theirs."""
    if not user.is_authenticated or not user.is_active or user.agency_id is None:
        return set()
    if user.role in (Role.SUPERVISOR, Role.ADMINISTRATOR):
        return user.agency.descendant_ids()
    return {user.agency_id}


def in_scope(user: User, case: Case, *, receiver: bool = False) -> bool:
    """Whether the case is within the user's agency scope for acting on it."""
    if receiver:
        if not user.is_authenticated or not user.is_active or user.agency_id is None:
            return False
        return case.pending_referral_target_id() == user.agency_id
    return case.holder_agency_id in scope_agency_ids(user)


def may_transition(user: User, case: Case, transition: str) -> bool:
    """The permission check behind every transition (django-fsm-2 `permission=`)."""
    key = (case.kind, transition)
    roles = ROLES.get(key)
    if roles is None or getattr(user, "role", None) not in roles:
        return False
    if key in COURT_TRANSITIONS and user.role == Role.COURT_CLERK:
        return (
            user.is_authenticated
            and user.is_active
            and user.agency_id is not None
            and user.agency_id == case.confirmation_court_id
        )
    return in_scope(user, case, receiver=key in RECEIVER_TRANSITIONS)


def permission(transition: str):
    """Build the `permission=` callable for a transition."""

    def check(instance: Case, user: User) -> bool:
        return may_transition(user, instance, transition)

    check.__name__ = f"may_{transition}"
    return check
