"""The data each step must capture, and what it records besides the state change.

Each row of the workflow table (`mediation.cases.workflow`) names its `Step`. The step's form
validates the input (the same form serves the admin, the web pages and the API, and the service
runs it again under the case lock), including every agency the step hands the case to
(`TargetField`, checked against `workflow.targets`); `kwargs()` gives the transition method
exactly its keyword arguments; `record()` writes the step's own rows (agreement, opinion,
extension, referral) inside the service's transaction and returns what goes into the audit
event's data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.db import models
from django.utils.translation import gettext_lazy as _

from mediation.accounts.models import Role, User
from mediation.agencies.models import Agency, AgencyKind
from mediation.agencies.selectors import agency_chain_ids
from mediation.cases import workflow
from mediation.cases.models import (
    Agreement,
    AgreementForm,
    AppliesTo,
    Case,
    Category,
    Extension,
    Opinion,
    OpinionResult,
    OpinionStage,
    Referral,
    ReferralKind,
    ReferralStatus,
    RiskLevel,
)


@dataclass
class StepContext:
    case: Case
    actor: User
    now: dt.datetime
    today: dt.date
    cleaned: dict[str, Any] = field(default_factory=dict)
    referral: Referral | None = None
    # The holder before the transition ran (`record()` runs after it).
    from_holder: int | None = None
    # The referral the step opened (交办, 转送), for the hand-off notice.
    opened: Referral | None = None
    # The validated step form (a case-file action reads what its form checked).
    form: Any = None
    # Files a case-file action wrote to storage (removed again if the transaction fails).
    stored_files: list[str] = field(default_factory=list)


# Forms -------------------------------------------------------------------------------------


class StepForm(forms.Form):
    """Base form: knows the case, the actor and today's date (Asia/Shanghai)."""

    note = forms.CharField(label=_("备注"), required=False, widget=forms.Textarea, max_length=2000)

    def __init__(self, *args: Any, case: Case, actor: User, today: dt.date, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.case = case
        self.actor = actor
        self.today = today

    # Dates far outside any plausible case are typos; refusing them keeps the deadline
    # arithmetic within range (a 9999-12-30 performance date would overflow).
    EARLIEST = dt.date(1990, 1, 1)
    LATEST = dt.date(2199, 12, 31)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for name, value in list(data.items()):
            if isinstance(value, dt.datetime):
                value = value.date()
            if isinstance(value, dt.date) and not (self.EARLIEST <= value <= self.LATEST):
                self.add_error(
                    name,
                    _("日期超出有效范围（%(a)s 至 %(b)s）。")
                    % {"a": self.EARLIEST.isoformat(), "b": self.LATEST.isoformat()},
                )
        return data

    def clean_not_future(self, name: str) -> dt.date | None:
        value = self.cleaned_data.get(name)
        if value and value > self.today:
            raise forms.ValidationError(_("日期不能晚于今天。"))
        return value

    def set_targets(self, name: str, step: str) -> workflow.Targets:
        """Offer (and accept) in field `name` only the agencies step `step` may hand the case
        to (`workflow.targets`); any other is refused with the reason."""
        found = workflow.targets(step, self.case, self.actor)
        field = self.fields[name]
        assert isinstance(field, TargetField)
        field.queryset = found.queryset()  # read only if the form is rendered
        field.problem = found.problem
        field.lookup = found.lookup
        return found


class TargetField(forms.ModelChoiceField):
    """An agency a step hands the case to. Offers the valid targets; a submitted id of any
    other agency is refused with the reason (`workflow.Targets.problem`), not Django's bare
    "select a valid choice". Ids are ASCII digits only."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", Agency.objects.none())
        super().__init__(*args, **kwargs)
        self.problem: Any = None
        # Reads one submitted agency (`workflow.Targets.lookup`: with what `problem` asks).
        self.lookup: Any = None

    def to_python(self, value: Any) -> Agency | None:
        if value in self.empty_values:
            return None
        if isinstance(value, Agency):
            agency = value
        else:
            text = str(value).strip()
            if not (text.isascii() and text.isdigit()) or len(text) > 18:
                raise forms.ValidationError(_("请选择有效的机构。"), code="invalid_choice")
            agency_id = int(text)
            if self.lookup is not None:
                agency = self.lookup(agency_id)
            else:
                agency = Agency.objects.filter(pk=agency_id).first()
            if agency is None:
                raise forms.ValidationError(_("所选机构不存在。"), code="invalid_choice")
        if self.problem is not None:
            message = self.problem(agency)
            if message:
                raise forms.ValidationError(message, code="invalid_choice")
        return agency

    def validate(self, value: Any) -> None:
        forms.Field.validate(self, value)


class ReasonForm(StepForm):
    reason = forms.CharField(label=_("理由"), max_length=2000, widget=forms.Textarea)


class TriageForm(StepForm):
    risk_level = forms.ChoiceField(label=_("风险等级"), choices=RiskLevel.choices)
    category = forms.ModelChoiceField(
        label=_("纠纷类型"), queryset=Category.objects.filter(is_active=True), required=False
    )


# 警调对接 comes from a police station, 诉调对接 (委派调解) from a court: the kind of referral
# follows from who sends it (or registered the case), not from a free choice.
_REFERRAL_SOURCE = {
    ReferralKind.POLICE_MEDIATION: AgencyKind.POLICE_STATION,
    ReferralKind.COURT_MEDIATION: AgencyKind.PEOPLES_COURT,
}


class AssignForm(StepForm):
    to_agency = TargetField(label=_("交办至"))
    referral_kind = forms.ChoiceField(label=_("对接类型"), choices=(), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_targets("to_agency", "assign")
        sources = {self.actor.agency.kind if self.actor.agency_id else None}
        sources.add(self.case.registering_agency.kind)
        kinds = [ReferralKind.ASSIGN] + [k for k, src in _REFERRAL_SOURCE.items() if src in sources]
        field = self.fields["referral_kind"]
        field.choices = [(k, k.label) for k in kinds]
        field.initial = kinds[-1]

    def clean_referral_kind(self) -> str:
        value = self.cleaned_data.get("referral_kind") or self.fields["referral_kind"].initial
        return value


class AcceptDisputeForm(StepForm):
    """受理登记 (人民调解若干规定: 受理 must be 登记): the date and the mediator in charge."""

    accepted_on = forms.DateField(label=_("受理日期"), required=False)
    assignee = forms.ModelChoiceField(
        label=_("承办调解员"), queryset=User.objects.filter(is_active=True), required=False
    )

    def clean_accepted_on(self) -> dt.date:
        return self.clean_not_future("accepted_on") or self.today

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["assignee"]
        field.queryset = field.queryset.filter(agency_id=self.actor.agency_id)

    def clean_assignee(self) -> User | None:
        user = self.cleaned_data.get("assignee")
        if user is not None and user.agency_id != self.actor.agency_id:
            raise forms.ValidationError(_("承办人必须是本机构人员。"))
        return user


TRANSFER_TARGETS = [
    ("litigation", _("诉讼")),
    ("arbitration", _("仲裁")),
    ("administrative", _("行政机关处理")),
    ("criminal", _("公安机关立案（110）")),
    ("enforcement", _("申请强制执行")),
]


class TransferForm(StepForm):
    target = forms.ChoiceField(label=_("转出去向"), choices=TRANSFER_TARGETS)
    external_reference = forms.CharField(label=_("外部案号"), max_length=100, required=False)


class ExtendDisputeForm(StepForm):
    reason = forms.CharField(label=_("延期理由"), max_length=2000, widget=forms.Textarea)
    extra_days = forms.IntegerField(label=_("延长天数"), min_value=1, max_value=90)
    parties_consented = forms.BooleanField(
        label=_("双方当事人同意延期"),
        error_messages={"required": _("调解延期须经双方当事人同意。")},
    )


class SuspendForm(StepForm):
    """中止 pauses the mediation period from today; 恢复 ends the pause the day before."""

    reason = forms.CharField(label=_("中止理由（如鉴定）"), max_length=2000)


# 人民调解法 Art 29: the agreement states the parties' matters, the terms, and how and by when
# they are performed; a few characters cannot say that.
AGREEMENT_MIN_LENGTH = 15


def _agreement_text(value: str) -> str:
    text = (value or "").strip()
    if len(text) < AGREEMENT_MIN_LENGTH:
        raise forms.ValidationError(
            _(
                "协议内容过短：请写明协议事项、履行方式和期限（人民调解法第二十九条），"
                "不少于 %(n)d 字。"
            )
            % {"n": AGREEMENT_MIN_LENGTH}
        )
    return text


class AgreementStepForm(StepForm):
    form = forms.ChoiceField(
        label=_("协议形式"),
        choices=[
            (AgreementForm.WRITTEN, AgreementForm.WRITTEN.label),
            (AgreementForm.ORAL, AgreementForm.ORAL.label),
        ],
    )
    text = forms.CharField(label=_("协议内容"), widget=forms.Textarea, max_length=20000)
    effective_on = forms.DateField(label=_("生效日期"), required=False)
    performance_due_on = forms.DateField(label=_("履行期限"), required=False)

    def clean_effective_on(self) -> dt.date:
        return self.clean_not_future("effective_on") or self.today

    def clean_text(self) -> str:
        return _agreement_text(self.cleaned_data.get("text", ""))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        eff, perf = data.get("effective_on"), data.get("performance_due_on")
        if eff and perf and perf < eff:
            self.add_error("performance_due_on", _("履行期限不能早于协议生效日期。"))
        return data


class CloseFailedForm(StepForm):
    reason = forms.CharField(label=_("终止理由"), max_length=2000, widget=forms.Textarea)
    routes_explained = forms.BooleanField(
        label=_("已告知当事人可通过仲裁、行政、司法等途径解决"),
        error_messages={
            "required": _("终止调解须告知当事人其他解决途径（人民调解法第二十六条）。")
        },
    )


class EscalateForm(StepForm):
    """上交: up the ladder (village → 乡镇调委会 → 综治中心, 人民调解若干规定 Art 21)."""

    to_agency = TargetField(
        label=_("上交至"), required=False, help_text=_("不选则上交最近的上级调解组织")
    )
    reason = forms.CharField(label=_("上交理由"), max_length=2000)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._targets = self.set_targets("to_agency", "escalate")

    def clean_to_agency(self) -> Agency:
        agency = self.cleaned_data.get("to_agency")
        if agency is not None:
            return agency
        # The nearest agency up the tree that can take the case on.
        for agency_id in agency_chain_ids(self.case.holder_agency_id)[1:]:
            if agency_id in self._targets.allowed:
                return Agency.objects.get(pk=agency_id)
        raise forms.ValidationError(_("本机构没有可以接收上交的上级机构，请联系督办人员。"))


class ApplyConfirmationForm(StepForm):
    """司法确认: the parties apply jointly to a court (人民调解法 Art 33; 民诉法 Art 205), which
    then records its own ruling."""

    court = TargetField(label=_("受理法院"))
    applied_on = forms.DateField(label=_("申请日期"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_targets("court", "court")

    def clean_applied_on(self) -> dt.date:
        return self.clean_not_future("applied_on") or self.today


class ConfirmForm(StepForm):
    ruling_number = forms.CharField(label=_("确认裁定书案号"), max_length=100)
    decided_on = forms.DateField(label=_("裁定日期"), required=False)

    def clean_decided_on(self) -> dt.date:
        return self.clean_not_future("decided_on") or self.today


class FollowUpForm(StepForm):
    visited_on = forms.DateField(label=_("回访日期"), required=False)
    performed = forms.BooleanField(label=_("协议已履行"), required=False)
    satisfaction = forms.ChoiceField(
        label=_("满意度"),
        choices=[("satisfied", _("满意")), ("basic", _("基本满意")), ("unsatisfied", _("不满意"))],
    )

    def clean_visited_on(self) -> dt.date:
        return self.clean_not_future("visited_on") or self.today

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("performed"):
            raise forms.ValidationError(_("协议未履行的，请选择“未履行，重新调解”或转出。"))
        return data


class RegisterPetitionForm(StepForm):
    petition_type = forms.ChoiceField(
        label=_("信访类型"),
        choices=[
            ("suggestion", _("建议意见")),
            ("accusation", _("检举控告")),
            ("complaint", _("申诉求决")),
        ],
    )


class ForwardForm(StepForm):
    to_agency = TargetField(label=_("转送/交办至"))
    mode = forms.ChoiceField(
        label=_("方式"),
        choices=[(ReferralKind.FORWARD, _("转送")), (ReferralKind.ASSIGN, _("交办"))],
    )
    report_due = forms.DateField(label=_("报告办理结果期限（交办）"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_targets("to_agency", "forward")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("mode") == ReferralKind.ASSIGN and not data.get("report_due"):
            self.add_error(
                "report_due", _("交办须设定报告办理结果的期限（信访工作条例第二十二条）。")
            )
        due = data.get("report_due")
        if due and due <= self.today:
            self.add_error("report_due", _("报告期限须晚于今天。"))
        return data


class AcceptPetitionForm(StepForm):
    accepted_on = forms.DateField(label=_("受理日期"), required=False)
    notice_served_on = forms.DateField(label=_("受理告知书送达日期"), required=False)

    def clean_accepted_on(self) -> dt.date:
        return self.clean_not_future("accepted_on") or self.today

    def clean_notice_served_on(self) -> dt.date | None:
        return self.clean_not_future("notice_served_on")


NOT_ACCEPT_BASES = [
    ("same_matter_in_progress", _("同一事项正在办理（第十九条第三款）")),
    ("final", _("已复核终结（第三十六条第三款）")),
    ("litigation", _("涉法涉诉，导入政法渠道（第二十二条第二款）")),
    ("other", _("其他")),
]


class NotAcceptForm(StepForm):
    basis = forms.ChoiceField(label=_("依据"), choices=NOT_ACCEPT_BASES)
    reason = forms.CharField(label=_("理由"), max_length=2000, widget=forms.Textarea)


DIVERT_PROCEDURES = [
    ("litigation", _("诉讼")),
    ("arbitration", _("仲裁")),
    ("administrative_review", _("行政复议")),
    ("administrative_ruling", _("行政裁决")),
    ("party_appeal", _("党员申诉")),
]


class DivertForm(StepForm):
    procedure = forms.ChoiceField(label=_("法定程序"), choices=DIVERT_PROCEDURES)
    external_reference = forms.CharField(label=_("关联案号"), max_length=100, required=False)


class ExtendPetitionForm(StepForm):
    reason = forms.CharField(label=_("延期理由"), max_length=2000, widget=forms.Textarea)
    approver = forms.ModelChoiceField(
        label=_("批准人（机关负责人）"), queryset=User.objects.filter(is_active=True)
    )
    petitioner_notified_on = forms.DateField(label=_("告知信访人延期理由日期"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["approver"]
        holder = self.case.holder_agency
        field.queryset = field.queryset.filter(
            models.Q(agency_id=holder.pk) | models.Q(pk=holder.head_id)
        )

    def clean_approver(self) -> User:
        user = self.cleaned_data["approver"]
        holder = self.case.holder_agency
        if holder.head_id != user.pk and not (
            user.role == Role.SUPERVISOR and user.agency_id == holder.pk
        ):
            raise forms.ValidationError(_("延期须经本机关负责人批准（信访工作条例第三十四条）。"))
        return user

    def clean_petitioner_notified_on(self) -> dt.date | None:
        return self.clean_not_future("petitioner_notified_on")


class OpinionForm(StepForm):
    result = forms.ChoiceField(label=_("结论"), choices=OpinionResult.choices)
    text = forms.CharField(label=_("意见内容"), widget=forms.Textarea, max_length=20000)
    served_on = forms.DateField(label=_("送达日期"))

    def clean_served_on(self) -> dt.date | None:
        return self.clean_not_future("served_on")


class PetitionMediationForm(StepForm):
    form = forms.ChoiceField(
        label=_("协议形式"),
        choices=[
            (AgreementForm.WRITTEN, _("调解协议书")),
            (AgreementForm.SETTLEMENT, _("和解协议书")),
        ],
    )
    text = forms.CharField(label=_("协议内容"), widget=forms.Textarea, max_length=20000)
    effective_on = forms.DateField(label=_("生效日期"), required=False)

    def clean_effective_on(self) -> dt.date:
        return self.clean_not_future("effective_on") or self.today

    def clean_text(self) -> str:
        return _agreement_text(self.cleaned_data.get("text", ""))


class ClosePetitionForm(StepForm):
    reason = forms.ChoiceField(
        label=_("办结情形"),
        choices=[
            ("satisfied", _("信访人满意/无异议")),
            ("window_lapsed", _("申请复查/复核期限届满")),
            ("mediated", _("调解/和解结案")),
        ],
    )


class ReviewRequestForm(StepForm):
    """复查 / 复核 request, recorded by the organ it was made to (the actor's agency, which the
    workflow's REVIEWER rule admits only if it reviews the holder: 信访工作条例 Arts 35–36)."""

    received_on = forms.DateField(label=_("申请收到日期"), required=False)

    def clean_received_on(self) -> dt.date:
        return self.clean_not_future("received_on") or self.today


class ReferToMediationForm(StepForm):
    """访调对接 (信访工作条例 Art 33; 司法部/国家信访局 2025 意见): with both parties' consent the
    civil dispute inside a petition goes to a people's mediation committee as a dispute of its
    own, with a dispute's title and category, chosen here."""

    to_agency = TargetField(label=_("接收的人民调解委员会"))
    title = forms.CharField(
        label=_("纠纷名称"),
        max_length=200,
        help_text=_("按矛盾纠纷命名，如“张某与李某宅基地界址纠纷”。"),
    )
    category = forms.ModelChoiceField(label=_("纠纷类型"), queryset=Category.objects.none())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_targets("to_agency", "refer_to_mediation")
        self.fields["category"].queryset = Category.objects.filter(
            is_active=True, applies_to__in=[AppliesTo.DISPUTE, AppliesTo.BOTH]
        )
        self.order_fields(["to_agency", "title", "category", "note"])

    def clean_title(self) -> str:
        title = (self.cleaned_data.get("title") or "").strip()
        if not title:
            raise forms.ValidationError(_("请填写纠纷名称。"))
        return title


# Steps -------------------------------------------------------------------------------------


class Step:
    form_class: type[StepForm] = StepForm

    def kwargs(self, ctx: StepContext) -> dict[str, Any]:
        return {}

    def record(self, ctx: StepContext) -> dict[str, Any]:
        return {}


def _iso(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "pk"):
        return value.pk
    return value


def _data(ctx: StepContext, *names: str) -> dict[str, Any]:
    return {n: _iso(ctx.cleaned.get(n)) for n in names if ctx.cleaned.get(n) not in (None, "")}


class ReasonStep(Step):
    form_class = ReasonForm

    def kwargs(self, ctx: StepContext) -> dict[str, Any]:
        return {"reason": ctx.cleaned["reason"]}

    def record(self, ctx: StepContext) -> dict[str, Any]:
        return _data(ctx, "reason")


class TriageStep(Step):
    form_class = TriageForm

    def kwargs(self, ctx: StepContext) -> dict[str, Any]:
        return {"risk_level": ctx.cleaned["risk_level"], "category": ctx.cleaned.get("category")}

    def record(self, ctx: StepContext) -> dict[str, Any]:
        return _data(ctx, "risk_level", "category")


def _open_referral(ctx: StepContext, *, to: Agency, kind: str, report_due=None) -> Referral:
    ctx.opened = Referral.objects.create(
        case=ctx.case,
        kind=kind,
        # The sending agency: the holder, or the supervisor's agency acting over it (a 综治中心
        # sending a committee's own walk-in back to the committee).
        from_agency_id=(
            ctx.actor.agency_id
            if ctx.actor.agency_id
            and ctx.actor.agency_id != ctx.case.holder_agency_id
            and to.pk == ctx.case.holder_agency_id
            else ctx.case.holder_agency_id
        ),
        to_agency=to,
        sent_by=ctx.actor,
        sent_at=ctx.now,
        report_due=report_due,
        note=ctx.cleaned.get("note", ""),
    )
    return ctx.opened


def _close_referral(ctx: StepContext, *, status: str, reason: str = "") -> None:
    ref = ctx.referral
    if ref is None:
        return
    ref.status = status
    ref.responded_by = ctx.actor
    ref.responded_at = ctx.now
    ref.return_reason = reason
    ref.save(update_fields=["status", "responded_by", "responded_at", "return_reason"])


class AssignStep(Step):
    form_class = AssignForm

    def record(self, ctx: StepContext) -> dict[str, Any]:
        kind = ctx.cleaned.get("referral_kind") or ReferralKind.ASSIGN
        ref = _open_referral(ctx, to=ctx.cleaned["to_agency"], kind=kind)
        return {"to_agency": ref.to_agency_id, "referral": ref.pk, "referral_kind": kind}


class AcceptDisputeStep(Step):
    """受理 of a referral (the receiver becomes the holder), or of the holder's own case."""

    form_class = AcceptDisputeForm

    def kwargs(self, ctx: StepContext) -> dict[str, Any]:
        out = {
            "accepted_on": ctx.cleaned["accepted_on"],
            "assignee": ctx.cleaned.get("assignee") or ctx.actor,
        }
        if ctx.referral is not None:
            out["agency_id"] = ctx.referral.to_agency_id
        return out

    def record(self, ctx: StepContext) -> dict[str, Any]:
        _close_referral(ctx, status=ReferralStatus.ACCEPTED)
        return _data(ctx, "accepted_on", "assignee")


class DeclineStep(ReasonStep):
    def kwargs(self, ctx: StepContext) -> dict[str, Any]:
        return {}

    def record(self, ctx: StepContext) -> dict[str, Any]:
        _close_referral(ctx, status=ReferralStatus.RETURNED, reason=ctx.cleaned["reason"])
        return _data(ctx, "reason")


class TransferStep(Step):
    form_class = TransferForm

    def kwargs(self, ctx: StepContext) -> dict[str, Any]:
        return {
            "target": ctx.cleaned["target"],
            "external_reference": ctx.cleaned.get("external_reference") or "",
        }

    def record(self, ctx: StepContext) -> dict[str, Any]:
        return _data(ctx, "target", "external_reference")


class ExtendDisputeStep(Step):
    form_class = ExtendDisputeForm

    def kwargs(self, ctx: StepContext) -> dict[str, Any]:
        return {"extra_days": ctx.cleaned["extra_days"]}

    def record(self, ctx: StepContext) -> dict[str, Any]:
        Extension.objects.create(
            case=ctx.case,
            reason=ctx.cleaned["reason"],
            extra_days=ctx.cleaned["extra_days"],
            parties_consented=True,
            recorded_by=ctx.actor,
            recorded_at=ctx.now,
        )
        return _data(ctx, "reason", "extra_days", "parties_consented")


class SuspendStep(Step):
    form_class = SuspendForm

    def record(self, ctx: StepContext) -> dict[str, Any]:
        return _data(ctx, "reason")


class AgreementStep(Step):
    form_class = AgreementStepForm

    def record(self, ctx: StepContext) -> dict[str, Any]:
        agreement = Agreement.objects.create(
            case=ctx.case,
            form=ctx.cleaned["form"],
            text=ctx.cleaned["text"],
            effective_on=ctx.cleaned["effective_on"],
            performance_due_on=ctx.cleaned.get("performance_due_on"),
            recorded_by=ctx.actor,
            recorded_at=ctx.now,
        )
        return {
            "agreement": agreement.pk,
            **_data(ctx, "form", "effective_on", "performance_due_on"),
        }


class CloseFailedStep(Step):
    form_class = CloseFailedForm

    def kwargs(self, ctx: StepContext) -> dict[str, Any]:
        return {"reason": ctx.cleaned["reason"]}

    def record(self, ctx: StepContext) -> dict[str, Any]:
        return _data(ctx, "reason", "routes_explained")


class EscalateStep(Step):
    form_class = EscalateForm

    def kwargs(self, ctx: StepContext) -> dict[str, Any]:
        return {"agency_id": ctx.cleaned["to_agency"].pk}

    def record(self, ctx: StepContext) -> dict[str, Any]:
        return {"from_agency": ctx.from_holder, **_data(ctx, "to_agency", "reason")}


class ApplyConfirmationStep(Step):
    form_class = ApplyConfirmationForm

    def kwargs(self, ctx: StepContext) -> dict[str, Any]:
        return {"applied_on": ctx.cleaned["applied_on"], "court_id": ctx.cleaned["court"].pk}

    def record(self, ctx: StepContext) -> dict[str, Any]:
        return _data(ctx, "court", "applied_on")


class ConfirmStep(Step):
    form_class = ConfirmForm

    def kwargs(self, ctx: StepContext) -> dict[str, Any]:
        return {"ruling_number": ctx.cleaned["ruling_number"]}

    def record(self, ctx: StepContext) -> dict[str, Any]:
        return _data(ctx, "ruling_number", "decided_on")


class RemediateStep(ReasonStep):
    def kwargs(self, ctx: StepContext) -> dict[str, Any]:
        return {"today": ctx.today}


class FollowUpStep(Step):
    """回访结案: the final follow-up visit (DOMAIN.md §3.3), kept beside the interim ones."""

    form_class = FollowUpForm

    def record(self, ctx: StepContext) -> dict[str, Any]:
        from mediation.casefiles.models import FollowUpVisit, Performance

        FollowUpVisit.objects.create(
            case=ctx.case,
            visited_on=ctx.cleaned["visited_on"],
            agreement=Agreement.objects.filter(case_id=ctx.case.pk)
            .order_by("-recorded_at")
            .first(),
            reason=str(_("结案回访")),
            performance=Performance.PERFORMED,
            satisfaction=ctx.cleaned["satisfaction"],
            final=True,
            visitor=ctx.actor,
            recorded_at=ctx.now,
        )
        return _data(ctx, "visited_on", "performed", "satisfaction")


class RegisterPetitionStep(Step):
    form_class = RegisterPetitionForm

    def record(self, ctx: StepContext) -> dict[str, Any]:
        ctx.case.petition_type = ctx.cleaned["petition_type"]
        if ctx.cleaned["petition_type"] == "accusation":
            ctx.case.involves_accusation = True
        return _data(ctx, "petition_type")


class ForwardStep(Step):
    form_class = ForwardForm

    def record(self, ctx: StepContext) -> dict[str, Any]:
        ref = _open_referral(
            ctx,
            to=ctx.cleaned["to_agency"],
            kind=ctx.cleaned["mode"],
            report_due=ctx.cleaned.get("report_due"),
        )
        return {"referral": ref.pk, **_data(ctx, "to_agency", "mode", "report_due")}


class AcceptPetitionStep(Step):
    form_class = AcceptPetitionForm

    def kwargs(self, ctx: StepContext) -> dict[str, Any]:
        return {"accepted_on": ctx.cleaned["accepted_on"]}

    def record(self, ctx: StepContext) -> dict[str, Any]:
        return _data(ctx, "accepted_on", "notice_served_on")


class AcceptForwardedStep(AcceptPetitionStep):
    def kwargs(self, ctx: StepContext) -> dict[str, Any]:
        return {"agency_id": ctx.actor.agency_id, "accepted_on": ctx.cleaned["accepted_on"]}

    def record(self, ctx: StepContext) -> dict[str, Any]:
        _close_referral(ctx, status=ReferralStatus.ACCEPTED)
        return super().record(ctx)


class NotAcceptStep(Step):
    form_class = NotAcceptForm

    def kwargs(self, ctx: StepContext) -> dict[str, Any]:
        return {"reason": ctx.cleaned["reason"]}

    def record(self, ctx: StepContext) -> dict[str, Any]:
        return _data(ctx, "basis", "reason")


class DivertStep(Step):
    form_class = DivertForm

    def kwargs(self, ctx: StepContext) -> dict[str, Any]:
        return {
            "procedure": ctx.cleaned["procedure"],
            "external_reference": ctx.cleaned.get("external_reference") or "",
        }

    def record(self, ctx: StepContext) -> dict[str, Any]:
        return _data(ctx, "procedure", "external_reference")


class ExtendPetitionStep(Step):
    form_class = ExtendPetitionForm

    def record(self, ctx: StepContext) -> dict[str, Any]:
        Extension.objects.create(
            case=ctx.case,
            reason=ctx.cleaned["reason"],
            extra_days=30,
            approved_by=ctx.cleaned["approver"],
            petitioner_notified_on=ctx.cleaned["petitioner_notified_on"],
            recorded_by=ctx.actor,
            recorded_at=ctx.now,
        )
        return _data(ctx, "reason", "approver", "petitioner_notified_on")


class OpinionStep(Step):
    form_class = OpinionForm
    stage = OpinionStage.HANDLING

    def record(self, ctx: StepContext) -> dict[str, Any]:
        opinion = Opinion.objects.create(
            case=ctx.case,
            stage=self.stage,
            result=ctx.cleaned["result"],
            text=ctx.cleaned["text"],
            served_on=ctx.cleaned["served_on"],
            issued_by=ctx.actor,
            issuing_agency_id=ctx.case.holder_agency_id,
            issued_at=ctx.now,
        )
        return {"opinion": opinion.pk, "stage": self.stage, **_data(ctx, "result", "served_on")}


class ReviewOpinionStep(OpinionStep):
    stage = OpinionStage.REVIEW


class RereviewOpinionStep(OpinionStep):
    stage = OpinionStage.REREVIEW


class PetitionMediationStep(Step):
    form_class = PetitionMediationForm

    def record(self, ctx: StepContext) -> dict[str, Any]:
        agreement = Agreement.objects.create(
            case=ctx.case,
            form=ctx.cleaned["form"],
            text=ctx.cleaned["text"],
            effective_on=ctx.cleaned["effective_on"],
            recorded_by=ctx.actor,
            recorded_at=ctx.now,
        )
        return {"agreement": agreement.pk, **_data(ctx, "form", "effective_on")}


class ClosePetitionStep(Step):
    form_class = ClosePetitionForm

    def kwargs(self, ctx: StepContext) -> dict[str, Any]:
        return {"reason": ctx.cleaned["reason"]}

    def record(self, ctx: StepContext) -> dict[str, Any]:
        return _data(ctx, "reason")


class ReviewRequestStep(Step):
    """The reviewing organ (the actor's agency) takes the matter over (Arts 35–36)."""

    form_class = ReviewRequestForm

    def kwargs(self, ctx: StepContext) -> dict[str, Any]:
        return {"agency_id": ctx.actor.agency_id, "received_on": ctx.cleaned["received_on"]}

    def record(self, ctx: StepContext) -> dict[str, Any]:
        return {
            "from_agency": ctx.from_holder,
            "to_agency": ctx.actor.agency_id,
            **_data(ctx, "received_on"),
        }


class ObjectionStep(ReasonStep):
    def kwargs(self, ctx: StepContext) -> dict[str, Any]:
        return {}

    def record(self, ctx: StepContext) -> dict[str, Any]:
        _close_referral(ctx, status=ReferralStatus.RETURNED, reason=ctx.cleaned["reason"])
        return _data(ctx, "reason")


class ReferToMediationStep(Step):
    """访调对接: the service (`petition_refer_to_mediation`) opens the dispute; the form is this."""

    form_class = ReferToMediationForm


# The case file's actions (卷宗, issue 13): service actions that keep the state --------------


class UploadAttachmentForm(StepForm):
    """证据材料, 身份证明, 履行凭证… : a file of the case file, checked by its real content
    type and size (`casefiles.content.check`), stored under a name the system chooses."""

    file = forms.FileField(label=_("文件"), allow_empty_file=False, max_length=1000)
    doc_type = forms.ChoiceField(label=_("材料类型"), choices=())
    description = forms.CharField(label=_("说明"), max_length=500, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from mediation.casefiles.models import DocumentType

        super().__init__(*args, **kwargs)
        self.fields["doc_type"].choices = DocumentType.choices
        self.fields.pop("note")

    def clean_file(self) -> Any:
        from mediation.casefiles import content

        upload = self.cleaned_data.get("file")
        if upload is None:
            return upload
        try:
            self.checked = content.check(upload, size=upload.size)
        except content.Refused as exc:
            raise forms.ValidationError(str(exc)) from None
        return upload


class WithdrawAttachmentForm(StepForm):
    attachment = forms.ModelChoiceField(label=_("材料"), queryset=None)
    reason = forms.CharField(label=_("撤回理由"), max_length=500)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from mediation.casefiles.models import Attachment

        super().__init__(*args, **kwargs)
        self.fields["attachment"].queryset = Attachment.objects.filter(
            case_id=self.case.pk, withdrawn_at__isnull=True
        )
        self.fields.pop("note")


class SessionForm(StepForm):
    """调解记录 / 笔录 (人民调解法 Art 27): when, where, who mediated, who was there, what was
    said and agreed."""

    started_at = forms.DateTimeField(
        label=_("调解时间"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
    )
    place = forms.CharField(label=_("调解地点"), max_length=200)
    mediators = forms.CharField(label=_("调解员"), max_length=300)
    parties_present = forms.ModelMultipleChoiceField(
        label=_("到场当事人"), queryset=None, required=False, widget=forms.CheckboxSelectMultiple
    )
    others_present = forms.CharField(label=_("其他在场人员"), max_length=500, required=False)
    content = forms.CharField(label=_("调解记录内容"), widget=forms.Textarea, max_length=20000)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from mediation.cases.models import CaseParty

        super().__init__(*args, **kwargs)
        self.fields.pop("note")
        self.fields["parties_present"].queryset = CaseParty.objects.filter(
            case_id=self.case.pk
        ).select_related("party")
        self.fields["parties_present"].label_from_instance = lambda cp: (
            f"{cp.get_role_display()} {cp.party.name}"
        )
        names = self.case.assignee.display_name if self.case.assignee_id else ""
        self.fields["mediators"].initial = names or (str(self.actor) if self.actor else "")

    def clean_started_at(self) -> dt.datetime:
        value = self.cleaned_data["started_at"]
        if not (self.EARLIEST.year <= value.year <= self.LATEST.year):
            raise forms.ValidationError(_("日期超出有效范围。"))
        return value


class FollowUpVisitForm(StepForm):
    """回访记录 (DOMAIN.md §3.3): an interim visit while the agreement is performed."""

    visited_on = forms.DateField(label=_("回访日期"), required=False)
    visited_party = forms.ModelChoiceField(label=_("被回访人"), queryset=None, required=False)
    agreement = forms.ModelChoiceField(label=_("调解协议"), queryset=None, required=False)
    reason = forms.CharField(label=_("回访事由"), max_length=500)
    performance = forms.ChoiceField(label=_("履行情况"), choices=())
    satisfaction = forms.ChoiceField(label=_("当事人满意度"), choices=())
    lawsuit = forms.BooleanField(label=_("当事人已起诉"), required=False)
    risk = forms.ChoiceField(label=_("有无激化风险"), choices=())
    measures = forms.CharField(
        label=_("采取的措施"), widget=forms.Textarea, max_length=5000, required=False
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from mediation.casefiles.models import EscalationRisk, Performance, Satisfaction
        from mediation.cases.models import CaseParty

        super().__init__(*args, **kwargs)
        self.fields.pop("note")
        self.fields["visited_party"].queryset = CaseParty.objects.filter(
            case_id=self.case.pk
        ).select_related("party")
        self.fields["visited_party"].label_from_instance = lambda cp: (
            f"{cp.get_role_display()} {cp.party.name}"
        )
        self.fields["agreement"].queryset = Agreement.objects.filter(case_id=self.case.pk)
        self.fields["agreement"].label_from_instance = lambda a: (
            f"{a.get_form_display()} {a.effective_on:%Y-%m-%d}"
        )
        self.fields["performance"].choices = Performance.choices
        self.fields["satisfaction"].choices = Satisfaction.choices
        self.fields["risk"].choices = EscalationRisk.choices

    def clean_visited_on(self) -> dt.date:
        return self.clean_not_future("visited_on") or self.today


class OralAgreementForm(StepForm):
    """口头协议登记表 (人民调解法 Art 28): the content of an oral agreement as recorded by the
    mediator, confirmed by the parties."""

    agreement = forms.ModelChoiceField(label=_("口头协议"), queryset=None)
    facts = forms.CharField(label=_("纠纷简要情况"), widget=forms.Textarea, max_length=5000)
    content = forms.CharField(label=_("协议内容"), widget=forms.Textarea, max_length=20000)
    performance = forms.CharField(label=_("履行方式和期限"), max_length=500, required=False)
    parties_confirmed = forms.BooleanField(
        label=_("已向当事人宣读，当事人确认无误"),
        error_messages={"required": _("口头协议须经当事人确认后登记。")},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields.pop("note")
        oral = Agreement.objects.filter(
            case_id=self.case.pk, form=AgreementForm.ORAL, oral_record__isnull=True
        )
        self.fields["agreement"].queryset = oral
        self.fields["agreement"].label_from_instance = lambda a: (
            f"{a.get_form_display()} {a.effective_on:%Y-%m-%d}"
        )
        first = oral.first()
        if first is not None:
            self.fields["agreement"].initial = first.pk
            self.fields["content"].initial = first.text
        self.fields["facts"].initial = self.case.description


class UploadAttachmentStep(Step):
    form_class = UploadAttachmentForm

    def record(self, ctx: StepContext) -> dict[str, Any]:
        from mediation.casefiles import content
        from mediation.casefiles.models import Attachment

        upload = ctx.cleaned["file"]
        checked = ctx.form.checked
        stored = content.store(upload, case_id=ctx.case.pk, content_type=checked.content_type)
        ctx.stored_files.append(stored)
        row = Attachment.objects.create(
            case=ctx.case,
            doc_type=ctx.cleaned["doc_type"],
            description=ctx.cleaned.get("description", ""),
            original_name=content.display_name(upload.name),
            stored_name=stored,
            content_type=checked.content_type,
            size=checked.size,
            sha256=checked.sha256,
            pages=checked.pages,
            uploaded_by=ctx.actor,
            uploaded_by_agency_id=ctx.actor.agency_id,
            uploaded_at=ctx.now,
        )
        return {"attachment": row.pk, "doc_type": row.doc_type, "file_name": row.original_name}


class WithdrawAttachmentStep(Step):
    form_class = WithdrawAttachmentForm

    def record(self, ctx: StepContext) -> dict[str, Any]:
        row = ctx.cleaned["attachment"]
        row.withdrawn_at = ctx.now
        row.withdrawn_by = ctx.actor
        row.withdraw_reason = ctx.cleaned["reason"]
        row.save(update_fields=["withdrawn_at", "withdrawn_by", "withdraw_reason"])
        return {
            "attachment": row.pk,
            "doc_type": row.doc_type,
            "file_name": row.original_name,
            "reason": row.withdraw_reason,
        }


class SessionStep(Step):
    form_class = SessionForm

    def record(self, ctx: StepContext) -> dict[str, Any]:
        from mediation.casefiles.models import MediationSession

        c = ctx.cleaned
        row = MediationSession.objects.create(
            case=ctx.case,
            started_at=c["started_at"],
            place=c["place"],
            mediators=c["mediators"],
            others_present=c.get("others_present", ""),
            content=c["content"],
            recorded_by=ctx.actor,
            recorded_at=ctx.now,
        )
        row.parties_present.set(c.get("parties_present") or [])
        return {
            "session": row.pk,
            "session_at": row.started_at.isoformat(),
            "place": row.place,
            "mediators": row.mediators,
        }


class FollowUpVisitStep(Step):
    form_class = FollowUpVisitForm

    def record(self, ctx: StepContext) -> dict[str, Any]:
        from mediation.casefiles.models import FollowUpVisit

        c = ctx.cleaned
        row = FollowUpVisit.objects.create(
            case=ctx.case,
            visited_on=c["visited_on"],
            visited_party=c.get("visited_party"),
            agreement=c.get("agreement"),
            reason=c["reason"],
            performance=c["performance"],
            satisfaction=c["satisfaction"],
            lawsuit=bool(c.get("lawsuit")),
            risk=c["risk"],
            measures=c.get("measures", ""),
            visitor=ctx.actor,
            recorded_at=ctx.now,
        )
        return {
            "visit": row.pk,
            **_data(ctx, "visited_on", "performance", "satisfaction", "risk"),
        }


class OralAgreementStep(Step):
    form_class = OralAgreementForm

    def record(self, ctx: StepContext) -> dict[str, Any]:
        from mediation.casefiles.models import OralAgreementRecord

        c = ctx.cleaned
        row = OralAgreementRecord.objects.create(
            case=ctx.case,
            agreement=c["agreement"],
            facts=c["facts"],
            content=c["content"],
            performance=c.get("performance", ""),
            parties_confirmed=True,
            registered_by=ctx.actor,
            registered_at=ctx.now,
        )
        return {"oral_record": row.pk, "agreement": row.agreement_id}
