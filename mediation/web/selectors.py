"""Presentation helpers of the web pages: the urgency buckets (红牌/黄牌) and list rows.

The reads themselves (visibility, lists, timeline, clocks, referral inbox, the escalation queue)
are the domain selectors' (`mediation.cases.selectors`, `mediation.escalation.selectors`), which
the API and the admin use as well.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from mediation.cases.models import Case
from mediation.cases.selectors import live_clocks_by_case
from mediation.deadlines import policy
from mediation.deadlines.models import Clock

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
