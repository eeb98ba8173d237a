"""Cases, their state machines and their audit trail.

One `cases_case` table holds both machines; `Dispute` and `Petition` are proxy models, each
with its own django-fsm-2 transitions on the shared protected `state` field. Clocks,
referrals, events and (later) escalations refer to one table, so sweeps and queues stay
simple indexed queries.

Transition methods only set fields that must change together (STYLE.md): no I/O, no save().
`mediation.cases.services.case_transition` is their only caller.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, transition


class CaseKind(models.TextChoices):
    DISPUTE = "dispute", _("矛盾纠纷")
    PETITION = "petition", _("信访事项")


class AppliesTo(models.TextChoices):
    DISPUTE = "dispute", _("矛盾纠纷")
    PETITION = "petition", _("信访事项")
    BOTH = "both", _("通用")


class Category(models.Model):
    """纠纷类型 / 信访内容分类: a table, not an enum (provinces add their own, DOMAIN.md §3.1)."""

    code = models.CharField(_("代码"), max_length=32, unique=True)
    name = models.CharField(_("名称"), max_length=64)
    applies_to = models.CharField(_("适用"), max_length=16, choices=AppliesTo.choices)
    sort_order = models.PositiveIntegerField(_("排序"), default=0)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("纠纷类型")
        verbose_name_plural = _("纠纷类型")
        ordering = ["applies_to", "sort_order", "code"]

    def __str__(self) -> str:
        return self.name


class Channel(models.Model):
    """来源 / intake channel (DOMAIN.md §3.2)."""

    code = models.CharField(_("代码"), max_length=32, unique=True)
    name = models.CharField(_("名称"), max_length=64)
    sort_order = models.PositiveIntegerField(_("排序"), default=0)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("来源渠道")
        verbose_name_plural = _("来源渠道")
        ordering = ["sort_order", "code"]

    def __str__(self) -> str:
        return self.name


class CaseNumberSequence(models.Model):
    """Per agency, year and kind counter behind case numbers like (2026)将官池人调字第0001号."""

    agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="+")
    year = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=CaseKind.choices)
    last_value = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agency", "year", "kind"], name="case_seq_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.agency_id}/{self.year}/{self.kind}: {self.last_value}"


class RiskLevel(models.TextChoices):
    LOW = "low", _("低")
    MEDIUM = "medium", _("中")
    HIGH = "high", _("高")


class MediationTrack(models.TextChoices):
    """Which mediation period applies (DOMAIN.md §6.1, `mediating` row)."""

    PEOPLE = "people", _("人民调解（30日）")
    PEOPLE_MONTH = "people_month", _("人民调解（一个月）")
    COURT_ENTRUSTED = "court_entrusted", _("法院委派调解")
    LABOUR = "labour", _("劳动争议调解")
    MEDICAL = "medical", _("医疗纠纷调解")


class PetitionType(models.TextChoices):
    """The legal type axis of 信访工作条例 Arts 29–31."""

    SUGGESTION = "suggestion", _("建议意见")
    ACCUSATION = "accusation", _("检举控告")
    COMPLAINT = "complaint", _("申诉求决")


class DisputeState(models.TextChoices):
    REGISTERED = "registered", _("登记")
    TRIAGED = "triaged", _("研判分流")
    ASSIGNED = "assigned", _("交办")
    ACCEPTED = "accepted", _("受理登记")
    MEDIATING = "mediating", _("调解中")
    EXTENDED = "extended", _("延期")
    SUSPENDED = "suspended", _("中止")
    AGREEMENT_REACHED = "agreement_reached", _("达成协议")
    CONFIRMATION_PENDING = "confirmation_pending", _("司法确认中")
    PERFORMANCE_MONITORING = "performance_monitoring", _("履行监督/回访")
    ESCALATED = "escalated", _("上交")
    CLOSED_RESOLVED = "closed_resolved", _("结案")
    CLOSED_FAILED = "closed_failed", _("调解终止")
    CLOSED_REFUSED = "closed_refused", _("拒绝调解")
    WITHDRAWN = "withdrawn", _("撤回")
    TRANSFERRED = "transferred", _("转出")


class PetitionState(models.TextChoices):
    RECEIVED = "received", _("收到")
    REGISTERED = "registered", _("登记")
    FORWARDED = "forwarded", _("转送/交办")
    NOT_ACCEPTED = "not_accepted", _("不予/不再受理")
    DIVERTED = "diverted", _("导入法定程序")
    ACCEPTED = "accepted", _("受理")
    HANDLING = "handling", _("办理中")
    EXTENDED = "extended", _("延期")
    MEDIATED = "mediated", _("调解/和解结案")
    OPINION_ISSUED = "opinion_issued", _("已出具处理意见")
    REVIEW_REQUESTED = "review_requested", _("申请复查")
    UNDER_REVIEW = "under_review", _("复查中")
    REVIEW_OPINION_ISSUED = "review_opinion_issued", _("已出具复查意见")
    REREVIEW_REQUESTED = "rereview_requested", _("申请复核")
    UNDER_REREVIEW = "under_rereview", _("复核中")
    FINAL = "final", _("复核终结")
    CLOSED = "closed", _("办结")


STATE_LABELS: dict[str, dict[str, Any]] = {
    CaseKind.DISPUTE: dict(DisputeState.choices),
    CaseKind.PETITION: dict(PetitionState.choices),
}
TERMINAL_STATES: dict[str, frozenset[str]] = {
    CaseKind.DISPUTE: frozenset(
        {"closed_resolved", "closed_failed", "closed_refused", "withdrawn", "transferred"}
    ),
    CaseKind.PETITION: frozenset({"not_accepted", "diverted", "final", "closed"}),
}
ALL_STATES = sorted(set(DisputeState.values) | set(PetitionState.values))


def permission(transition: str) -> Any:
    """The `permission=` callable of a transition: the workflow table decides
    (`mediation.cases.workflow.may_act`; imported when called, the table imports the steps,
    which import these models)."""

    def check(instance: Case, user: Any) -> bool:
        from mediation.cases.workflow import may_act

        return may_act(user, instance, transition)

    check.__name__ = f"may_{transition}"
    return check


def _holds_own_walk_ins(case: Case) -> bool:
    """受理 without a hand-off: the holder is an organ that mediates itself (a people's mediation
    committee or a judicial office), so a dispute registered there, or sent up to it by 上交,
    is accepted where it is (人民调解法 Art 17; 粤平安 "先行调解")."""
    from mediation.agencies.models import AgencyKind

    if case.holder_agency_id is None:
        return False
    return case.holder_agency.kind in (AgencyKind.MEDIATION_COMMITTEE, AgencyKind.JUDICIAL_OFFICE)


class CaseQuerySet(models.QuerySet["Case"]):
    def open(self) -> CaseQuerySet:
        return self.filter(closed_at__isnull=True)


class Case(ConcurrentTransitionMixin, models.Model):
    kind = models.CharField(_("类别"), max_length=16, choices=CaseKind.choices)
    number = models.CharField(_("案号"), max_length=64, unique=True)
    # No index of its own: case_number_per_agency_year leads with it.
    registering_agency = models.ForeignKey(
        "agencies.Agency",
        verbose_name=_("登记机构"),
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    year = models.PositiveIntegerField(_("年度"))
    sequence = models.PositiveIntegerField(_("序号"))
    # No index of its own: case_holder_state_idx (holder, state) leads with it, and a
    # transition changes the case row, so every index of it is written again each time.
    holder_agency = models.ForeignKey(
        "agencies.Agency",
        verbose_name=_("承办机构"),
        on_delete=models.PROTECT,
        related_name="held_cases",
        db_index=False,
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("承办人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_cases",
    )
    state = FSMField(_("状态"), max_length=32, protected=True, choices=[(s, s) for s in ALL_STATES])
    version = models.PositiveIntegerField(_("版本"), default=1)
    state_entered_at = models.DateTimeField(_("进入当前状态时间"))

    title = models.CharField(_("标题"), max_length=200)
    description = models.TextField(_("简要情况"), blank=True)
    category = models.ForeignKey(
        Category, verbose_name=_("类型"), null=True, blank=True, on_delete=models.PROTECT
    )
    channel = models.ForeignKey(Channel, verbose_name=_("来源"), on_delete=models.PROTECT)
    received_on = models.DateField(_("收到日期"))
    registered_at = models.DateTimeField(_("登记时间"))
    risk_level = models.CharField(
        _("风险等级"), max_length=8, choices=RiskLevel.choices, default=RiskLevel.LOW
    )

    # Dispute fields.
    mediation_track = models.CharField(
        _("调解类型"), max_length=32, choices=MediationTrack.choices, default=MediationTrack.PEOPLE
    )
    accepted_on = models.DateField(_("受理日期"), null=True, blank=True)
    # Start of the current mediation period: acceptance, or re-mediation after non-performance.
    mediation_period_start = models.DateField(_("调解期间起算日"), null=True, blank=True)
    extension_days = models.PositiveIntegerField(_("已延长天数"), default=0)
    # Petition fields (DOMAIN.md §3.4).
    petition_type = models.CharField(
        _("信访类型"), max_length=16, choices=PetitionType.choices, blank=True
    )
    involves_accusation = models.BooleanField(_("涉及检举控告"), default=False)
    # 检举控告: the accused agency must never see who the petitioner is (Art 30 ¶3, Art 46(5)).
    accused_agency = models.ForeignKey(
        "agencies.Agency",
        verbose_name=_("被检举控告机构"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    collective = models.BooleanField(_("集体访"), default=False)
    headcount = models.PositiveIntegerField(_("人数"), default=1)
    repeat_of = models.ForeignKey(
        "self",
        verbose_name=_("重复信访"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="repeats",
    )
    spawned_from = models.ForeignKey(
        "self",
        verbose_name=_("来源信访事项"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="spawned",
    )
    supervised = models.BooleanField(_("督办"), default=False)
    review_requested_on = models.DateField(_("复查申请收到日期"), null=True, blank=True)
    rereview_requested_on = models.DateField(_("复核申请收到日期"), null=True, blank=True)
    confirmation_applied_on = models.DateField(_("司法确认申请日期"), null=True, blank=True)
    confirmation_court = models.ForeignKey(
        "agencies.Agency",
        verbose_name=_("司法确认法院"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    transfer_target = models.CharField(_("转出去向"), max_length=64, blank=True)
    external_reference = models.CharField(_("外部案号"), max_length=100, blank=True)
    outcome_note = models.TextField(_("处理结果"), blank=True)
    closed_at = models.DateTimeField(_("结案时间"), null=True, blank=True)
    # The earliest running duty clock's due time: the case lists' urgency order (红牌 first).
    # Derived data, kept equal to the clocks by the services that change them
    # (cases.services.case_sync_next_due); stored so a list of a million cases is one ordered
    # index scan instead of a correlated sub-query per case.
    next_due_at = models.DateTimeField(_("最近到期时刻"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    objects = CaseQuerySet.as_manager()

    class Meta:
        verbose_name = _("案件")
        verbose_name_plural = _("案件")
        ordering = ["-registered_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["registering_agency", "year", "kind", "sequence"],
                name="case_number_per_agency_year",
            ),
        ]
        indexes = [
            models.Index(fields=["holder_agency", "state"], name="case_holder_state_idx"),
            models.Index(fields=["kind", "state"], name="case_kind_state_idx"),
            # Statistics filter by registration date range.
            models.Index(fields=["registered_at"], name="case_registered_at_idx"),
            # The search box: a case number's sequence alone (第12号). The title and summary
            # are searched through `search_grams` (migration 0010, PostgreSQL only).
            models.Index(fields=["sequence"], name="case_sequence_idx"),
            # Open cases, most urgent first: the order of the case lists (web.selectors,
            # `next_due_at ASC NULLS LAST`; ASC sorts NULLs last in a PostgreSQL index, and
            # SQLite takes no NULLS LAST in an index definition).
            models.Index(
                fields=["next_due_at", "-registered_at", "-id"],
                name="case_open_urgency_idx",
                condition=models.Q(closed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"

    @property
    def state_label(self) -> str:
        return str(STATE_LABELS.get(self.kind, {}).get(self.state, self.state))

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES.get(self.kind, frozenset())

    def as_proxy(self) -> Case:
        """This row as its kind's proxy class, which carries the transitions."""
        cls = Dispute if self.kind == CaseKind.DISPUTE else Petition
        if type(self) is not cls:
            self.__class__ = cls
        return self

    def pending_referral_target_id(self) -> int | None:
        cached = getattr(self, "_pending_referral_target", ...)
        if cached is ...:
            ref = (
                self.referrals.filter(status=ReferralStatus.PENDING)
                .order_by("-sent_at")
                .values_list("to_agency_id", flat=True)
                .first()
            )
            self._pending_referral_target = ref
            cached = ref
        return cached


