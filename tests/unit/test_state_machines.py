"""The two state machines as graphs, on unsaved instances: no database.

The expected tables are written out by hand from DOMAIN.md §6.1 and §6.2, as adapted in
`mediation.cases.models`: a dispute can also be withdrawn (撤回) from accepted, mediating,
extended and suspended; a rejected 司法确认 leaves either back to mediating or to
closed_failed (two named transitions); a forwarded petition is accepted by the receiver
(`accept_forwarded`) or objected to (`raise_objection`, Art 23 ¶3); a people's mediation
committee (or judicial office) accepts a dispute it holds itself (`accept_own`: a walk-in, or one
sent up to it by 上交), a condition on the holder's kind that the graph tests leave aside.

Targets are read from `get_all_state_transitions()` rather than by calling the methods, so
no row is ever saved. Database access is blocked here (no `django_db` mark): any query fails.
"""

from __future__ import annotations

import pytest
from django_fsm import can_proceed, has_transition_perm

from mediation.accounts.models import Role, User
from mediation.cases import workflow
from mediation.cases.models import (
    TERMINAL_STATES,
    Case,
    CaseKind,
    Dispute,
    DisputeState,
    Petition,
    PetitionState,
)
from mediation.cases.workflow import Actor, may_act


def ROLES_OF(kind: str, name: str) -> frozenset[str]:
    act = workflow.action(kind, name)
    assert act is not None, f"no workflow row for {kind}.{name}"
    return act.roles


# (source, transition) → target, by hand from DOMAIN.md §6.1.
DISPUTE_TABLE: dict[tuple[str, str], str] = {
    ("registered", "triage"): "triaged",
    ("registered", "accept_own"): "accepted",
    ("escalated", "accept_own"): "accepted",
    ("triaged", "assign"): "assigned",
    ("triaged", "transfer"): "transferred",
    ("assigned", "accept"): "accepted",
    ("assigned", "decline"): "triaged",
    ("accepted", "start_mediation"): "mediating",
    ("accepted", "refuse"): "closed_refused",
    ("accepted", "withdraw"): "withdrawn",
    ("mediating", "record_agreement"): "agreement_reached",
    ("mediating", "extend"): "extended",
    ("mediating", "suspend"): "suspended",
    ("mediating", "close_failed"): "closed_failed",
    ("mediating", "escalate"): "escalated",
    ("mediating", "withdraw"): "withdrawn",
    ("extended", "continue_mediation"): "mediating",
    ("extended", "withdraw"): "withdrawn",
    ("suspended", "resume"): "mediating",
    ("suspended", "withdraw"): "withdrawn",
    ("agreement_reached", "apply_confirmation"): "confirmation_pending",
    ("agreement_reached", "monitor_performance"): "performance_monitoring",
    ("confirmation_pending", "confirm"): "performance_monitoring",
    ("confirmation_pending", "reject_confirmation_remediate"): "mediating",
    ("confirmation_pending", "reject_confirmation_fail"): "closed_failed",
    ("performance_monitoring", "close_resolved"): "closed_resolved",
    ("performance_monitoring", "remediate"): "mediating",
    ("performance_monitoring", "transfer"): "transferred",
    ("escalated", "assign"): "assigned",
    ("closed_failed", "transfer"): "transferred",
}

# (source, transition) → target, by hand from DOMAIN.md §6.2.
PETITION_TABLE: dict[tuple[str, str], str] = {
    ("received", "register"): "registered",
    ("registered", "forward"): "forwarded",
    ("registered", "accept"): "accepted",
    ("registered", "not_accept"): "not_accepted",
    ("registered", "divert"): "diverted",
    ("forwarded", "accept_forwarded"): "accepted",
    ("forwarded", "raise_objection"): "registered",
    ("accepted", "start_handling"): "handling",
    ("handling", "extend"): "extended",
    ("handling", "issue_opinion"): "opinion_issued",
    ("handling", "record_mediation"): "mediated",
    ("extended", "issue_opinion"): "opinion_issued",
    ("extended", "record_mediation"): "mediated",
    ("mediated", "close"): "closed",
    ("opinion_issued", "request_review"): "review_requested",
    ("opinion_issued", "close"): "closed",
    ("review_requested", "start_review"): "under_review",
    ("under_review", "issue_review_opinion"): "review_opinion_issued",
    ("review_opinion_issued", "request_rereview"): "rereview_requested",
    ("review_opinion_issued", "close"): "closed",
    ("rereview_requested", "start_rereview"): "under_rereview",
    ("under_rereview", "issue_rereview_opinion"): "final",
}

