"""Bulk fixtures for sweep load tests and the `sweep_bench` command. Not used in production.

`overdue_clocks_bulk` writes cases and running duty clocks directly with bulk_create (a few
statements for thousands of rows), bypassing the case services: only for measuring sweeps.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.db.models import Max

from mediation.agencies.models import Agency
from mediation.cases.models import Case, CaseKind, Channel
from mediation.core.clock import end_of_day, local_date
from mediation.deadlines.models import Clock, ClockStatus


def overdue_clocks_bulk(
    *,
    holder: Agency,
    count: int,
    due: dt.date,
    now: dt.datetime,
    assignee_id: int | None = None,
    rule_code: str = "dispute.triage",
) -> list[int]:
    """`count` registered disputes held by `holder`, each with a running duty clock due on
    `due`. Returns the clock ids."""
    channel = Channel.objects.get_or_create(code="visit", defaults={"name": "来访"})[0]
    tag = uuid.uuid4().hex[:8]
    today = local_date(now)
    base = (
        Case.objects.filter(
            registering_agency=holder, year=today.year, kind=CaseKind.DISPUTE
        ).aggregate(top=Max("sequence"))["top"]
        or 0
    ) + 1
    cases = Case.objects.bulk_create(
        [
            Case(
                kind=CaseKind.DISPUTE,
                number=f"(bench-{tag}){i:06d}",
                registering_agency=holder,
                year=today.year,
                sequence=base + i,
                holder_agency=holder,
                assignee_id=assignee_id,
                state="registered",
                state_entered_at=now,
                title=f"批量测试纠纷{i}",
                channel=channel,
                received_on=today,
                registered_at=now,
            )
            for i in range(count)
        ],
        batch_size=2000,
    )
    clocks = Clock.objects.bulk_create(
        [
            Clock(
                case=case,
                rule_code=rule_code,
                kind="duty",
                entered_state="registered",
                start_date=due - dt.timedelta(days=1),
                nominal_due=due,
                due=due,
                due_at=end_of_day(due),
                status=ClockStatus.RUNNING,
                started_at=now,
            )
            for case in cases
        ],
        batch_size=2000,
    )
    return [c.pk for c in clocks]
