"""Reads behind the web pages. Every list is scoped with `cases_visible_to` (or the referral
inbox's own agency filter) and fetched in a constant number of queries.

Indexes relied on:
- `clock_case_status_idx` (case, status): the per-case "next running duty clock" subquery;
- `case_holder_state_idx` (holder_agency, state) and the `assignee` foreign-key index: scope;
- `referral_inbox_idx` (to_agency, status): the referral inbox and its count in the header.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Case as When_
from django.db.models import F, IntegerField, Q, QuerySet, Value, When
from django.utils.translation import gettext as _

from mediation.accounts.models import User
from mediation.agencies.models import Agency
from mediation.cases.access import cases_visible_to
from mediation.cases.models import (
    STATE_LABELS,
    Case,
    CaseEvent,
    CaseKind,
    Category,
    Referral,
    ReferralStatus,
)
from mediation.deadlines import policy
from mediation.deadlines.models import Clock, ClockStatus
from mediation.escalation.models import Escalation, EscalationStatus
from mediation.parties.selectors import party_find_by_id_number, party_find_by_phone
from mediation.web import labels

LIVE = (ClockStatus.RUNNING, ClockStatus.PAUSED)

# Urgency buckets, most urgent first (DOMAIN.md §4.5: 红牌 overdue, 黄牌 due soon).
OVERDUE, TODAY, SOON, NORMAL, NONE = "overdue", "today", "soon", "normal", "none"
SOON_WORKING_DAYS = 3


@dataclass(frozen=True)
class Urgency:
    bucket: str
    due: dt.date | None = None
    working_days_left: int | None = None  # working days after today up to the due day
    days_overdue: int | None = None  # calendar days past the due day

    @property
    def css(self) -> str:
        return f"u-{self.bucket}"


def urgency_of(
    due_at: dt.datetime | None, *, now: dt.datetime, calendar: policy.Calendar
) -> Urgency:
    """Bucket a running duty clock's due instant. `due_at` is the end of the due day."""
    if due_at is None:
        return Urgency(NONE)
    today = now.astimezone(policy.SHANGHAI).date()
    due = (due_at.astimezone(policy.SHANGHAI) - dt.timedelta(microseconds=1)).date()
    if due_at <= now:
        return Urgency(OVERDUE, due=due, days_overdue=max((today - due).days, 1))
    left = policy.working_days_between(today, due, calendar=calendar)
    if due == today:
        return Urgency(TODAY, due=due, working_days_left=0)
    if left <= SOON_WORKING_DAYS:
        return Urgency(SOON, due=due, working_days_left=left)
    return Urgency(NORMAL, due=due, working_days_left=left)


def case_list_for(
    user: User,
    *,
    scope: str,
    kind: str = "",
    include_closed: bool = False,
    q: str = "",
) -> QuerySet[Case]:
    """My cases (assignee = me) or my agency's cases, most urgent first.

    Ordering by the earliest running duty clock's `due_at` (`Case.next_due_at`) puts overdue
    (红牌) first, then due today, then due soon (黄牌), then the rest, then cases without a
    running duty clock.
    """
    qs = cases_visible_to(user)
    if scope == "mine":
        qs = qs.filter(assignee=user)
    if not include_closed:
        qs = qs.filter(closed_at__isnull=True)
    if kind in CaseKind.values:
        qs = qs.filter(kind=kind)
    q = q.strip()
    if q:
        qs = qs.filter(Q(number__icontains=q) | Q(title__icontains=q))
    # `Case.next_due_at` is stored by the services; with `case_open_urgency_idx` a list of
    # open cases is an ordered index scan, however many cases the scope holds.
    return qs.select_related("holder_agency", "assignee", "category").order_by(
        F("next_due_at").asc(nulls_last=True), "-registered_at", "-pk"
    )


def live_clocks_by_case(case_ids: Iterable[int]) -> dict[int, list[Clock]]:
    """Running and paused clocks of these cases, in one query."""
    out: dict[int, list[Clock]] = defaultdict(list)
    for clock in Clock.objects.filter(case_id__in=list(case_ids), status__in=LIVE).order_by(
        "due_at", "pk"
    ):
        out[clock.case_id].append(clock)
    return out


@dataclass
class CaseRow:
    case: Case
    urgency: Urgency
    clocks: list[Clock] = field(default_factory=list)


def decorate_cases(
    cases: Sequence[Case], *, now: dt.datetime, calendar: policy.Calendar
) -> list[CaseRow]:
    clocks = live_clocks_by_case(c.pk for c in cases)
    return [
        CaseRow(
            case=c,
            urgency=urgency_of(getattr(c, "next_due_at", None), now=now, calendar=calendar),
            clocks=clocks.get(c.pk, []),
        )
        for c in cases
    ]


# Escalation queue -----------------------------------------------------------------------------