class DisputeManager(models.Manager["Dispute"]):
    def get_queryset(self) -> models.QuerySet[Dispute]:
        return super().get_queryset().filter(kind=CaseKind.DISPUTE)


class PetitionManager(models.Manager["Petition"]):
    def get_queryset(self) -> models.QuerySet[Petition]:
        return super().get_queryset().filter(kind=CaseKind.PETITION)


DS = DisputeState
PS = PetitionState


class Dispute(Case):
    """矛盾纠纷: the state machine of DOMAIN.md §6.1."""

    objects = DisputeManager()

    class Meta:
        proxy = True
        verbose_name = _("矛盾纠纷")
        verbose_name_plural = _("矛盾纠纷")

    @transition(
        "state",
        DS.REGISTERED,
        DS.TRIAGED,
        permission=permission("triage"),
        custom={"label": _("研判分流")},
    )
    def triage(self, *, risk_level: str, category: Category | None) -> None:
        self.risk_level = risk_level
        if category is not None:
            self.category = category

    @transition(
        "state",
        [DS.REGISTERED, DS.ESCALATED],
        DS.ACCEPTED,
        conditions=[_holds_own_walk_ins],
        permission=permission("accept_own"),
        custom={"label": _("受理（本机构调解）")},
    )
    def accept_own(self, *, accepted_on: dt.date, assignee: Any) -> None:
        """A committee (or judicial office) accepts a dispute it holds: a walk-in registered
        there, or one sent up to it (上交). No referral, no change of holder."""
        self.accepted_on = accepted_on
        self.mediation_period_start = accepted_on
        self.extension_days = 0
        self.assignee = assignee

    @transition(
        "state",
        [DS.TRIAGED, DS.ESCALATED],
        DS.ASSIGNED,
        permission=permission("assign"),
        custom={"label": _("交办")},
    )
    def assign(self) -> None:
        """The receiving agency takes over only when it accepts (referral)."""

    @transition(
        "state",
        DS.ASSIGNED,
        DS.ACCEPTED,
        permission=permission("accept"),
        custom={"label": _("受理")},
    )
    def accept(self, *, agency_id: int, accepted_on: dt.date, assignee: Any) -> None:
        self.holder_agency_id = agency_id
        self.accepted_on = accepted_on
        self.mediation_period_start = accepted_on
        self.extension_days = 0
        self.assignee = assignee

    @transition(
        "state",
        DS.ASSIGNED,
        DS.TRIAGED,
        permission=permission("decline"),
        custom={"label": _("退回")},
    )
    def decline(self) -> None:
        pass

    @transition(
        "state",
        [DS.TRIAGED, DS.PERFORMANCE_MONITORING, DS.CLOSED_FAILED],
        DS.TRANSFERRED,
        permission=permission("transfer"),
        custom={"label": _("转出")},
    )
    def transfer(self, *, target: str, external_reference: str) -> None:
        self.transfer_target = target
        self.external_reference = external_reference

    @transition(
        "state",
        DS.ACCEPTED,
        DS.MEDIATING,
        permission=permission("start_mediation"),
        custom={"label": _("开始调解")},
    )
    def start_mediation(self) -> None:
        pass

    @transition(
        "state",
        DS.ACCEPTED,
        DS.CLOSED_REFUSED,
        permission=permission("refuse"),
        custom={"label": _("当事人拒绝调解")},
    )
    def refuse(self, *, reason: str) -> None:
        self.outcome_note = reason

    @transition(
        "state",
        [DS.ACCEPTED, DS.MEDIATING, DS.EXTENDED, DS.SUSPENDED],
        DS.WITHDRAWN,
        permission=permission("withdraw"),
        custom={"label": _("当事人撤回")},
    )
    def withdraw(self, *, reason: str) -> None:
        self.outcome_note = reason

    @transition(
        "state",
        DS.MEDIATING,
        DS.EXTENDED,
        permission=permission("extend"),
        custom={"label": _("延期")},
    )
    def extend(self, *, extra_days: int) -> None:
        self.extension_days += extra_days

    @transition(
        "state",
        DS.EXTENDED,
        DS.MEDIATING,
        permission=permission("continue_mediation"),
        custom={"label": _("继续调解")},
    )
    def continue_mediation(self) -> None:
        pass

    @transition(
        "state",
        DS.MEDIATING,
        DS.SUSPENDED,
        permission=permission("suspend"),
        custom={"label": _("中止")},
    )
    def suspend(self) -> None:
        pass

    @transition(
        "state",
        DS.SUSPENDED,
        DS.MEDIATING,
        permission=permission("resume"),
        custom={"label": _("恢复调解")},
    )
    def resume(self) -> None:
        pass

    @transition(
        "state",
        DS.MEDIATING,
        DS.AGREEMENT_REACHED,
        permission=permission("record_agreement"),
        custom={"label": _("达成协议")},
    )
    def record_agreement(self) -> None:
        pass

    @transition(
        "state",
        DS.MEDIATING,
        DS.CLOSED_FAILED,
        permission=permission("close_failed"),
        custom={"label": _("终止调解")},
    )
    def close_failed(self, *, reason: str) -> None:
        self.outcome_note = reason

    @transition(
        "state",
        DS.MEDIATING,
        DS.ESCALATED,
        permission=permission("escalate"),
        custom={"label": _("上交")},
    )
    def escalate(self, *, agency_id: int) -> None:
        self.holder_agency_id = agency_id
        self.assignee = None

    @transition(
        "state",
        DS.AGREEMENT_REACHED,
        DS.CONFIRMATION_PENDING,
        permission=permission("apply_confirmation"),
        custom={"label": _("申请司法确认")},
    )
    def apply_confirmation(self, *, applied_on: dt.date, court_id: int | None) -> None:
        self.confirmation_applied_on = applied_on
        self.confirmation_court_id = court_id

    @transition(
        "state",
        DS.AGREEMENT_REACHED,
        DS.PERFORMANCE_MONITORING,
        permission=permission("monitor_performance"),
        custom={"label": _("履行监督")},
    )
    def monitor_performance(self) -> None:
        pass

    @transition(
        "state",
        DS.CONFIRMATION_PENDING,
        DS.PERFORMANCE_MONITORING,
        permission=permission("confirm"),
        custom={"label": _("司法确认有效")},
    )
    def confirm(self, *, ruling_number: str) -> None:
        self.external_reference = ruling_number

    @transition(
        "state",
        DS.CONFIRMATION_PENDING,
        DS.MEDIATING,
        permission=permission("reject_confirmation_remediate"),
        custom={"label": _("确认被驳回，重新调解")},
    )
    def reject_confirmation_remediate(self, *, today: dt.date) -> None:
        self.mediation_period_start = today
        self.extension_days = 0

    @transition(
        "state",
        DS.CONFIRMATION_PENDING,
        DS.CLOSED_FAILED,
        permission=permission("reject_confirmation_fail"),
        custom={"label": _("确认被驳回，终止调解")},
    )
    def reject_confirmation_fail(self, *, reason: str) -> None:
        self.outcome_note = reason

    @transition(
        "state",
        DS.PERFORMANCE_MONITORING,
        DS.CLOSED_RESOLVED,
        permission=permission("close_resolved"),
        custom={"label": _("回访结案")},
    )
    def close_resolved(self) -> None:
        pass

    @transition(
        "state",
        DS.PERFORMANCE_MONITORING,
        DS.MEDIATING,
        permission=permission("remediate"),
        custom={"label": _("未履行，重新调解")},
    )
    def remediate(self, *, today: dt.date) -> None:
        self.mediation_period_start = today
        self.extension_days = 0


