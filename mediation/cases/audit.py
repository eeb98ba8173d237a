"""The audit trail's one writer."""

from __future__ import annotations

import datetime as dt
from typing import Any

from mediation.accounts.models import User
from mediation.cases.models import Case, CaseEvent, EventKind


def record_event(
    *,
    case: Case,
    actor: User | None,
    transition: str,
    from_state: str,
    to_state: str,
    now: dt.datetime,
    note: str = "",
    data: dict[str, Any] | None = None,
) -> CaseEvent:
    """Append the event for the case's current version (unique per case and version).

    `transition` must be an `EventKind` (a ValueError otherwise: events are not free text)."""
    kind = EventKind(transition)
    return CaseEvent.objects.create(
        case=case,
        version=case.version,
        actor=actor,
        actor_agency_id=getattr(actor, "agency_id", None),
        at=now,
        transition=kind.value,
        from_state=from_state,
        to_state=to_state,
        note=note,
        data=data or {},
    )