# Every state named in DOMAIN.md §6.1 / §6.2, by hand.
DISPUTE_STATES = [
    "registered",
    "triaged",
    "assigned",
    "accepted",
    "mediating",
    "extended",
    "suspended",
    "agreement_reached",
    "confirmation_pending",
    "performance_monitoring",
    "escalated",
    "closed_resolved",
    "closed_failed",
    "closed_refused",
    "withdrawn",
    "transferred",
]
PETITION_STATES = [
    "received",
    "registered",
    "forwarded",
    "not_accepted",
    "diverted",
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
]
DISPUTE_TERMINAL = {
    "closed_resolved",
    "closed_failed",
    "closed_refused",
    "withdrawn",
    "transferred",
}
PETITION_TERMINAL = {"not_accepted", "diverted", "final", "closed"}

MACHINES = {
    "dispute": (Dispute, DISPUTE_STATES, DISPUTE_TABLE),
    "petition": (Petition, PETITION_STATES, PETITION_TABLE),
}


def _names(table: dict[tuple[str, str], str]) -> list[str]:
    return sorted({name for _, name in table})


def _pairs(kind: str, *, allowed: bool) -> list[tuple[str, str]]:
    _, states, table = MACHINES[kind]
    return [
        (state, name)
        for state in states
        for name in _names(table)
        if ((state, name) in table) is allowed
    ]


def _target(instance: Case, state: str, name: str) -> str:
    targets = [
        t.target
        for t in instance.get_all_state_transitions()
        if t.name == name and t.source == state
    ]
    assert len(targets) == 1, f"{name} from {state}: {targets}"
    return targets[0]


@pytest.mark.parametrize(("state", "name"), _pairs("dispute", allowed=True))
def test_dispute_transition_in_the_table_is_allowed_and_lands_on_its_target(state, name):
    dispute = Dispute(kind="dispute", state=state)

    allowed = can_proceed(getattr(dispute, name), check_conditions=False)

    assert allowed is True
    assert _target(dispute, state, name) == DISPUTE_TABLE[(state, name)]


@pytest.mark.parametrize(("state", "name"), _pairs("dispute", allowed=False))
def test_dispute_transition_outside_the_table_is_forbidden(state, name):
    dispute = Dispute(kind="dispute", state=state)

    allowed = can_proceed(getattr(dispute, name), check_conditions=False)

    assert allowed is False


@pytest.mark.parametrize(("state", "name"), _pairs("petition", allowed=True))
def test_petition_transition_in_the_table_is_allowed_and_lands_on_its_target(state, name):
    petition = Petition(kind="petition", state=state)

    allowed = can_proceed(getattr(petition, name))

    assert allowed is True
    assert _target(petition, state, name) == PETITION_TABLE[(state, name)]


@pytest.mark.parametrize(("state", "name"), _pairs("petition", allowed=False))
def test_petition_transition_outside_the_table_is_forbidden(state, name):
    petition = Petition(kind="petition", state=state)

    allowed = can_proceed(getattr(petition, name))

    assert allowed is False


@pytest.mark.parametrize("kind", sorted(MACHINES))
def test_machine_declares_exactly_the_transitions_of_the_table(kind):
    cls, _, table = MACHINES[kind]

    declared = {(t.source, t.name): t.target for t in cls(kind=kind).get_all_state_transitions()}

    assert declared == table


@pytest.mark.parametrize("kind", sorted(MACHINES))
def test_every_target_of_the_table_is_a_state_of_the_machine(kind):
    _, states, table = MACHINES[kind]

    stray = {target for target in table.values() if target not in states}

    assert stray == set()


def test_every_dispute_state_of_the_domain_note_is_a_choice():
    field_choices = {value for value, _ in Case._meta.get_field("state").choices}

    assert set(DisputeState.values) == set(DISPUTE_STATES)
    assert set(DISPUTE_STATES) <= field_choices


def test_every_petition_state_of_the_domain_note_is_a_choice():
    field_choices = {value for value, _ in Case._meta.get_field("state").choices}

    assert set(PetitionState.values) == set(PETITION_STATES)
    assert set(PETITION_STATES) <= field_choices


def test_terminal_states_are_those_of_the_domain_note():
    assert TERMINAL_STATES[CaseKind.DISPUTE] == DISPUTE_TERMINAL
    assert TERMINAL_STATES[CaseKind.PETITION] == PETITION_TERMINAL


