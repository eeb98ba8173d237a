"""Case reads: who sees a case, what they see, and the lists, timeline and clocks behind the
pages, the API, the admin and the exports. The one visibility rule lives here.

A user sees a case when their agency
- holds it, or (supervisors, administrators) holds it through an agency below theirs;
- is named by a pending referral of it (to accept or return it), or accepted one;
- held it before, registered it or referred it on (custody history: the referring police
  station, court or 信访部门 follows the progress and outcome of what it handed over, 反馈);
- is the court the parties applied to for 司法确认 (the agreement and the parties);
- reviews the holder's decision (复查/复核) while the petitioner may ask for that review.

These cover every actor of the workflow table (`mediation.cases.workflow`): whoever may take a
step can open the case. Everyone else gets 404 (existence does not leak). Superusers (the admin
site's operators) see everything. Lists must filter through `cases_visible_to`: DRF and the admin
apply object permissions to single objects only (RELIABILITY.md §5.1).

检举控告 (信访工作条例 Art 30 ¶3, Art 46(5)): the petitioner's identity is hidden from the
accused agency and every agency under it, on every path (`identity_hidden_from`, `redact`).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import (
    BooleanField,
    Exists,
    Expression,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.utils.translation import gettext as _

from mediation.accounts.models import User
from mediation.agencies.models import Agency
from mediation.agencies.selectors import user_scope
from mediation.cases import labels, workflow
from mediation.cases.models import (
    Agreement,
    AgreementForm,
    Case,
    CaseEvent,
    CaseKind,
    CaseParty,
    CasePartyRole,
    Category,
    Custody,
    Referral,
    ReferralStatus,
)
from mediation.core import clock as core_clock
from mediation.core.errors import NotFound
from mediation.deadlines import policy
from mediation.deadlines.models import Clock, ClockStatus
from mediation.parties import crypto, idnumbers
from mediation.parties.models import Party
from mediation.parties.selectors import party_find_by_id_number, party_find_by_phone

LIVE_CLOCK = (ClockStatus.RUNNING, ClockStatus.PAUSED)
LIVE_REFERRAL = (ReferralStatus.PENDING, ReferralStatus.ACCEPTED)
HIDDEN = "（保密）"


@functools.cache
def review_window_states() -> frozenset[str]:
    """Petition states from which the reviewing organ records a 复查/复核 request."""
    return workflow.states_left_by(workflow.Actor.REVIEWER).get(CaseKind.PETITION, frozenset())


# Visibility -----------------------------------------------------------------------------------


class _AnyOfSubquery(Func):
    """`<column> = ANY(ARRAY(<subquery>))` (PostgreSQL)."""

    arg_joiner = " = ANY(ARRAY"
    template = "%(expressions)s)"
    output_field = BooleanField()

    def __init__(self, column: F, subquery: QuerySet) -> None:
        super().__init__(column, Subquery(subquery))


def uses_postgresql_indexes() -> bool:
    """Whether the queries here take PostgreSQL's own forms (`= ANY(ARRAY(…))`, the bigram
    index); elsewhere (the SQLite demo) the portable forms, with the same answers."""
    return connection.vendor == "postgresql"


def _case_ids_in(subquery: QuerySet, outer: str = "case_id") -> Q:
    """`pk IN (subquery of case ids)`, written so each side is an index scan."""
    if uses_postgresql_indexes():
        # `id = ANY(ARRAY(SELECT case_id …))` is an index condition (the array is computed
        # once, as an InitPlan), so PostgreSQL ORs index scans. An EXISTS is only a filter,
        # and an OR with it reads the whole case table (0.5 s at a million cases).
        return Q(_AnyOfSubquery(F("pk"), subquery.order_by().values(outer)))
    return Q(Exists(subquery.filter(**{outer: OuterRef("pk")})))


class _VisibleTo(Expression):
    """The visibility rule (module docstring) as one SQL condition on the case row.

    Written as SQL rather than composed from Q objects because it is in every case read:
    building and compiling the composed form cost ~1.3 ms of Python per query, most of a
    transition's lock. The case's own columns are resolved as the ORM's columns, so the
    condition keeps working when the query is relabelled (used as a subquery, joined); the
    referral and custody tables are read by subqueries of their own.

    On PostgreSQL the id tests take the form `id = ANY(ARRAY(SELECT case_id …))`: index
    conditions (the array is computed once, as an InitPlan), so PostgreSQL ORs index scans;
    an EXISTS is only a filter, and an OR with it reads the whole case table (0.5 s at a
    million cases). Elsewhere (the SQLite demo) EXISTS, with the same answers.
    """

    conditional = True
    _COLUMNS = ("pk", "holder_agency_id", "confirmation_court_id", "kind", "state")

    def __init__(
        self,
        *,
        below: Iterable[int],
        own: int,
        reviewed: Iterable[int],
        holder_index: bool = True,
    ) -> None:
        super().__init__(output_field=BooleanField())
        self.below = sorted(below)
        self.own = own
        self.reviewed = sorted(reviewed)
        self.holder_index = holder_index
        self.columns: list[Any] | None = None

    def get_source_expressions(self) -> list[Any]:
        return list(self.columns) if self.columns is not None else []

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        if self.columns is not None:
            self.columns = list(exprs)

    def resolve_expression(self, query: Any = None, *args: Any, **kwargs: Any) -> _VisibleTo:
        clone = self.copy()
        # Already resolved on the case query when it is now used inside another (a subquery).
        columns = [F(name) for name in self._COLUMNS] if self.columns is None else self.columns
        clone.columns = [c.resolve_expression(query, *args, **kwargs) for c in columns]
        return clone

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        assert self.columns is not None, "resolve_expression first"
        pk, holder, court, kind, state = (compiler.compile(c)[0] for c in self.columns)
        params: list[Any] = []

        def values(items: Sequence[Any]) -> str:
            params.extend(items)
            return "(" + ", ".join(["%s"] * len(items)) + ")"

        def ids_in(select: str, items: Sequence[Any]) -> str:
            if connection.vendor == "postgresql":
                sql = f"{pk} = ANY(ARRAY(SELECT vis.case_id {select}))"
            else:
                sql = f"EXISTS(SELECT 1 {select} AND vis.case_id = {pk})"
            params.extend(items)
            return sql

        live = [str(s) for s in LIVE_REFERRAL]
        tested_holder = holder if self.holder_index else f"({holder} + 0)"
        parts = [f"{tested_holder} IN {values(self.below)}", f"{court} = %s"]
        params.append(self.own)
        parts.append(
            ids_in(
                f"FROM {Referral._meta.db_table} vis WHERE vis.to_agency_id = %s"
                f" AND vis.status IN ({', '.join(['%s'] * len(live))})",
                [self.own, *live],
            )
        )
        parts.append(
            ids_in(f"FROM {Custody._meta.db_table} vis WHERE vis.agency_id = %s", [self.own])
        )
        if self.reviewed:
            params.append(str(CaseKind.PETITION))
            review = f"{kind} = %s AND {holder} IN {values(self.reviewed)}"
            review += f" AND {state} IN {values(sorted(review_window_states()))}"
            parts.append(f"({review})")
        return "(" + " OR ".join(parts) + ")", params


def cases_visible_to(
    user: User, queryset: QuerySet[Case] | None = None, *, holder_index: bool = True
) -> QuerySet[Case]:
    """The cases the user may open (module docstring).

    `holder_index=False` writes the holder test so that PostgreSQL cannot answer it from the
    holder index (`holder_agency_id + 0`): for a search by a supervisor whose scope covers
    most cases, intersecting a bitmap of every case they oversee with the few search hits
    costs more than checking the hits one by one (measured: 100 ms of 130 at 1 M cases)."""
    qs = Case.objects.all() if queryset is None else queryset
    if user.is_authenticated and user.is_active and user.is_superuser:
        return qs
    scope = user_scope(user)
    if scope.empty:
        return qs.none()
    assert scope.agency_id is not None
    return qs.filter(
        _VisibleTo(
            below=scope.below,
            own=scope.agency_id,
            reviewed=scope.reviewed,
            holder_index=holder_index,
        )
    )


@dataclass(frozen=True)
class Access:
    """What a user may see of one case.

    full: the holder's side, the receiver of a pending referral, the reviewing organ;
    court: the court applied to (the agreement and the parties, not the file's history);
    feedback: a past holder or referrer (progress and outcome, read-only).
    """

    full: bool = False
    court: bool = False
    feedback: bool = False

    @property
    def visible(self) -> bool:
        return self.full or self.court or self.feedback

    @property
    def timeline(self) -> bool:
        return self.full or self.feedback

    @property
    def may_reveal(self) -> bool:
        """Full ID numbers (logged) for those who need them: the file's side and the court."""
        return self.full or self.court


NO_ACCESS = Access()


def case_access(user: User, case: Case) -> Access:
    if user.is_authenticated and user.is_active and user.is_superuser:
        return Access(full=True)
    scope = user_scope(user)
    if scope.empty:
        return NO_ACCESS
    own = scope.agency_id
    full = (
        case.holder_agency_id in scope.below
        or case.pending_referral_target_id() == own
        or (
            case.kind == CaseKind.PETITION
            and case.state in review_window_states()
            and case.holder_agency_id in scope.reviewed
        )
    )
    court = case.confirmation_court_id == own
    feedback = not full and (
        Custody.objects.filter(case_id=case.pk, agency_id=own).exists()
        or Referral.objects.filter(
            case_id=case.pk, to_agency_id=own, status=ReferralStatus.ACCEPTED
        ).exists()
    )
    return Access(full=full, court=court, feedback=feedback)


def case_get_visible(user: User, case_id: int) -> Case:
    """The case as its kind's proxy, or NotFound if it does not exist or is out of sight."""
    case = cases_visible_to(user).filter(pk=case_id).select_related("holder_agency").first()
    if case is None:
        raise NotFound(_("案件不存在或您无权查看。"))
    return case.as_proxy()


# 检举控告 ----------------------------------------------------------------------------------


def identity_hidden_from(user: User, case: Case) -> bool:
    """检举控告: the petitioner's identity is hidden from the accused agency and those below it.

    Supervisors above the accused agency still see it; the accused agency's own staff see only
    "（保密）" wherever the case (or a dispute spawned from it) appears.
    """
    if not case.involves_accusation or case.accused_agency_id is None:
        return False
    if user.is_authenticated and user.is_superuser:
        return False
    scope = user_scope(user)
    if scope.empty:
        return True
    return case.accused_agency_id in scope.above


def hidden_case_ids(user: User, cases: Iterable[Case]) -> set[int]:
    return {c.pk for c in cases if identity_hidden_from(user, c)}


def protected_texts(case_ids: Iterable[int]) -> dict[int, list[str]]:
    """{case id: the strings that identify its protected parties}: every party but the
    respondent (names, phones), for `redact`."""
    out: dict[int, list[str]] = defaultdict(list)
    ids = list(case_ids)
    if not ids:
        return out
    rows = (
        CaseParty.objects.filter(case_id__in=ids)
        .exclude(role=CasePartyRole.RESPONDENT)
        .values_list("case_id", "party__name", "party__phone")
    )
    for case_id, name, phone in rows:
        for text in (name, phone):
            text = (text or "").strip()
            if len(text) >= 2 and text not in out[case_id]:
                out[case_id].append(text)
    for texts in out.values():
        texts.sort(key=len, reverse=True)  # longest first: 王五一 before 王五
    return out


def redact(text: str, secrets: Sequence[str]) -> str:
    """`text` with every protected string replaced by （保密）."""
    if not text or not secrets:
        return text
    pattern = "|".join(re.escape(s) for s in secrets)
    return re.sub(pattern, HIDDEN, text)


# The case page ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartyView:
    """A party as this viewer may see it (masked; "（保密）" when the identity is hidden)."""

    party_id: int | None
    role: str
    role_label: str
    name: str
    kind: str
    phone: str
    address: str
    id_number_masked: str
    has_id_number: bool | None
    is_minor: bool | None
    identity_hidden: bool

    @property
    def masked_phone(self) -> str:
        """138****1234 (DOMAIN.md §5); the full number only through the logged reveal."""
        return self.phone if self.identity_hidden else idnumbers.mask_phone(self.phone)


_ROLE_ORDER = {
    CasePartyRole.APPLICANT: 0,
    CasePartyRole.PETITIONER: 1,
    CasePartyRole.REPRESENTATIVE: 2,
    CasePartyRole.RESPONDENT: 3,
}


def case_parties(case: Case, *, hidden: bool) -> list[PartyView]:
    links = sorted(
        CaseParty.objects.filter(case=case).select_related("party"),
        key=lambda cp: (_ROLE_ORDER.get(cp.role, 9), cp.pk),
    )
    out = []
    for cp in links:
        p = cp.party
        conceal = hidden and cp.role != CasePartyRole.RESPONDENT
        out.append(
            PartyView(
                party_id=None if conceal else p.pk,
                role=cp.role,
                role_label=str(cp.get_role_display()),
                name=HIDDEN if conceal else p.name,
                kind=p.kind,
                phone=HIDDEN if conceal else p.phone,
                address=HIDDEN if conceal else p.address,
                id_number_masked=HIDDEN if conceal else p.id_number_masked,
                has_id_number=None if conceal else p.has_id_number,
                is_minor=None if conceal else p.is_minor,
                identity_hidden=conceal,
            )
        )
    return out


@dataclass
class CaseDetail:
    """Everything the case page (and the API's detail) shows one viewer."""

    case: Case
    access: Access
    identity_hidden: bool
    parties: list[PartyView]
    agreements: list[Agreement]
    actions: list[workflow.Action]
    next_steps: list[workflow.NextStep]
    title: str
    description: str
    outcome_note: str
    secrets: list[str] = field(default_factory=list)

    @property
    def may_act(self) -> bool:
        return bool(self.actions)


def case_actions_for(user: User, case: Case) -> list[workflow.Action]:
    """The steps `user` may take on the case now: transitions of its machine (state,
    conditions and the workflow table) and the service actions that keep the state."""
    case = case.as_proxy()
    out = []
    for t in case.get_available_user_state_transitions(user):
        act = workflow.action(case.kind, t.name)
        if act is not None:
            out.append(act)
    refer = workflow.action(case.kind, "refer_to_mediation")
    if refer is not None and petition_may_refer(case) and workflow.may_act(user, case, refer.name):
        out.append(refer)
    for act in workflow.service_actions(case.kind):
        if (
            act.states is not None
            and case.state in act.states
            and service_action_offered(case, act.name)
            and workflow.may_act(user, case, act.name)
        ):
            out.append(act)
    return out


def service_action_offered(case: Case, name: str) -> bool:
    """Whether a case-file action has something to act on (besides state and permission)."""
    from mediation.casefiles.models import Attachment

    if name == "withdraw_attachment":
        return Attachment.objects.filter(case_id=case.pk, withdrawn_at__isnull=True).exists()
    if name == "register_oral_agreement":
        return Agreement.objects.filter(
            case_id=case.pk, form=AgreementForm.ORAL, oral_record__isnull=True
        ).exists()
    return True


# 访调对接: from a petition in handling, once (信访工作条例 Art 33).
REFERABLE_STATES = frozenset({"handling", "extended"})


def petition_may_refer(case: Case) -> bool:
    return (
        case.kind == CaseKind.PETITION
        and case.state in REFERABLE_STATES
        and not Case.objects.filter(spawned_from_id=case.pk).exists()
    )


def case_detail_for(user: User, case: Case) -> CaseDetail:
    """The case as `user` may see it. `case` must be visible to them (`case_get_visible`)."""
    case = case.as_proxy()
    access = case_access(user, case)
    hidden = identity_hidden_from(user, case)
    secrets = protected_texts([case.pk]).get(case.pk, []) if hidden else []
    agreements = list(
        Agreement.objects.filter(case=case).select_related("recorded_by").order_by("recorded_at")
    )
    return CaseDetail(
        case=case,
        access=access,
        identity_hidden=hidden,
        parties=case_parties(case, hidden=hidden),
        agreements=agreements,
        actions=case_actions_for(user, case),
        next_steps=workflow.next_steps(case),
        title=redact(case.title, secrets),
        description=redact(case.description, secrets),
        outcome_note=redact(case.outcome_note, secrets),
        secrets=secrets,
    )


def printable_agreements(detail: CaseDetail) -> list[Agreement]:
    if detail.case.kind != CaseKind.DISPUTE:
        return []
    return [a for a in detail.agreements if a.form != AgreementForm.ORAL]


# Timeline ---------------------------------------------------------------------------------------


@dataclass
class TimelineEntry:
    event: CaseEvent
    action: str
    from_label: str
    to_label: str
    note: str
    details: list[tuple[str, str]]
    clock_changes: list[tuple[str, str]]


def _format_value(
    key: str,
    value: Any,
    *,
    transition: str,
    agencies: dict[int, str],
    users: dict[int, str],
    categories: dict[int, str],
    case_numbers: dict[int, str],
) -> str:
    if isinstance(value, bool):
        return _("是") if value else _("否")
    if key in labels.AGENCY_KEYS:
        return agencies.get(value, str(value))
    if key in labels.USER_KEYS:
        return users.get(value, str(value))
    if key in labels.CASE_KEYS:
        return case_numbers.get(value, str(value))
    if key == "category":
        return categories.get(value, str(value))
    if key == "rule":
        return labels.rule_label(str(value))
    if key == "session_at":
        try:
            at = dt.datetime.fromisoformat(str(value)).astimezone(policy.SHANGHAI)
        except ValueError:
            return str(value)
        return at.strftime("%Y-%m-%d %H:%M")
    if key == "parties" and isinstance(value, list):
        return _("%(n)d 人") % {"n": len(value)}
    if key == "reason" and transition == "close":
        return str(labels.CLOSE_REASONS.get(value, value))
    choices = labels.CHOICE_LABELS.get(key)
    if choices is not None:
        return str(choices.get(value, value))
    return str(value)


def case_timeline(case: Case, *, secrets: Sequence[str] = ()) -> list[TimelineEntry]:
    """Every event of the case, oldest first, with the ids in its data resolved to names and
    protected strings redacted (`secrets`, for a viewer from whom the identity is hidden).

    Five queries whatever the number of events: events (with actor and agency), then the
    agencies, users, categories and cases named in the data.
    """
    events = list(
        CaseEvent.objects.filter(case=case)
        .select_related("actor", "actor_agency")
        .order_by("version")
    )
    agency_ids: set[int] = set()
    user_ids: set[int] = set()
    category_ids: set[int] = set()
    case_ids: set[int] = set()
    for e in events:
        for key, value in (e.data or {}).items():
            if not isinstance(value, int) or isinstance(value, bool):
                continue
            if key in labels.AGENCY_KEYS:
                agency_ids.add(value)
            elif key in labels.USER_KEYS:
                user_ids.add(value)
            elif key == "category":
                category_ids.add(value)
            elif key in labels.CASE_KEYS:
                case_ids.add(value)
    agencies = dict(Agency.objects.filter(pk__in=agency_ids).values_list("pk", "name"))
    users = {u.pk: str(u) for u in User.objects.filter(pk__in=user_ids)} if user_ids else {}
    categories = (
        dict(Category.objects.filter(pk__in=category_ids).values_list("pk", "name"))
        if category_ids
        else {}
    )
    case_numbers = (
        dict(Case.objects.filter(pk__in=case_ids).values_list("pk", "number")) if case_ids else {}
    )
    out = []
    for e in events:
        data = e.data or {}
        details = []
        for key, label in labels.DATA_LABELS.items():
            if key == "parties" and secrets:
                continue  # party ids would let the accused match the petitioner across cases
            if key in data and data[key] not in (None, "", []):
                text = _format_value(
                    key,
                    data[key],
                    transition=e.transition,
                    agencies=agencies,
                    users=users,
                    categories=categories,
                    case_numbers=case_numbers,
                )
                details.append((str(label), redact(text, secrets)))
        clock_changes = []
        for change, codes in (data.get("clocks") or {}).items():
            for code in codes:
                clock_changes.append(
                    (str(labels.CLOCK_CHANGE_LABELS.get(change, change)), labels.rule_label(code))
                )
        out.append(
            TimelineEntry(
                event=e,
                action=labels.event_label(case.kind, e.transition, e.from_state),
                from_label=labels.state_label(case.kind, e.from_state),
                to_label=labels.state_label(case.kind, e.to_state),
                note=redact(e.note, secrets),
                details=details,
                clock_changes=clock_changes,
            )
        )
    return out


def event_data_for(
    event: CaseEvent, *, hidden: bool, secrets: Sequence[str] | None = None
) -> dict[str, Any]:
    """An event's raw data as a viewer may see it (API, admin): without the party ids when the
    identity is hidden (they would let the accused match the petitioner across cases), and
    with every text value redacted (a file name or a session's mediators may name the
    petitioner). `secrets` default to the event's case's protected strings."""
    data = dict(event.data or {})
    if hidden:
        data.pop("parties", None)
        if secrets is None:
            secrets = protected_texts([event.case_id]).get(event.case_id, [])
        for key, value in data.items():
            if isinstance(value, str):
                data[key] = redact(value, secrets)
    return data


# Clocks -----------------------------------------------------------------------------------------


def clocks_for_case(case: Case) -> tuple[list[Clock], list[Clock]]:
    """(live clocks, stopped clocks newest first) of a case, in one query."""
    live, stopped = [], []
    for clock in Clock.objects.filter(case=case).order_by("-started_at", "-pk"):
        (live if clock.status in LIVE_CLOCK else stopped).append(clock)
    live.sort(key=lambda c: (c.due_at, c.pk))
    return live, stopped


def clock_on_time(clock: Clock) -> bool | None:
    """For a stopped clock: stopped by the end of its due day (None while it runs)."""
    if clock.stopped_at is None:
        return None
    return clock.stopped_at <= clock.due_at


def live_clocks_by_case(case_ids: Iterable[int]) -> dict[int, list[Clock]]:
    """Running and paused clocks of these cases, in one query."""
    out: dict[int, list[Clock]] = defaultdict(list)
    for clock in Clock.objects.filter(case_id__in=list(case_ids), status__in=LIVE_CLOCK).order_by(
        "due_at", "pk"
    ):
        out[clock.case_id].append(clock)
    return out


def ack_clocks_by_case(case_ids: Iterable[int]) -> dict[int, list[Clock]]:
    """The acknowledgement clocks (受理/签收 of a referral) of these cases, in one query."""
    out: dict[int, list[Clock]] = defaultdict(list)
    for clock in Clock.objects.filter(
        case_id__in=list(case_ids), status__in=LIVE_CLOCK, rule_code__in=labels.ACK_RULES
    ).order_by("due_at", "pk"):
        out[clock.case_id].append(clock)
    return out


# Lists ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseFilters:
    """The filters of the case lists (web and API alike). Empty values filter nothing."""

    kind: str = ""
    state: str = ""
    category_id: int | None = None
    channel_id: int | None = None
    holder_agency_id: int | None = None
    assignee_id: int | None = None
    registered_from: dt.date | None = None
    registered_to: dt.date | None = None
    overdue: bool | None = None  # True: a running duty clock is overdue; False: none is
    due_by: dt.date | None = None  # a running duty clock, not overdue, due on or before


def _duty_clocks() -> QuerySet[Clock]:
    return Clock.objects.filter(
        case_id=OuterRef("pk"), status=ClockStatus.RUNNING, kind=policy.ClockKind.DUTY.value
    )


def case_filter(qs: QuerySet[Case], f: CaseFilters, *, now: dt.datetime) -> QuerySet[Case]:
    """Apply `f` to a queryset of cases (already limited to what the user may see)."""
    if f.kind:
        qs = qs.filter(kind=f.kind)
    if f.state:
        qs = qs.filter(state=f.state)
    if f.category_id is not None:
        qs = qs.filter(category_id=f.category_id)
    if f.channel_id is not None:
        qs = qs.filter(channel_id=f.channel_id)
    if f.holder_agency_id is not None:
        qs = qs.filter(holder_agency_id=f.holder_agency_id)
    if f.assignee_id is not None:
        qs = qs.filter(assignee_id=f.assignee_id)
    if f.registered_from is not None:
        qs = qs.filter(registered_at__gte=day_start(f.registered_from))
    if f.registered_to is not None:
        qs = qs.filter(registered_at__lt=day_start(f.registered_to + dt.timedelta(days=1)))
    if f.overdue is not None:
        overdue = Exists(_duty_clocks().filter(due_at__lt=now))
        qs = qs.filter(overdue) if f.overdue else qs.exclude(overdue)
    if f.due_by is not None:
        qs = qs.filter(Exists(_duty_clocks().filter(due_at__gte=now, due__lte=f.due_by)))
    return qs


def working_day_horizon(today: dt.date, n: int, calendar: policy.Calendar) -> dt.date:
    """The n-th working day after `today` (today itself for n = 0)."""
    day, counted = today, 0
    while counted < n:
        day += dt.timedelta(days=1)
        if calendar.day(day).is_workday:
            counted += 1
    return day


def day_start(day: dt.date) -> dt.datetime:
    """00:00 Asia/Shanghai of `day` (registration dates are local dates)."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=policy.SHANGHAI)


# The search box ---------------------------------------------------------------------------------

# Case numbers read (2026)将官池人调字第0001号; the sequence alone may be typed as 12, 0012,
# 第12号 or 12号.
_RE_SEQUENCE = re.compile(r"第?0*([0-9]{1,7})号?")
# Words of the title and summary shorter than this are not looked up by index (one character
# has no bigram); they still match, by a scan.
MIN_INDEXED_WORD = 2


@dataclass(frozen=True)
class SearchTerms:
    """What one search box entry can mean. `kind` names the look-up used (for the benchmark
    and the page's hint): number, sequence, id_number, phone or text."""

    text: str
    kind: str
    sequence: int | None = None
    id_hash: str = ""
    phone_hash: str = ""


def parse_search(q: str) -> SearchTerms | None:
    """Classify a search box entry; None when it is empty.

    An 18- (or 15-) digit string with a valid check code is an ID number, looked up through
    its keyed hash (never by decrypting); a mainland mobile or landline number is a phone,
    looked up through its keyed hash; digits alone (or 第N号) are a case's sequence number;
    anything else is a case number, a party's name (exact or prefix) or words of the title and
    summary."""
    text = unicodedata.normalize("NFKC", q or "").strip()
    if not text:
        return None
    compact = re.sub(r"[\s\-]", "", text)
    try:
        number = idnumbers.validate_id_number(compact)
    except idnumbers.InvalidIdNumber:
        number = ""
    if number:
        return SearchTerms(
            text=text,
            kind="id_number",
            id_hash=crypto.lookup_hash(idnumbers.upgrade_to_18(number)),
        )
    if compact.lstrip("+").isdigit() and len(compact) >= 10:
        try:
            phone = idnumbers.normalise_phone(compact)
        except ValueError:
            phone = ""
        if phone:
            return SearchTerms(text=text, kind="phone", phone_hash=crypto.phone_hash(phone))
    m = _RE_SEQUENCE.fullmatch(compact)
    if m:
        return SearchTerms(text=text, kind="sequence", sequence=int(m.group(1)))
    if "字第" in text:
        return SearchTerms(text=text, kind="number")
    return SearchTerms(text=text, kind="text")


def _bigrams(text: str) -> list[str]:
    """The distinct character bigrams of `text`, lower-cased, whitespace removed: what the
    `mediation_grams()` function of migration cases/0010 indexes (of the number, title and
    summary; the two must agree)."""
    s = re.sub(r"\s+", "", text).lower()
    return sorted({s[i : i + 2] for i in range(len(s) - 1)})


class _GramsContain(Func):
    """`cases_case.search_grams @> ARRAY[...]` (PostgreSQL; column and GIN index of
    migration cases/0010, not a model field). `indexed=False` writes it so the GIN index
    cannot answer it (a per-row test instead: for words that match thousands of cases, a scan
    in the list's own order that stops after one page is cheaper than fetching every hit)."""

    template = "%(table)s.search_grams @> %(expressions)s::text[]"
    output_field = BooleanField()

    def __init__(self, grams: list[str], *, indexed: bool = True) -> None:
        super().__init__(Value(grams))
        if not indexed:
            self.template = "(%(table)s.search_grams || '{}'::text[]) @> %(expressions)s::text[]"

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        table = compiler.quote_name_unless_alias(compiler.query.get_initial_alias())
        return super().as_sql(compiler, connection, table=table, **extra)


def _party_case_ids(parties: QuerySet, protected: Q | None) -> QuerySet[CaseParty]:
    """Case ids of these parties. In a case whose petitioner is hidden from the viewer
    (检举控告 against their agency) only the respondent counts: the accuser is never found."""
    links = CaseParty.objects.filter(party_id__in=parties.values("pk"))
    if protected is not None:
        links = links.filter(
            Q(role=CasePartyRole.RESPONDENT)
            | ~Q(case_id__in=Case.objects.filter(protected).values("pk"))
        )
    return links


# A word matching at least this many cases is tested row by row (`_GramsContain(indexed=False)`).
MANY_MATCHES = 2000


def _matches_many(grams: list[str]) -> bool:
    """Whether the bigrams occur in at least MANY_MATCHES cases (one LIMITed index probe; the
    planner's estimate for a conjunction of bigrams is far too low, they are correlated)."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM (SELECT 1 FROM cases_case WHERE search_grams @> %s::text[]"
            " LIMIT %s) s",
            [grams, MANY_MATCHES],
        )
        return cur.fetchone()[0] >= MANY_MATCHES


def case_search_q(user: User, terms: SearchTerms) -> Q:
    """The condition "matches the search box" for `user`.

    PostgreSQL answers each kind by an index: the case number's unique index, an index on the
    sequence, the parties' ID-number and phone digests (btree), the parties' names (btree with
    the pattern operator class: exact or prefix), and part of the number, the title and the
    summary by a GIN index of their character bigrams (`search_grams`: Chinese text has no
    spaces, so bigrams stand for its words), each bigram hit rechecked by ILIKE so the answer
    is exactly "contains". SQLite gives the same answers by scanning.

    检举控告: where the viewer may not know the petitioner, a match on a party other than the
    respondent, or on the summary (which may name the petitioner), does not count; the
    title never names the petitioner (registration refuses it) and still counts.
    """
    scope = user_scope(user)
    superuser = user.is_authenticated and user.is_superuser
    protected = (
        None
        if superuser or scope.empty
        else Q(involves_accusation=True, accused_agency_id__in=scope.above)
    )
    if terms.kind == "id_number":
        parties = Party.objects.filter(id_number_hash=terms.id_hash)
        return _case_ids_in(_party_case_ids(parties, protected))
    if terms.kind == "phone":
        parties = Party.objects.filter(phone_hash=terms.phone_hash)
        return _case_ids_in(_party_case_ids(parties, protected))
    if terms.kind == "sequence":
        return Q(sequence=terms.sequence)
    text = terms.text
    if terms.kind == "number" and Case.objects.filter(number=text).exists():
        return Q(number=text)  # a whole number: its unique index, nothing else to look at
    grams = _bigrams(text)
    indexed = uses_postgresql_indexes() and bool(grams)
    gin = indexed and not _matches_many(grams)
    number = Q(number=text) | (
        Q(_GramsContain(grams, indexed=gin)) & Q(number__icontains=text)
        if indexed
        else Q(number__icontains=text)
    )
    if terms.kind == "number":
        return number
    names = Party.objects.filter(name__startswith=text)
    match = number | _case_ids_in(_party_case_ids(names, protected))
    words = Q(title__icontains=text)
    summary = Q(description__icontains=text)
    if protected is not None:
        summary &= ~protected
    words |= summary
    if indexed:
        words = Q(_GramsContain(grams, indexed=gin)) & words
    return match | words


def case_list_for(
    user: User,
    *,
    scope: str,
    kind: str = "",
    include_closed: bool = False,
    q: str = "",
    filters: CaseFilters | None = None,
    now: dt.datetime | None = None,
) -> QuerySet[Case]:
    """My cases (assignee = me) or every case I may see, most urgent first; with `q`, the
    cases that match the search box (`parse_search`, `case_search_q`), closed ones included,
    newest first.

    Ordering by the earliest running duty clock's `due_at` (`Case.next_due_at`, stored by the
    services; with `case_open_urgency_idx` a list of open cases is an ordered index scan)
    puts overdue (红牌) first, then due today, due soon (黄牌), the rest, then cases without a
    running duty clock.
    """
    terms = parse_search(q)
    wide = terms is not None and len(user_scope(user).below) > WIDE_SCOPE
    qs = cases_visible_to(user, holder_index=not wide)
    if scope == "mine":
        qs = qs.filter(assignee=user)
    if not include_closed and terms is None:
        qs = qs.filter(closed_at__isnull=True)
    if kind in CaseKind.values:
        qs = qs.filter(kind=kind)
    if filters is not None:
        qs = case_filter(qs, filters, now=now or core_clock.now())
    qs = qs.select_related("holder_agency", "assignee", "category")
    if terms is not None:
        # Search results, closed cases included, newest first (`case_registered_at_idx`).
        return qs.filter(case_search_q(user, terms)).order_by("-registered_at", "-pk")
    return qs.order_by(F("next_due_at").asc(nulls_last=True), "-registered_at", "-pk")


# A user overseeing more agencies than this searches with the holder test as a filter
# (`cases_visible_to(holder_index=False)`).
WIDE_SCOPE = 50


def referral_inbox_for(user: User) -> QuerySet[Referral]:
    """Cases referred to the user's agency and waiting for it to accept or return them."""
    if user.agency_id is None:
        return Referral.objects.none()
    return (
        Referral.objects.filter(to_agency_id=user.agency_id, status=ReferralStatus.PENDING)
        .select_related("case", "case__holder_agency", "case__category", "from_agency", "sent_by")
        .order_by("sent_at", "pk")
    )


def referral_pending_count(user: User) -> int:
    if user.agency_id is None:
        return 0
    return Referral.objects.filter(
        to_agency_id=user.agency_id, status=ReferralStatus.PENDING
    ).count()


# Duplicate parties (the 登记 warning) ------------------------------------------------------------


@dataclass
class DuplicateHit:
    """Open cases that already involve a party typed into the registration form."""

    index: int  # position in the formset
    name: str
    matched_by: list[str]
    visible: list[Case]
    hidden_count: int


def open_cases_for_party(*, user: User, id_number: str, phone: str) -> tuple[list, int, list]:
    """(open cases the user may see, number of other open cases, matched-by labels).

    Never an oracle: a case whose petitioner is hidden from the user (检举控告 against their
    agency or one above it) is neither listed nor counted, so typing a suspect's phone number
    tells the accused nothing.
    """
    matched_by: list[str] = []
    scope = user_scope(user)
    protected = Q(involves_accusation=True, accused_agency_id__in=scope.above)
    cases = Case.objects.none()
    for label, ids in (
        (_("身份证号"), party_find_by_id_number(id_number=id_number) if id_number else None),
        (_("联系电话"), party_find_by_phone(phone=phone) if phone else None),
    ):
        if ids is None:
            continue
        found = (
            Case.objects.open().filter(case_parties__party__in=ids.values("pk")).exclude(protected)
        )
        if found.exists():
            matched_by.append(label)
            cases = cases | found
    if not matched_by:
        return [], 0, []
    all_ids = set(cases.values_list("pk", flat=True))
    mine = cases_visible_to(user).filter(pk__in=all_ids)
    visible = list(mine.order_by("-registered_at")[:10])
    return visible, len(all_ids) - mine.count(), matched_by