class Petition(Case):
    """信访事项: the state machine of DOMAIN.md §6.2 (信访工作条例 2022)."""

    objects = PetitionManager()

    class Meta:
        proxy = True
        verbose_name = _("信访事项")
        verbose_name_plural = _("信访事项")

    @transition(
        "state",
        PS.RECEIVED,
        PS.REGISTERED,
        permission=permission("register"),
        custom={"label": _("登记")},
    )
    def register(self) -> None:
        pass

    @transition(
        "state",
        PS.REGISTERED,
        PS.FORWARDED,
        permission=permission("forward"),
        custom={"label": _("转送/交办")},
    )
    def forward(self) -> None:
        """Art 22: the receiving agency holds the matter once it accepts it."""

    @transition(
        "state",
        PS.REGISTERED,
        PS.ACCEPTED,
        permission=permission("accept"),
        custom={"label": _("受理")},
    )
    def accept(self, *, accepted_on: dt.date) -> None:
        self.accepted_on = accepted_on

    @transition(
        "state",
        PS.FORWARDED,
        PS.ACCEPTED,
        permission=permission("accept_forwarded"),
        custom={"label": _("受理转送事项")},
    )
    def accept_forwarded(self, *, agency_id: int, accepted_on: dt.date) -> None:
        self.holder_agency_id = agency_id
        self.accepted_on = accepted_on

    @transition(
        "state",
        PS.FORWARDED,
        PS.REGISTERED,
        permission=permission("raise_objection"),
        custom={"label": _("提出异议（不属本机关职责）")},
    )
    def raise_objection(self) -> None:
        """Art 23 ¶3: objection within 5 working days; the materials go back."""

    @transition(
        "state",
        PS.REGISTERED,
        PS.NOT_ACCEPTED,
        permission=permission("not_accept"),
        custom={"label": _("不予/不再受理")},
    )
    def not_accept(self, *, reason: str) -> None:
        self.outcome_note = reason

    @transition(
        "state",
        PS.REGISTERED,
        PS.DIVERTED,
        permission=permission("divert"),
        custom={"label": _("导入法定程序")},
    )
    def divert(self, *, procedure: str, external_reference: str) -> None:
        self.transfer_target = procedure
        self.external_reference = external_reference

    @transition(
        "state",
        PS.ACCEPTED,
        PS.HANDLING,
        permission=permission("start_handling"),
        custom={"label": _("开始办理")},
    )
    def start_handling(self) -> None:
        pass

    @transition(
        "state",
        PS.HANDLING,
        PS.EXTENDED,
        permission=permission("extend"),
        custom={"label": _("延期（≤30日）")},
    )
    def extend(self) -> None:
        pass

    @transition(
        "state",
        [PS.HANDLING, PS.EXTENDED],
        PS.OPINION_ISSUED,
        permission=permission("issue_opinion"),
        custom={"label": _("出具处理意见书")},
    )
    def issue_opinion(self) -> None:
        pass

    @transition(
        "state",
        [PS.HANDLING, PS.EXTENDED],
        PS.MEDIATED,
        permission=permission("record_mediation"),
        custom={"label": _("调解/和解")},
    )
    def record_mediation(self) -> None:
        pass

    @transition(
        "state",
        [PS.MEDIATED, PS.OPINION_ISSUED, PS.REVIEW_OPINION_ISSUED],
        PS.CLOSED,
        permission=permission("close"),
        custom={"label": _("办结")},
    )
    def close(self, *, reason: str) -> None:
        self.outcome_note = reason

    @transition(
        "state",
        PS.OPINION_ISSUED,
        PS.REVIEW_REQUESTED,
        permission=permission("request_review"),
        custom={"label": _("收到复查申请")},
    )
    def request_review(self, *, agency_id: int, received_on: dt.date) -> None:
        """Art 35: the next-higher agency reviews."""
        self.holder_agency_id = agency_id
        self.review_requested_on = received_on

    @transition(
        "state",
        PS.REVIEW_REQUESTED,
        PS.UNDER_REVIEW,
        permission=permission("start_review"),
        custom={"label": _("开始复查")},
    )
    def start_review(self) -> None:
        pass

    @transition(
        "state",
        PS.UNDER_REVIEW,
        PS.REVIEW_OPINION_ISSUED,
        permission=permission("issue_review_opinion"),
        custom={"label": _("出具复查意见")},
    )
    def issue_review_opinion(self) -> None:
        pass

    @transition(
        "state",
        PS.REVIEW_OPINION_ISSUED,
        PS.REREVIEW_REQUESTED,
        permission=permission("request_rereview"),
        custom={"label": _("收到复核申请")},
    )
    def request_rereview(self, *, agency_id: int, received_on: dt.date) -> None:
        """Art 36: the agency above the reviewer re-reviews."""
        self.holder_agency_id = agency_id
        self.rereview_requested_on = received_on

    @transition(
        "state",
        PS.REREVIEW_REQUESTED,
        PS.UNDER_REREVIEW,
        permission=permission("start_rereview"),
        custom={"label": _("开始复核")},
    )
    def start_rereview(self) -> None:
        pass

    @transition(
        "state",
        PS.UNDER_REREVIEW,
        PS.FINAL,
        permission=permission("issue_rereview_opinion"),
        custom={"label": _("出具复核意见（终结）")},
    )
    def issue_rereview_opinion(self) -> None:
        pass