@pytest.mark.parametrize(
    ("kind", "state"),
    [("dispute", s) for s in sorted(DISPUTE_TERMINAL)]
    + [("petition", s) for s in sorted(PETITION_TERMINAL)],
)
def test_terminal_state_has_no_way_out_except_failed_mediation_to_transfer(kind, state):
    cls, _, _ = MACHINES[kind]
    instance = cls(kind=kind, state=state)

    exits = {(t.name, t.target) for t in instance.get_all_state_transitions() if t.source == state}

    expected = (
        {("transfer", "transferred")} if (kind, state) == ("dispute", "closed_failed") else set()
    )
    assert exits == expected
    assert instance.is_terminal is True


@pytest.mark.parametrize(
    ("kind", "name"),
    [("dispute", n) for n in _names(DISPUTE_TABLE)]
    + [("petition", n) for n in _names(PETITION_TABLE)],
)
def test_every_transition_has_one_workflow_row_with_roles_an_actor_and_a_step(kind, name):
    act = workflow.action(kind, name)

    assert act is not None
    assert act.transition is True
    assert act.roles, f"no role may take {kind}.{name}"
    assert isinstance(act.actor, Actor)
    assert act.step.form_class is not None


@pytest.mark.parametrize("kind", sorted(MACHINES))
def test_workflow_names_no_transition_the_machine_lacks(kind):
    _, _, table = MACHINES[kind]

    assert set(workflow.transition_names(kind)) == set(_names(table))


def test_the_acting_side_of_each_hand_off():
    actors = {(a.kind, a.name): a.actor for a in workflow.actions()}

    assert actors[("dispute", "accept")] is Actor.RECEIVER
    assert actors[("dispute", "decline")] is Actor.RECEIVER
    assert actors[("petition", "accept_forwarded")] is Actor.RECEIVER
    assert actors[("petition", "raise_objection")] is Actor.RECEIVER
    assert actors[("dispute", "confirm")] is Actor.COURT
    assert actors[("dispute", "reject_confirmation_remediate")] is Actor.COURT
    assert actors[("dispute", "reject_confirmation_fail")] is Actor.COURT
    assert actors[("petition", "request_review")] is Actor.REVIEWER
    assert actors[("petition", "request_rereview")] is Actor.REVIEWER
    others = {k for k, v in actors.items() if v is Actor.HOLDER}
    assert ("dispute", "triage") in others
    assert ("petition", "refer_to_mediation") in others


# Roles (the workflow table) -----------------------------------------------------------------

AGENCY_ID = 7


def _user(role: str) -> User:
    return User(username=f"u-{role}", role=role, agency_id=AGENCY_ID)


def _held(cls: type[Case], state: str) -> Case:
    """An unsaved case held by the user's own agency, so only the role decides."""
    return cls(kind=cls.__name__.lower(), state=state, holder_agency_id=AGENCY_ID)


@pytest.mark.parametrize(
    ("cls", "state", "name", "role"),
    [
        (Dispute, "registered", "triage", Role.MEDIATOR),
        (Dispute, "registered", "triage", Role.PETITION_OFFICER),
        (Dispute, "triaged", "assign", Role.MEDIATOR),
        (Dispute, "mediating", "record_agreement", Role.PETITION_OFFICER),
        (Dispute, "mediating", "record_agreement", Role.POLICE_OFFICER),
        (Dispute, "mediating", "record_agreement", Role.COURT_CLERK),
        (Dispute, "accepted", "start_mediation", Role.POLICE_OFFICER),
        (Dispute, "performance_monitoring", "close_resolved", Role.COURT_CLERK),
        (Petition, "registered", "forward", Role.MEDIATOR),
        (Petition, "registered", "accept", Role.COURT_CLERK),
        (Petition, "handling", "issue_opinion", Role.MEDIATOR),
        (Petition, "handling", "extend", Role.COURT_CLERK),
        (Petition, "under_rereview", "issue_rereview_opinion", Role.COURT_CLERK),
    ],
)
def test_role_cannot_take_a_transition_outside_its_remit(cls, state, name, role):
    case = _held(cls, state)
    user = _user(role)

    assert role not in ROLES_OF(case.kind, name)
    assert may_act(user, case, name) is False
    assert has_transition_perm(getattr(case, name), user) is False


