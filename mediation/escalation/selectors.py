"""Read side of supervision: queues and a case's escalations."""

from __future__ import annotations

from django.db.models import Case as When_
from django.db.models import IntegerField, Q, QuerySet, Value, When

from mediation.accounts.models import User
from mediation.escalation.models import Escalation, EscalationStatus


def escalation_queue_for(
    *, supervisor: User, include_acknowledged: bool = True
) -> QuerySet[Escalation]:
    """The supervisor's queue: live escalations addressed to their agency, plus level-1
    escalations of agencies they head. Open ones first, most urgent acknowledgement first."""
    statuses = [EscalationStatus.OPEN]
    if include_acknowledged:
        statuses.append(EscalationStatus.ACKNOWLEDGED)
    mine = Q(level=1, case__holder_agency__head=supervisor)
    if supervisor.agency_id is not None:
        mine |= Q(agency_id=supervisor.agency_id)
    return (
        Escalation.objects.filter(mine, status__in=statuses)
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


def escalation_list_for_case(*, case_id: int) -> QuerySet[Escalation]:
    return (
        Escalation.objects.filter(case_id=case_id)
        .select_related("clock", "agency", "acknowledged_by")
        .order_by("clock_id", "level")
    )


def escalation_open_count_for(*, supervisor: User) -> int:
    return escalation_queue_for(supervisor=supervisor, include_acknowledged=False).count()