def escalation_queue_for(*, supervisor: User, include_acknowledged: bool) -> QuerySet[Escalation]:
    """The same escalations as the engine's `escalation_queue_for`, in the same order, found
    with two indexed look-ups instead of one OR across the escalation, case and agency tables
    (which PostgreSQL can only answer by joining every live escalation to its case).

    - addressed to the supervisor's agency: `escalation_queue_idx` (agency, status);
    - level 1 of cases held by agencies they head: the few headed agencies, their cases by
      `case_holder_state_idx`, those cases' escalations by `escalation_case_idx`.
    """
    statuses = [EscalationStatus.OPEN]
    if include_acknowledged:
        statuses.append(EscalationStatus.ACKNOWLEDGED)
    headed = Agency.objects.filter(head=supervisor).values("pk")
    mine = Q(
        pk__in=Escalation.objects.filter(
            level=1, status__in=statuses, case__holder_agency__in=headed
        ).values("pk")
    )
    if supervisor.agency_id is not None:
        mine |= Q(
            pk__in=Escalation.objects.filter(
                agency_id=supervisor.agency_id, status__in=statuses
            ).values("pk")
        )
    return (
        Escalation.objects.filter(mine)
        .select_related("case", "clock", "agency")
        .annotate(
            open_first=When_(
                When(status=EscalationStatus.OPEN, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("open_first", "ack_due_at", "id")
    )


# Referral inbox -------------------------------------------------------------------------------


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


def ack_clocks_by_case(case_ids: Iterable[int]) -> dict[int, list[Clock]]:
    out: dict[int, list[Clock]] = defaultdict(list)
    for clock in Clock.objects.filter(
        case_id__in=list(case_ids), status__in=LIVE, rule_code__in=labels.ACK_RULES
    ).order_by("due_at", "pk"):
        out[clock.case_id].append(clock)
    return out


# Duplicate parties (登记 warning) ----------------------------------------------------------------


@dataclass
class DuplicateHit:
    """Open cases that already involve a party typed into the registration form."""

    index: int  # position in the formset
    name: str
    matched_by: list[str]
    visible: list[Case]
    hidden_count: int


def open_cases_for_party(*, user: User, id_number: str, phone: str) -> tuple[list, int, list]:
    """(visible open cases, number of open cases out of the user's scope, matched-by labels)."""
    matched_by: list[str] = []
    cases = Case.objects.none()
    if id_number:
        ids = party_find_by_id_number(id_number=id_number).values("pk")
        found = Case.objects.open().filter(case_parties__party__in=ids)
        if found.exists():
            matched_by.append(_("身份证号"))
            cases = cases | found
    if phone:
        ids = party_find_by_phone(phone=phone).values("pk")
        found = Case.objects.open().filter(case_parties__party__in=ids)
        if found.exists():
            matched_by.append(_("联系电话"))
            cases = cases | found
    if not matched_by:
        return [], 0, []
    all_ids = set(cases.values_list("pk", flat=True))
    visible = list(cases_visible_to(user).filter(pk__in=all_ids).order_by("-registered_at")[:10])
    visible_total = cases_visible_to(user).filter(pk__in=all_ids).count()
    return visible, len(all_ids) - visible_total, matched_by


# Timeline -------------------------------------------------------------------------------------


@dataclass
class TimelineEntry:
    event: CaseEvent
    action: str
    from_label: str
    to_label: str
    details: list[tuple[str, str]]
    clock_changes: list[tuple[str, str]]


def _state_label(kind: str, state: str) -> str:
    if not state:
        return ""
    return str(STATE_LABELS.get(kind, {}).get(state, state))


def _transition_labels(case: Case) -> dict[str, str]:
    out = {name: str(label) for name, label in labels.EVENT_LABELS.items()}
    for t in case.as_proxy().get_all_state_transitions():
        out[t.name] = str(t.custom.get("label", t.name))
    return out


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
    if key == "parties" and isinstance(value, list):
        return _("%(n)d 人") % {"n": len(value)}
    if key == "reason" and transition == "close":
        return str(labels.CLOSE_REASONS.get(value, value))
    choices = labels.CHOICE_LABELS.get(key)
    if choices is not None:
        return str(choices.get(value, value))
    return str(value)


def case_timeline(case: Case) -> list[TimelineEntry]:
    """Every event of the case, oldest first, with the ids in its data resolved to names.

    Four queries whatever the number of events: events (with actor and agency), then the
    agencies, users and categories named in the data.
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
    names = _transition_labels(case)
    out = []
    for e in events:
        data = e.data or {}
        details = []
        for key, label in labels.DATA_LABELS.items():
            if key in data and data[key] not in (None, "", []):
                details.append(
                    (
                        str(label),
                        _format_value(
                            key,
                            data[key],
                            transition=e.transition,
                            agencies=agencies,
                            users=users,
                            categories=categories,
                            case_numbers=case_numbers,
                        ),
                    )
                )
        clock_changes = []
        for change, codes in (data.get("clocks") or {}).items():
            for code in codes:
                clock_changes.append(
                    (str(labels.CLOCK_CHANGE_LABELS.get(change, change)), labels.rule_label(code))
                )
        out.append(
            TimelineEntry(
                event=e,
                action=names.get(e.transition, e.transition),
                from_label=_state_label(case.kind, e.from_state),
                to_label=_state_label(case.kind, e.to_state),
                details=details,
                clock_changes=clock_changes,
            )
        )
    return out


def clocks_for_case(case: Case) -> tuple[list[Clock], list[Clock]]:
    """(live clocks, stopped clocks newest first) of a case, in one query."""
    live, stopped = [], []
    for clock in Clock.objects.filter(case=case).order_by("-started_at", "-pk"):
        (live if clock.status in LIVE else stopped).append(clock)
    live.sort(key=lambda c: (c.due_at, c.pk))
    return live, stopped


def clock_on_time(clock: Clock) -> bool | None:
    """For a stopped clock: stopped by the end of its due day (None while it runs)."""
    if clock.stopped_at is None:
        return None
    return clock.stopped_at <= clock.due_at