@pytest.mark.parametrize(
    ("cls", "state", "name", "role"),
    [
        (Dispute, "registered", "triage", Role.JUDICIAL_OFFICER),
        # 警调对接 / 委派调解: a police station or court routes a dispute it registered.
        (Dispute, "registered", "triage", Role.POLICE_OFFICER),
        (Dispute, "triaged", "assign", Role.COURT_CLERK),
        (Dispute, "mediating", "record_agreement", Role.MEDIATOR),
        (Petition, "received", "register", Role.POLICE_OFFICER),
        (Petition, "handling", "issue_opinion", Role.PETITION_OFFICER),
        # The 派出所 or 司法所 a petition was forwarded to handles it (Art 22).
        (Petition, "registered", "accept", Role.JUDICIAL_OFFICER),
        (Petition, "handling", "issue_opinion", Role.POLICE_OFFICER),
        (Petition, "handling", "record_mediation", Role.MEDIATOR),
    ],
)
def test_role_can_take_a_transition_within_its_remit(cls, state, name, role):
    case = _held(cls, state)
    user = _user(role)

    assert may_act(user, case, name) is True
    assert has_transition_perm(getattr(case, name), user) is True


def test_a_clerk_of_the_confirming_court_records_the_ruling_on_a_case_it_does_not_hold():
    case = Dispute(
        kind="dispute",
        state="confirmation_pending",
        holder_agency_id=AGENCY_ID + 1,
        confirmation_court_id=AGENCY_ID,
    )

    assert may_act(_user(Role.COURT_CLERK), case, "confirm") is True
    assert may_act(_user(Role.COURT_CLERK), case, "reject_confirmation_fail") is True


def test_the_mediator_no_longer_records_the_courts_ruling():
    case = Dispute(
        kind="dispute",
        state="confirmation_pending",
        holder_agency_id=AGENCY_ID,
        confirmation_court_id=AGENCY_ID + 1,
    )

    for name in ("confirm", "reject_confirmation_remediate", "reject_confirmation_fail"):
        assert may_act(_user(Role.MEDIATOR), case, name) is False
        assert may_act(_user(Role.JUDICIAL_OFFICER), case, name) is False


def test_a_clerk_of_another_court_cannot_record_the_ruling():
    case = Dispute(
        kind="dispute",
        state="confirmation_pending",
        holder_agency_id=AGENCY_ID,
        confirmation_court_id=AGENCY_ID + 7,
    )

    assert may_act(_user(Role.COURT_CLERK), case, "confirm") is False


def test_supervisors_may_coordinate_mediate_and_handle_petitions():
    # A supervisor's scope (every agency below theirs) needs the database, so only the
    # role table is checked here; tests/integration covers the scope.
    may = {(a.kind, a.name) for a in workflow.actions() if Role.SUPERVISOR in a.roles}

    assert {
        ("dispute", "triage"),
        ("dispute", "assign"),
        ("dispute", "record_agreement"),
        ("petition", "register"),
        ("petition", "issue_opinion"),
        ("petition", "issue_rereview_opinion"),
    } <= may


def test_a_user_of_another_agency_cannot_take_a_holder_transition():
    case = Dispute(kind="dispute", state="registered", holder_agency_id=AGENCY_ID + 1)
    user = _user(Role.JUDICIAL_OFFICER)

    assert may_act(user, case, "triage") is False


def test_an_inactive_user_cannot_take_any_transition():
    case = _held(Dispute, "registered")
    user = User(username="gone", role=Role.SUPERVISOR, agency_id=AGENCY_ID, is_active=False)

    assert may_act(user, case, "triage") is False


def test_administrators_take_no_case_transition():
    allowed = sorted((a.kind, a.name) for a in workflow.actions() if Role.ADMINISTRATOR in a.roles)

    assert allowed == []


def test_petitions_are_routed_and_decided_by_the_handling_agencys_staff():
    handlers = {Role.PETITION_OFFICER, Role.SUPERVISOR, Role.POLICE_OFFICER, Role.JUDICIAL_OFFICER}
    decisions = [
        "forward",
        "accept",
        "accept_forwarded",
        "raise_objection",
        "not_accept",
        "divert",
        "extend",
        "issue_opinion",
        "issue_review_opinion",
        "issue_rereview_opinion",
    ]

    roles = {name: set(ROLES_OF("petition", name)) for name in decisions}

    assert roles == dict.fromkeys(decisions, handlers)


def test_transition_methods_take_explicit_keyword_arguments_only():
    import inspect

    for kind, model in (("dispute", Dispute), ("petition", Petition)):
        for name in workflow.transition_names(kind):
            method = getattr(model, name)
            params = inspect.signature(inspect.unwrap(method)).parameters.values()
            kinds = {p.kind for p in params if p.name != "self"}
            assert inspect.Parameter.VAR_KEYWORD not in kinds, f"{kind}.{name} takes **kwargs"
            assert inspect.Parameter.POSITIONAL_OR_KEYWORD not in kinds, f"{kind}.{name}"
