"""Hand-off notices: after a step, tell whoever must act next, or whoever handed the case on.

The workflow table says, per step, which audiences are told (`workflow.Audience`):
- RECEIVER: the agency a referral the step opened names (待接收: 交办, 转送, 访调对接);
- COURT: the court the parties applied to for 司法确认;
- HOLDER: the (new) holding agency (after 上交; after the court's ruling);
- REFERRERS: every agency that handed the case on (from-agencies of its referrals), of 受理,
  退回 and 结案: the police station of a 警调对接 or the court of a 委派调解 learns the outcome
  (反馈; the 2025 治安管理处罚法 makes it a legal step, DOMAIN.md §1.5).

Notices are outbox rows written in the step's own transaction (`notifications_create_bulk`,
keyed by case and version, so a retried step can never notify twice), to the agency's head and
its staff of the roles that act next, never to the actor, never to the accused agency of an
accusation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db.models import Q

from mediation.accounts.models import User
from mediation.agencies.models import Agency
from mediation.cases import labels, workflow
from mediation.cases.models import Case, Referral
from mediation.core.clock import local_date
from mediation.notifications.models import NotificationKind
from mediation.notifications.services import NotificationSpec, notifications_create_bulk


def _recipients(agency_id: int, roles: Iterable[str] | None, *, exclude: int | None) -> list[int]:
    """The agency's head and its active staff of `roles` (all staff when None): one query."""
    staff = Q(agency_id=agency_id)
    if roles is not None:
        staff &= Q(role__in=list(roles))
    head = Q(pk__in=Agency.objects.filter(pk=agency_id).values("head_id"))
    ids = set(User.objects.filter(staff | head, is_active=True).values_list("pk", flat=True))
    ids.discard(exclude)
    return sorted(ids)


def case_notice_specs(
    *,
    case: Case,
    agency_id: int,
    users: Iterable[int | None],
    kind: str,
    subject: str,
    body: str,
    key: str,
) -> list[NotificationSpec]:
    """One notification per user about `case` (keys `{key}:user:{id}`), and one group-robot
    post, to `agency_id`'s robot, with the first of them."""
    ids = sorted({u for u in users if u})
    return [
        NotificationSpec(
            recipient_id=user_id,
            kind=kind,
            case_id=case.pk,
            subject=subject,
            body=body,
            key=f"{key}:user:{user_id}",
            data={"agency_id": agency_id, "version": case.version},
            webhook_agency_id=agency_id if i == 0 else None,
        )
        for i, user_id in enumerate(ids)
    ]


def notify_after_step(
    *,
    case: Case,
    act: workflow.Action,
    actor: User,
    now: dt.datetime,
    referral: Referral | None = None,
) -> int:
    """Write the notices `act.notify` asks for; returns how many notifications were created."""
    if not act.notify:
        return 0
    label = labels.transition_label(case.kind, act.name)
    day = local_date(now).isoformat()
    actor_agency = actor.agency.name if actor.agency_id else ""
    accused = workflow.accused_ids(case)
    specs: list[NotificationSpec] = []

    def add(
        agency_id: int | None,
        roles: Iterable[str] | None,
        kind: str,
        subject: str,
        body: str,
        also: Iterable[int | None] = (),
    ) -> None:
        if agency_id is None or agency_id in accused or agency_id == actor.agency_id:
            return
        users = set(_recipients(agency_id, roles, exclude=actor.pk))
        users |= {u for u in also if u and u != actor.pk}
        key = f"case:{case.pk}:v{case.version}:{act.name}:agency:{agency_id}"
        specs.extend(
            case_notice_specs(
                case=case,
                agency_id=agency_id,
                users=users,
                kind=kind,
                subject=subject,
                body=body,
                key=key,
            )
        )

    if workflow.Audience.RECEIVER in act.notify and referral is not None:
        roles = workflow.roles_acting(
            "dispute" if act.name == "refer_to_mediation" else case.kind,
            "assigned" if act.name == "refer_to_mediation" else case.state,
            workflow.Actor.RECEIVER,
        )
        add(
            referral.to_agency_id,
            roles,
            str(NotificationKind.HANDOFF),
            f"【待接收】{case.number} {case.title}",
            f"{actor_agency}于{day}{referral.get_kind_display()}本案至贵单位（{label}），"
            "请及时受理或退回。\n"
            f"案件：{case.title}",
        )
    if workflow.Audience.COURT in act.notify and case.confirmation_court_id:
        add(
            case.confirmation_court_id,
            workflow.COURT,
            str(NotificationKind.HANDOFF),
            f"【司法确认申请】{case.number} {case.title}",
            f"当事人已就本案调解协议向贵院申请司法确认（申请日期 {case.confirmation_applied_on}，"
            f"调解组织：{case.holder_agency.name}），请审查并录入确认结果。",
        )
    if workflow.Audience.HOLDER in act.notify:
        add(
            case.holder_agency_id,
            workflow.roles_acting(case.kind, case.state, workflow.Actor.HOLDER) or None,
            str(NotificationKind.HANDOFF),
            f"【{label}】{case.number} {case.title}",
            f"{actor_agency}于{day}{label}。当前状态：{case.state_label}。",
        )
    if workflow.Audience.REFERRERS in act.notify:
        # The head of each agency that handed the case on, and the person who sent it.
        senders: dict[int, set[int]] = {}
        for agency_id, sent_by in Referral.objects.filter(case=case).values_list(
            "from_agency_id", "sent_by_id"
        ):
            senders.setdefault(agency_id, set()).add(sent_by)
        for agency_id, sent_by in sorted(senders.items()):
            add(
                agency_id,
                (),
                str(NotificationKind.FEEDBACK),
                f"【办理反馈】{case.number} {label}",
                f"贵单位移送的案件“{case.title}”已由{actor_agency}于{day}{label}。"
                f"当前状态：{case.state_label}。",
                also=sent_by,
            )
    if not specs:
        return 0
    return notifications_create_bulk(specs, now=now).notifications