class CasePartyRole(models.TextChoices):
    APPLICANT = "applicant", _("申请人")
    RESPONDENT = "respondent", _("被申请人")
    PETITIONER = "petitioner", _("信访人")
    REPRESENTATIVE = "representative", _("代表人")
    OTHER = "other", _("其他当事人")


class CaseParty(models.Model):
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="case_parties")
    party = models.ForeignKey("parties.Party", on_delete=models.PROTECT, related_name="cases")
    role = models.CharField(_("身份"), max_length=16, choices=CasePartyRole.choices)

    class Meta:
        verbose_name = _("案件当事人")
        verbose_name_plural = _("案件当事人")
        constraints = [
            models.UniqueConstraint(fields=["case", "party", "role"], name="case_party_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()} {self.party}"


class ReferralKind(models.TextChoices):
    POLICE_MEDIATION = "police_mediation", _("警调对接")
    COURT_MEDIATION = "court_mediation", _("诉调对接")
    PETITION_MEDIATION = "petition_mediation", _("访调对接")
    ASSIGN = "assign", _("交办")
    FORWARD = "forward", _("转送")
    ESCALATE = "escalate", _("上交")


class ReferralStatus(models.TextChoices):
    PENDING = "pending", _("待接收")
    ACCEPTED = "accepted", _("已接收")
    RETURNED = "returned", _("已退回")


class Referral(models.Model):
    """A hand-over between agencies; the receiver accepts or returns it within its clock."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="referrals")
    kind = models.CharField(_("类型"), max_length=32, choices=ReferralKind.choices)
    from_agency = models.ForeignKey(
        "agencies.Agency", verbose_name=_("移送机构"), on_delete=models.PROTECT, related_name="+"
    )
    to_agency = models.ForeignKey(
        "agencies.Agency",
        verbose_name=_("接收机构"),
        on_delete=models.PROTECT,
        related_name="incoming_referrals",
    )
    status = models.CharField(
        _("状态"), max_length=16, choices=ReferralStatus.choices, default=ReferralStatus.PENDING
    )
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    sent_at = models.DateTimeField(_("移送时间"))
    report_due = models.DateField(_("报告期限"), null=True, blank=True)  # 交办 (Art 22(3))
    note = models.TextField(_("说明"), blank=True)
    responded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    responded_at = models.DateTimeField(_("处理时间"), null=True, blank=True)
    return_reason = models.TextField(_("退回理由"), blank=True)

    class Meta:
        verbose_name = _("移送")
        verbose_name_plural = _("移送")
        ordering = ["-sent_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["case"],
                condition=models.Q(status="pending"),
                name="referral_one_pending_per_case",
            ),
        ]
        indexes = [
            models.Index(fields=["to_agency", "status"], name="referral_inbox_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} → {self.to_agency}（{self.get_status_display()}）"


class Custody(models.Model):
    """Who held the case when."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="custody")
    agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("承办记录")
        verbose_name_plural = _("承办记录")
        ordering = ["started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["case"], condition=models.Q(ended_at__isnull=True), name="custody_one_open"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agency} {self.started_at:%Y-%m-%d}"


class AgreementForm(models.TextChoices):
    WRITTEN = "written", _("书面调解协议书")
    ORAL = "oral", _("口头协议")
    SETTLEMENT = "settlement", _("和解协议书")


class Agreement(models.Model):
    """人民调解法 Arts 28–30; 信访工作条例 Art 33."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="agreements")
    form = models.CharField(_("形式"), max_length=16, choices=AgreementForm.choices)
    text = models.TextField(_("协议内容"))
    effective_on = models.DateField(_("生效日期"))
    performance_due_on = models.DateField(_("履行期限"), null=True, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField()

    class Meta:
        verbose_name = _("调解协议")
        verbose_name_plural = _("调解协议")
        ordering = ["recorded_at"]

    def __str__(self) -> str:
        return f"{self.get_form_display()} {self.effective_on}"


class OpinionStage(models.TextChoices):
    HANDLING = "handling", _("处理意见书")
    REVIEW = "review", _("复查意见书")
    REREVIEW = "rereview", _("复核意见书")


class OpinionResult(models.TextChoices):
    SUPPORT = "support", _("支持")
    EXPLAIN = "explain", _("解释说明")
    NOT_SUPPORT = "not_support", _("不予支持")


class Opinion(models.Model):
    """信访处理（复查、复核）意见书 with its service date (Arts 32, 35, 36)."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="opinions")
    stage = models.CharField(_("阶段"), max_length=16, choices=OpinionStage.choices)
    result = models.CharField(_("结论"), max_length=16, choices=OpinionResult.choices)
    text = models.TextField(_("意见内容"))
    served_on = models.DateField(_("送达日期"))
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    issuing_agency = models.ForeignKey(
        "agencies.Agency", on_delete=models.PROTECT, related_name="+"
    )
    issued_at = models.DateTimeField()

    class Meta:
        verbose_name = _("意见书")
        verbose_name_plural = _("意见书")
        ordering = ["issued_at"]

    def __str__(self) -> str:
        return f"{self.get_stage_display()}（{self.get_result_display()}）{self.served_on}"


class Extension(models.Model):
    """延期: approver and reason (信访 Art 34) or both parties' consent (mediation)."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="extensions")
    reason = models.TextField(_("延期理由"))
    extra_days = models.PositiveIntegerField(_("延长天数"))
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("批准人"),
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
    )
    parties_consented = models.BooleanField(_("双方当事人同意"), default=False)
    petitioner_notified_on = models.DateField(_("告知信访人日期"), null=True, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField()

    class Meta:
        verbose_name = _("延期")
        verbose_name_plural = _("延期")
        ordering = ["recorded_at"]

    def __str__(self) -> str:
        return f"延期 {self.extra_days} 日"


class EventKind(models.TextChoices):
    """What a `CaseEvent` records: a transition of either machine (same name as the method),
    or a service action that leaves the state as it is. One list; `mediation.cases.labels`
    gives each its label (a transition's own label where the two machines differ)."""

    # The event that creates a case (from_state ""), and the petition's 收到 → 登记.
    REGISTER = "register", _("登记")
    # 矛盾纠纷 (DOMAIN.md §6.1)
    TRIAGE = "triage", _("研判分流")
    ACCEPT_OWN = "accept_own", _("受理（本机构调解）")
    ASSIGN = "assign", _("交办")
    ACCEPT = "accept", _("受理")
    DECLINE = "decline", _("退回")
    TRANSFER = "transfer", _("转出")
    START_MEDIATION = "start_mediation", _("开始调解")
    REFUSE = "refuse", _("当事人拒绝调解")
    WITHDRAW = "withdraw", _("当事人撤回")
    EXTEND = "extend", _("延期")
    CONTINUE_MEDIATION = "continue_mediation", _("继续调解")
    SUSPEND = "suspend", _("中止")
    RESUME = "resume", _("恢复调解")
    RECORD_AGREEMENT = "record_agreement", _("达成协议")
    CLOSE_FAILED = "close_failed", _("终止调解")
    ESCALATE = "escalate", _("上交")
    APPLY_CONFIRMATION = "apply_confirmation", _("申请司法确认")
    MONITOR_PERFORMANCE = "monitor_performance", _("履行监督")
    CONFIRM = "confirm", _("司法确认有效")
    REJECT_CONFIRMATION_REMEDIATE = "reject_confirmation_remediate", _("确认被驳回，重新调解")
    REJECT_CONFIRMATION_FAIL = "reject_confirmation_fail", _("确认被驳回，终止调解")
    CLOSE_RESOLVED = "close_resolved", _("回访结案")
    REMEDIATE = "remediate", _("未履行，重新调解")
    # 信访事项 (DOMAIN.md §6.2)
    FORWARD = "forward", _("转送/交办")
    ACCEPT_FORWARDED = "accept_forwarded", _("受理转送事项")
    RAISE_OBJECTION = "raise_objection", _("提出异议（不属本机关职责）")
    NOT_ACCEPT = "not_accept", _("不予/不再受理")
    DIVERT = "divert", _("导入法定程序")
    START_HANDLING = "start_handling", _("开始办理")
    ISSUE_OPINION = "issue_opinion", _("出具处理意见书")
    RECORD_MEDIATION = "record_mediation", _("调解/和解")
    CLOSE = "close", _("办结")
    REQUEST_REVIEW = "request_review", _("收到复查申请")
    START_REVIEW = "start_review", _("开始复查")
    ISSUE_REVIEW_OPINION = "issue_review_opinion", _("出具复查意见")
    REQUEST_REREVIEW = "request_rereview", _("收到复核申请")
    START_REREVIEW = "start_rereview", _("开始复核")
    ISSUE_REREVIEW_OPINION = "issue_rereview_opinion", _("出具复核意见（终结）")
    # Service actions that keep the state.
    REFER_TO_MEDIATION = "refer_to_mediation", _("转人民调解（访调对接）")
    PAUSE_CLOCK = "pause_clock", _("暂停期限")
    RESUME_CLOCK = "resume_clock", _("恢复期限")
    ESCALATION_ACKNOWLEDGE = "escalation_acknowledge", _("签收督办")
    ESCALATION_REASSIGN = "escalation_reassign", _("督办改派")
    ESCALATION_APPROVE_EXTENSION = "escalation_approve_extension", _("督办批准延期")
    ESCALATION_NOTE = "escalation_note", _("下达督办意见")
    ESCALATION_RESOLVE = "escalation_resolve", _("督办办结")
    HOLIDAY_RECOMPUTE = "holiday_recompute", _("节假日调整")
    # The case file (卷宗): service actions of the workflow table, same names.
    UPLOAD_ATTACHMENT = "upload_attachment", _("上传卷宗材料")
    WITHDRAW_ATTACHMENT = "withdraw_attachment", _("撤回卷宗材料")
    RECORD_SESSION = "record_session", _("调解记录")
    FOLLOW_UP_VISIT = "follow_up_visit", _("回访")
    REGISTER_ORAL_AGREEMENT = "register_oral_agreement", _("口头协议登记")


class ImmutableQuerySet(models.QuerySet["CaseEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise PermissionError("案件事件不可修改")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("案件事件不可删除")


class CaseEvent(models.Model):
    """Append-only audit trail. A database trigger rejects UPDATE and DELETE (migration 0002).

    `version` is the case version the event produced; (case, version) is unique, so one
    change can never be recorded twice.
    """

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="events")
    version = models.PositiveIntegerField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    actor_agency = models.ForeignKey(
        "agencies.Agency", on_delete=models.PROTECT, null=True, related_name="+"
    )
    at = models.DateTimeField()
    transition = models.CharField(max_length=64, choices=EventKind.choices)
    from_state = models.CharField(max_length=32, blank=True)
    to_state = models.CharField(max_length=32)
    note = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    objects = ImmutableQuerySet.as_manager()

    class Meta:
        verbose_name = _("案件事件")
        verbose_name_plural = _("案件事件")
        ordering = ["case_id", "version"]
        constraints = [
            models.UniqueConstraint(fields=["case", "version"], name="case_event_one_per_version"),
        ]
        indexes = [models.Index(fields=["at"], name="case_event_at_idx")]

    def __str__(self) -> str:
        return f"#{self.version} {self.transition} {self.from_state}→{self.to_state}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise PermissionError("案件事件不可修改")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError("案件事件不可删除")


class CaseLookupCode(models.Model):
    """The parties' 查询码 of a case (信访工作条例 Art 21; DOMAIN.md §4.3), issued at registration
    by any channel (`mediation.cases.lookup`).

    The code itself is stored nowhere. The row keeps a random nonce, from which the code is
    derived with the server's `LOOKUP_CODE_KEY` (to print it on the 受理告知书 and put it in the
    SMS when it goes out), and a keyed hash of the code, the look-up's only index. A copy of the
    database without the key yields no code.
    """

    case = models.OneToOneField(Case, on_delete=models.PROTECT, related_name="lookup_code_row")
    nonce = models.CharField(max_length=64, editable=False)
    code_hash = models.CharField(max_length=64, unique=True, editable=False)
    issued_at = models.DateTimeField()

    class Meta:
        verbose_name = _("查询码")
        verbose_name_plural = _("查询码")

    def __str__(self) -> str:
        return f"{self.case_id}"
