"""Read side of supervision: the escalation queue, and the one rule for who may see and act on
an escalation. The web pages, the API and the services all ask here.

Who may act on an escalation (`escalation_may_act`):
- level 1 (the 督办单 to the agency that owes the duty, `Escalation.agency`: the holder, or
  the receiver of an unaccepted referral): that agency's head; when it has no head, the case's
  assignee (whom the sweep notified instead);
- any level: supervisors (and administrators) of the escalation's agency or of an agency
  above it, or of the holder agency or an agency above it.
Who may see one (`escalation_visible`): whoever may act on it, and whoever may open its case.
Everyone else gets 404.

The queue (`escalation_queue_for`) is what a user is asked to act on: escalations addressed to
their own agency when they are a supervisor, and level-1 escalations of agencies they head.
It is found with indexed look-ups (`escalation_queue_idx` (agency, status)), never with an OR
across the escalation, case and agency tables, which PostgreSQL can only answer by joining
every live escalation to its case.
"""

from __future__ import annotations

from django.db.models import Case as When_
from django.db.models import IntegerField, Q, QuerySet, Value, When
from django.utils.translation import gettext as _

from mediation.accounts.models import User
from mediation.agencies.models import Agency
from mediation.agencies.selectors import SUPERVISING_ROLES, user_scope
from mediation.cases.selectors import cases_visible_to
from mediation.core.errors import NotFound
from mediation.escalation.models import Escalation, EscalationStatus
from mediation.public.models import Rating, RatingValue

LIVE = (EscalationStatus.OPEN, EscalationStatus.ACKNOWLEDGED)


def escalation_may_act(user: User, escalation: Escalation) -> bool:
    """The one rule for acting on an escalation (module docstring). Reads the escalation's
    case and agencies (select them in the query that fetched it)."""
    scope = user_scope(user)
    if scope.empty:
        return False
    case = escalation.case
    if escalation.level == 1 and escalation.agency_id is not None:
        agency = escalation.agency
        if agency.head_id == user.pk:
            return True
        if (
            agency.head_id is None
            and escalation.agency_id == case.holder_agency_id
            and case.assignee_id == user.pk
        ):
            return True
    if user.role not in SUPERVISING_ROLES:
        return False
    return escalation.agency_id in scope.below or case.holder_agency_id in scope.below


def escalation_visible(user: User, escalation: Escalation) -> bool:
    return (
        escalation_may_act(user, escalation)
        or cases_visible_to(user).filter(pk=escalation.case_id).exists()
    )


def _with_relations(qs: QuerySet[Escalation]) -> QuerySet[Escalation]:
    return qs.select_related(
        "case",
        "case__holder_agency",
        "case__assignee",
        "case__category",
        "clock",
        "agency",
        "issuer",
        "acknowledged_by",
    )


def escalation_get_for(user: User, escalation_id: int) -> Escalation:
    """The escalation if the user may see it; NotFound otherwise (existence does not leak)."""
    escalation = _with_relations(Escalation.objects.filter(pk=escalation_id)).first()
    if escalation is None or not escalation_visible(user, escalation):
        raise NotFound(_("督办记录不存在。"))
    return escalation


def escalation_queue_available(user: User) -> bool:
    """Whether the user has a queue at all: supervisors, administrators, agency heads."""
    if user_scope(user).empty:
        return False
    return user.role in SUPERVISING_ROLES or Agency.objects.filter(head=user).exists()


def escalation_queue_for(*, user: User, include_acknowledged: bool = True) -> QuerySet[Escalation]:
    """The escalations the user is asked to act on: addressed to their agency (supervisors),
    and level 1 of the agencies they head. Open ones first, most urgent acknowledgement first.

    Two indexed look-ups (`escalation_queue_idx` (agency, status)): the agencies the user
    heads (few), and their own agency.
    """
    statuses = [EscalationStatus.OPEN]
    if include_acknowledged:
        statuses.append(EscalationStatus.ACKNOWLEDGED)
    scope = user_scope(user)
    if scope.empty:
        return Escalation.objects.none()
    headed = list(Agency.objects.filter(head=user).values_list("pk", flat=True))
    mine = Q(
        pk__in=Escalation.objects.filter(level=1, agency_id__in=headed, status__in=statuses).values(
            "pk"
        )
    )
    if user.role in SUPERVISING_ROLES:
        mine |= Q(
            pk__in=Escalation.objects.filter(agency_id=scope.agency_id, status__in=statuses).values(
                "pk"
            )
        )
    return _with_relations(
        Escalation.objects.filter(mine)
        .annotate(
            open_first=When_(
                When(status=EscalationStatus.OPEN, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("open_first", "ack_due_at", "id")
    )


def escalation_open_count_for(*, user: User) -> int:
    return escalation_queue_for(user=user, include_acknowledged=False).count()


def escalation_list_for_case(*, case_id: int) -> QuerySet[Escalation]:
    return _with_relations(Escalation.objects.filter(case_id=case_id)).order_by("clock_id", "level")


# 群众评价: a 不满意 rating is an item of the supervisor's queue -----------------------------------


def rating_queue_for(*, user: User) -> QuerySet[Rating]:
    """不满意 ratings (`mediation.public`) not yet looked at, of cases handled by agencies in the
    supervisor's scope: shown in their queue beside the escalations, oldest first."""
    scope = user_scope(user)
    if scope.empty or user.role not in SUPERVISING_ROLES:
        return Rating.objects.none()
    return (
        Rating.objects.filter(
            value=RatingValue.UNSATISFIED, reviewed_at__isnull=True, agency_id__in=scope.below
        )
        # 检举控告 (Art 30 ¶3): a party's comment may name the petitioner; never to the
        # accused agency's side (`cases.selectors.identity_hidden_from`, as a filter).
        .exclude(case__involves_accusation=True, case__accused_agency_id__in=scope.above)
        .select_related("case", "agency")
        .order_by("changed_at", "pk")
    )
