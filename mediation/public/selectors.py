"""The public side's reads: which party a look-up identifies, the public timeline, whether a
case may be rated, the ratings supervisors look at, and satisfaction by agency and month.

What the public timeline shows is decided by the workflow table (`workflow.event_is_public`,
`workflow.public_state`, `workflow.PUBLIC_CLOCKS`); what it hides follows the case selectors'
rules: every free text is redacted of the other parties' names and phones (`redact`; for a
检举控告 matter that includes the petitioner, and the respondent never gets in at all), no
internal note, no staff name (agencies only), no supervision (督办) detail.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncMonth

from mediation.agencies.models import Agency
from mediation.cases import labels, workflow
from mediation.cases.models import (
    Case,
    CaseEvent,
    CaseKind,
    CaseParty,
    CasePartyRole,
    Opinion,
    OpinionStage,
)
from mediation.cases.selectors import redact
from mediation.core.clock import SHANGHAI, local_date
from mediation.deadlines.models import Clock, ClockStatus
from mediation.public.models import Rating, RatingValue


def public_party_for(*, case_id: int, last4: str = "", party_id: int | None = None) -> int | None:
    """The party of the case who may track it: the one whose phone ends in `last4` (or whose
    id is `party_id`). The respondent of a 检举控告 matter never may (Art 30 ¶3). One query,
    whether or not the case exists (the look-up's timing does not depend on it)."""
    rows = CaseParty.objects.filter(case_id=case_id).values_list(
        "party_id", "role", "party__phone", "case__involves_accusation"
    )
    for pid, role, phone, accusation in sorted(rows, key=lambda r: (r[1] == "respondent", r[0])):
        if accusation and role == CasePartyRole.RESPONDENT:
            continue
        if party_id is not None:
            if pid == party_id:
                return pid
        elif last4 and phone and phone[-4:] == last4:
            return pid
    return None


def rating_open_for(case: Case, *, now: dt.datetime) -> bool:
    """A party may rate once the case is closed (结案) or its 处理意见 was served."""
    if case.closed_at is not None:
        return True
    return Opinion.objects.filter(
        case_id=case.pk, stage=OpinionStage.HANDLING, served_on__lte=local_date(now)
    ).exists()


@dataclass(frozen=True)
class PublicEntry:
    day: dt.date
    label: str
    details: list[tuple[str, str]]


@dataclass(frozen=True)
class PublicDue:
    label: str
    due: dt.date
    paused: bool


@dataclass
class PublicView:
    case_id: int
    party_id: int
    number: str
    kind_label: str
    category: str
    registered_on: dt.date
    agency: str
    state: str
    closed: bool
    entries: list[PublicEntry]
    dues: list[PublicDue]
    rating: Rating | None
    may_rate: bool
    may_change: bool
    change_until: dt.datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# Details of a public event, by event kind: which data keys, shown how.
_REASON_KINDS = frozenset(
    {
        "not_accept",
        "refuse",
        "withdraw",
        "close_failed",
        "suspend",
        "extend",
        "reject_confirmation_fail",
        "reject_confirmation_remediate",
        "remediate",
        "escalate",
    }
)


def _secrets(case_id: int, party_id: int) -> list[str]:
    """The other parties' names and phones (longest first), to redact from free text."""
    out: set[str] = set()
    rows = CaseParty.objects.filter(case_id=case_id).exclude(party_id=party_id)
    for name, phone in rows.values_list("party__name", "party__phone"):
        for text in (name, phone):
            text = (text or "").strip()
            if len(text) >= 2:
                out.add(text)
    return sorted(out, key=len, reverse=True)


def _d(value: Any) -> str:
    if isinstance(value, dt.date):
        return f"{value.year}年{value.month}月{value.day}日"
    try:
        day = dt.date.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return f"{day.year}年{day.month}月{day.day}日"


def _details(
    kind: str, e: CaseEvent, agencies: dict[int, str], secrets: list[str], clocks: list[Clock]
) -> list[tuple[str, str]]:
    data = e.data or {}
    out: list[tuple[str, str]] = []
    name = e.transition
    if name == "register":
        out.append(("登记机构", agencies.get(e.case.registering_agency_id, "")))
    if name in ("assign", "forward", "escalate", "request_review", "request_rereview"):
        target = data.get("to_agency")
        if isinstance(target, int) and target in agencies:
            out.append(("接收机构", agencies[target]))
    if name == "transfer" and data.get("target"):
        out.append(("转出去向", str(labels.CHOICE_LABELS["target"].get(data["target"], ""))))
    if name in ("accept", "accept_own", "accept_forwarded") or (
        kind == CaseKind.PETITION and name == "accept"
    ):
        if e.actor_agency_id in agencies:
            out.append(("受理机构", agencies[e.actor_agency_id]))
        if data.get("accepted_on"):
            out.append(("受理日期", _d(data["accepted_on"])))
    if name in _REASON_KINDS and data.get("reason"):
        label = "延期理由" if name == "extend" else "理由"
        out.append((label, redact(str(data["reason"]), secrets)))
    if name == "extend":
        if data.get("extra_days"):
            out.append(("延长天数", f"{data['extra_days']} 日"))
        extended = [c for c in clocks if c.extra_days and c.started_at <= e.at]
        if extended:
            out.append(("延长后的期限", _d(max(extended, key=lambda c: c.started_at).due)))
    if name in ("issue_opinion", "issue_review_opinion", "issue_rereview_opinion"):
        if data.get("result"):
            out.append(("结论", str(labels.CHOICE_LABELS["result"].get(data["result"], ""))))
        if data.get("served_on"):
            out.append(("送达日期", _d(data["served_on"])))
            served = dt.date.fromisoformat(str(data["served_on"]))
            window = {
                "issue_opinion": "如不服，可自收到之日起30日内请求上一级机关复查",
                "issue_review_opinion": "如不服，可自收到之日起30日内请求上一级机关复核",
            }.get(name)
            if window:
                out.append(("救济途径", f"{window}（至{_d(served + dt.timedelta(days=30))}）"))
    if name in ("record_agreement", "record_mediation") and data.get("form"):
        out.append(("调解结果", str(labels.CHOICE_LABELS["form"].get(data["form"], ""))))
        if data.get("effective_on"):
            out.append(("生效日期", _d(data["effective_on"])))
    if name == "confirm":
        out.append(("司法确认", "人民法院裁定调解协议有效"))
    return [(k, v) for k, v in out if v]


def public_view(*, case_id: int, party_id: int, now: dt.datetime) -> PublicView:
    """What the party sees of their case (module docstring)."""
    case = Case.objects.select_related("holder_agency", "category").get(pk=case_id)
    kind = str(case.kind)
    secrets = _secrets(case_id, party_id)
    events = [
        e
        for e in CaseEvent.objects.filter(case_id=case_id).order_by("version")
        if workflow.event_is_public(kind, e.transition)
    ]
    for e in events:
        e.case = case
    agency_ids = {case.registering_agency_id, case.holder_agency_id}
    for e in events:
        if e.actor_agency_id:
            agency_ids.add(e.actor_agency_id)
        target = (e.data or {}).get("to_agency")
        if isinstance(target, int) and not isinstance(target, bool):
            agency_ids.add(target)
    agencies = dict(Agency.objects.filter(pk__in=agency_ids).values_list("pk", "name"))
    clocks = list(Clock.objects.filter(case_id=case_id, rule_code__in=workflow.PUBLIC_CLOCKS))
    entries = []
    for e in events:
        label = labels.event_label(kind, e.transition, e.from_state)
        if e.transition == "register" and e.from_state == "":
            label = "收到申请，已登记" if kind == CaseKind.DISPUTE else "收到信访事项"
        entries.append(
            PublicEntry(
                day=e.at.astimezone(SHANGHAI).date(),
                label=label,
                details=_details(kind, e, agencies, secrets, clocks),
            )
        )
    dues = [
        PublicDue(
            label=labels.rule_label(c.rule_code), due=c.due, paused=c.status == ClockStatus.PAUSED
        )
        for c in sorted(clocks, key=lambda c: c.due)
        if c.status in (ClockStatus.RUNNING, ClockStatus.PAUSED)
    ]
    rating = Rating.objects.filter(case_id=case_id, party_id=party_id).first()
    may_rate = rating_open_for(case, now=now)
    until = None
    if rating is not None:
        until = rating.rated_at + dt.timedelta(days=settings.PUBLIC_RATING_CHANGE_DAYS)
    return PublicView(
        case_id=case_id,
        party_id=party_id,
        number=case.number,
        kind_label=str(CaseKind(kind).label),
        category=case.category.name if case.category_id else "",
        registered_on=case.registered_at.astimezone(SHANGHAI).date(),
        agency=case.holder_agency.name,
        state=labels.state_label(kind, workflow.public_state(kind, case.state)),
        closed=case.closed_at is not None,
        entries=entries,
        dues=dues,
        rating=rating,
        may_rate=may_rate and (rating is None or now <= until),
        may_change=rating is not None and until is not None and now <= until,
        change_until=until,
    )


# Statistics -----------------------------------------------------------------------------------


def satisfaction_by_agency_month(
    *, agency_ids: QuerySet | None, date_from: dt.date, date_to: dt.date
) -> list[dict[str, Any]]:
    """Ratings per handling agency and month of (first) rating: counts of each value and the
    satisfaction rate (满意 + 基本满意) / all. `agency_ids` None: every agency."""
    start = dt.datetime.combine(date_from, dt.time(0), tzinfo=SHANGHAI)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(0), tzinfo=SHANGHAI)
    qs = Rating.objects.filter(rated_at__gte=start, rated_at__lt=end)
    if agency_ids is not None:
        qs = qs.filter(agency_id__in=agency_ids)
    rows = (
        qs.annotate(month=TruncMonth("rated_at", tzinfo=SHANGHAI))
        .values("agency_id", "agency__name", "month")
        .annotate(
            total=Count("pk"),
            satisfied=Count("pk", filter=Q(value=RatingValue.SATISFIED)),
            basic=Count("pk", filter=Q(value=RatingValue.BASIC)),
            unsatisfied=Count("pk", filter=Q(value=RatingValue.UNSATISFIED)),
        )
        .order_by("agency__name", "month")
    )
    out = []
    for r in rows:
        r = dict(r)
        r["rate"] = (r["satisfied"] + r["basic"]) / r["total"] if r["total"] else None
        out.append(r)
    return out
