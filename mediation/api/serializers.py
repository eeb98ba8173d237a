"""Serializers: explicit fields only. ID numbers leave the server masked, or through the logged
reveal endpoint; `id_number_encrypted` and `id_number_hash` are never fields here.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from mediation.accounts.models import User
from mediation.agencies.models import Agency
from mediation.api.strict import StrictTypesMixin
from mediation.cases.labels import rule_label
from mediation.cases.models import (
    Case,
    CaseEvent,
    CaseKind,
    CasePartyRole,
    Category,
    Channel,
    MediationTrack,
    PetitionType,
    RiskLevel,
)
from mediation.cases.selectors import (
    CaseDetail,
    PartyView,
    cases_visible_to,
    event_data_for,
    redact,
)
from mediation.cases.services import PartyInput
from mediation.core.limits import INSTRUCTION_MAX_LENGTH, NOTE_MAX_LENGTH, REASON_MAX_LENGTH
from mediation.core.text import validate_visible_text
from mediation.deadlines.models import Clock, ClockStatus
from mediation.deadlines.policy import RULES, ClockKind, working_days_between

MAX_ID = 2**63 - 1
MAX_INT = 2**31 - 1
HIDDEN = "（保密）"
# Dates outside these years are typing errors; refusing them here keeps date arithmetic in the
# services (clock due dates, end of day) far from the limits of `datetime.date`.
PLAUSIBLE_YEARS = (1900, 2199)
# Beyond this many days between today and a due date, remaining working days are not counted
# (null): such dates are data-entry errors, and counting them day by day costs real time.
REMAINING_DAYS_HORIZON = 3660


def plausible_date(value: dt.date) -> None:
    lo, hi = PLAUSIBLE_YEARS
    if not lo <= value.year <= hi:
        raise serializers.ValidationError(
            _("日期须在 %(lo)s 年至 %(hi)s 年之间。") % {"lo": lo, "hi": hi}
        )


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="稳定的错误代码，例如 invalid、not_found、stale")
    message = serializers.CharField(help_text="用户语言的说明（默认简体中文）")
    details = serializers.DictField(help_text="字段错误等细节", child=serializers.JSONField())


# References -------------------------------------------------------------------------------


class AgencyRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class UserRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.SerializerMethodField()

    def get_name(self, user: User) -> str:
        return str(user)


class CategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["id", "code", "name", "applies_to", "is_active"]
        read_only_fields = fields


class ChannelSerializer(serializers.ModelSerializer):
    class Meta:
        model = Channel
        fields = ["id", "code", "name", "is_active"]
        read_only_fields = fields


class CodeRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()


class AgencySerializer(serializers.ModelSerializer):
    """No `webhook_url`: group-robot URLs carry their secret key."""

    kind_label = serializers.CharField(source="get_kind_display", read_only=True)
    level_label = serializers.CharField(source="get_level_display", read_only=True)

    class Meta:
        model = Agency
        fields = ["id", "code", "name", "kind", "kind_label", "level", "level_label", "parent"]
        fields += ["is_active"]
        read_only_fields = fields


class CachedFieldsMixin:
    """A ModelSerializer that builds its fields from the model once per class, not once per
    instance: `ModelSerializer.get_fields()` introspects the model every time (about half
    the cost of serializing one case). The fields depend only on the class and its Meta, so
    each instance gets a deep copy of the first build, as DRF does for declared fields."""

    def get_fields(self) -> dict[str, serializers.Field]:
        cls = type(self)
        built = cls.__dict__.get("_built_fields")
        if built is None:
            built = super().get_fields()  # type: ignore[misc]
            cls._built_fields = built  # type: ignore[attr-defined]
        return copy.deepcopy(built)


# Cases ------------------------------------------------------------------------------------


class CaseListSerializer(CachedFieldsMixin, serializers.ModelSerializer):
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)
    state_label = serializers.CharField(read_only=True)
    holder_agency = AgencyRefSerializer(read_only=True)
    category = CodeRefSerializer(read_only=True, allow_null=True)
    channel = CodeRefSerializer(read_only=True)
    next_due = serializers.SerializerMethodField(help_text="最近的办理期限到期日")
    overdue = serializers.SerializerMethodField(help_text="是否有已逾期的办理期限")
    # Blank for disputes (the model's blank choice), one of the types for petitions.
    petition_type = serializers.ChoiceField(
        choices=PetitionType.choices, allow_blank=True, read_only=True
    )

    class Meta:
        model = Case
        fields = [
            "id",
            "number",
            "kind",
            "kind_label",
            "state",
            "state_label",
            "title",
            "holder_agency",
            "category",
            "channel",
            "received_on",
            "registered_at",
            "risk_level",
            "petition_type",
            "involves_accusation",
            "supervised",
            "version",
            "closed_at",
            "next_due",
            "overdue",
        ]
        read_only_fields = fields

    def _duty_clocks(self, case: Case) -> list[Clock]:
        clocks = getattr(case, "live_duty_clocks", None)
        if clocks is None:
            clocks = list(
                case.clocks.filter(
                    status__in=[ClockStatus.RUNNING, ClockStatus.PAUSED], kind=ClockKind.DUTY.value
                ).order_by("due_at")
            )
            case.live_duty_clocks = clocks
        return clocks

    def get_next_due(self, case: Case) -> dt.date | None:
        clocks = self._duty_clocks(case)
        return clocks[0].due if clocks else None

    def get_overdue(self, case: Case) -> bool:
        now = self.context["now"]
        return any(
            c.status == ClockStatus.RUNNING and c.due_at < now for c in self._duty_clocks(case)
        )


class PartySerializer(serializers.Serializer):
    """A case party as the viewer may see it (`mediation.cases.selectors.case_parties`). For
    users from whom the petitioner's identity is hidden (检举控告, 信访工作条例 Art 30 ¶3) every
    identifying field reads "（保密）" and the id is null."""

    id = serializers.IntegerField(allow_null=True)
    role = serializers.CharField()
    role_label = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()
    phone = serializers.CharField(
        help_text="前3后4（138****1234）；完整号码须经查看接口并记录（reveal-phone）"
    )
    address = serializers.CharField()
    id_number_masked = serializers.CharField(help_text="前3后4；完整号码须经查看接口并记录")
    has_id_number = serializers.BooleanField(allow_null=True)
    is_minor = serializers.BooleanField(allow_null=True, help_text="登记时未满14周岁")
    identity_hidden = serializers.BooleanField()

    def to_representation(self, p: PartyView) -> dict[str, Any]:
        return {
            "id": p.party_id,
            "role": p.role,
            "role_label": p.role_label,
            "name": p.name,
            "kind": p.kind,
            "phone": p.masked_phone,
            "address": p.address,
            "id_number_masked": p.id_number_masked,
            "has_id_number": p.has_id_number,
            "is_minor": p.is_minor,
            "identity_hidden": p.identity_hidden,
        }


class AgreementSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    form = serializers.CharField()
    form_label = serializers.CharField(source="get_form_display")
    text = serializers.CharField()
    effective_on = serializers.DateField()
    performance_due_on = serializers.DateField(allow_null=True)
    recorded_at = serializers.DateTimeField()


class NextStepSerializer(serializers.Serializer):
    """Who may move the case on now: these agencies' staff with these roles, these steps."""

    actor = serializers.ChoiceField(
        choices=["holder", "receiver", "court", "reviewer"],
        help_text=(
            "holder 承办机构；receiver 移送接收机构；court 司法确认法院；reviewer 复查复核机关"
        ),
    )
    agencies = AgencyRefSerializer(many=True)
    roles = serializers.ListField(child=serializers.CharField())
    steps = serializers.ListField(child=serializers.DictField(child=serializers.CharField()))

    def to_representation(self, n: Any) -> dict[str, Any]:
        return {
            "actor": n.actor.value,
            "agencies": [{"id": a.pk, "name": a.name} for a in n.agencies],
            "roles": list(n.roles),
            "steps": [{"name": name, "label": label} for name, label in n.steps],
        }


class AccessSerializer(serializers.Serializer):
    full = serializers.BooleanField(help_text="承办方、待接收方或复查复核机关：全部信息")
    court = serializers.BooleanField(help_text="司法确认法院：调解协议和当事人")
    feedback = serializers.BooleanField(help_text="曾承办或移送本案：办理进展和结果（只读）")


class PendingReferralSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    from_agency = serializers.IntegerField(source="from_agency_id")
    to_agency = serializers.IntegerField(source="to_agency_id")
    sent_at = serializers.DateTimeField()
    report_due = serializers.DateField(allow_null=True)


class CaseDetailSerializer(CaseListSerializer):
    registering_agency = AgencyRefSerializer(read_only=True)
    accused_agency = AgencyRefSerializer(read_only=True, allow_null=True)
    assignee = UserRefSerializer(read_only=True, allow_null=True)
    parties = serializers.SerializerMethodField()
    pending_referral = serializers.SerializerMethodField()
    agreements = serializers.SerializerMethodField()
    next_steps = serializers.SerializerMethodField(help_text="下一步由谁办理")
    access = serializers.SerializerMethodField(help_text="本人对本案的查看范围")
    confirmation_court = AgencyRefSerializer(read_only=True, allow_null=True)

    class Meta(CaseListSerializer.Meta):
        fields = [
            *CaseListSerializer.Meta.fields,
            "description",
            "registering_agency",
            "assignee",
            "mediation_track",
            "accepted_on",
            "mediation_period_start",
            "extension_days",
            "collective",
            "headcount",
            "accused_agency",
            "repeat_of",
            "spawned_from",
            "review_requested_on",
            "rereview_requested_on",
            "confirmation_applied_on",
            "transfer_target",
            "external_reference",
            "outcome_note",
            "created_at",
            "updated_at",
            "confirmation_court",
            "parties",
            "agreements",
            "pending_referral",
            "next_steps",
            "access",
        ]
        read_only_fields = fields

    def _detail(self) -> CaseDetail:
        return self.context["detail"]

    def to_representation(self, case: Case) -> dict[str, Any]:
        data = super().to_representation(case)
        detail = self._detail()
        # 检举控告: protected names never reach the accused through free text either.
        data["title"] = detail.title
        data["description"] = detail.description
        data["outcome_note"] = detail.outcome_note
        return data

    @extend_schema_field(PartySerializer(many=True))
    def get_parties(self, case: Case) -> list[dict[str, Any]]:
        return PartySerializer(self._detail().parties, many=True).data

    @extend_schema_field(AgreementSerializer(many=True))
    def get_agreements(self, case: Case) -> list[dict[str, Any]]:
        return AgreementSerializer(self._detail().agreements, many=True).data

    @extend_schema_field(NextStepSerializer(many=True))
    def get_next_steps(self, case: Case) -> list[dict[str, Any]]:
        return NextStepSerializer(self._detail().next_steps, many=True).data

    @extend_schema_field(AccessSerializer)
    def get_access(self, case: Case) -> dict[str, bool]:
        a = self._detail().access
        return {"full": a.full, "court": a.court, "feedback": a.feedback}

    @extend_schema_field(PendingReferralSerializer(allow_null=True))
    def get_pending_referral(self, case: Case) -> dict[str, Any] | None:
        pending = [r for r in case.referrals.all() if r.status == "pending"]
        return PendingReferralSerializer(pending[0]).data if pending else None


class PartyInputSerializer(StrictTypesMixin, serializers.Serializer):
    name = serializers.CharField(max_length=200, validators=[validate_visible_text])
    role = serializers.ChoiceField(choices=CasePartyRole.choices)
    id_number = serializers.CharField(max_length=32, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True)
    address = serializers.CharField(max_length=255, required=False, allow_blank=True)
    # The party agreed to SMS about the case (the 查询码 and each step; issue 14).
    sms_consent = serializers.BooleanField(required=False, default=False)

    def to_party_input(self, data: dict[str, Any]) -> PartyInput:
        return PartyInput(
            name=data["name"],
            role=data["role"],
            id_number=data.get("id_number") or None,
            phone=data.get("phone", ""),
            address=data.get("address", ""),
            sms_consent=bool(data.get("sms_consent")),
        )


class _RegisterSerializer(StrictTypesMixin, serializers.Serializer):
    kind: str = ""

    title = serializers.CharField(max_length=200, validators=[validate_visible_text])
    description = serializers.CharField(max_length=20000, required=False, allow_blank=True)
    channel = serializers.PrimaryKeyRelatedField(queryset=Channel.objects.filter(is_active=True))
    category = serializers.PrimaryKeyRelatedField(
        queryset=Category.objects.none(), required=False, allow_null=True
    )
    received_on = serializers.DateField(validators=[plausible_date])
    parties = PartyInputSerializer(many=True, allow_empty=False, max_length=50)

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["category"].queryset = Category.objects.filter(
            is_active=True, applies_to__in=[self.kind, "both"]
        )
        return fields

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if hasattr(data, "get"):
            for name in ("channel", "category", "accused_agency", "repeat_of"):
                raw = data.get(name)
                if isinstance(raw, int) and not isinstance(raw, bool) and raw > MAX_ID:
                    raise serializers.ValidationError({name: [_("无效的编号。")]})
        return super().to_internal_value(data)

    def service_kwargs(self) -> dict[str, Any]:
        data = self.validated_data
        category = data.get("category")
        return {
            "title": data["title"],
            "description": data.get("description", ""),
            "channel_id": data["channel"].pk,
            "category_id": category.pk if category else None,
            "received_on": data["received_on"],
            "parties": [PartyInputSerializer().to_party_input(p) for p in data["parties"]],
        }


class DisputeRegisterSerializer(_RegisterSerializer):
    kind = CaseKind.DISPUTE

    mediation_track = serializers.ChoiceField(
        choices=MediationTrack.choices, default=MediationTrack.PEOPLE
    )
    risk_level = serializers.ChoiceField(choices=RiskLevel.choices, default=RiskLevel.LOW)

    def service_kwargs(self) -> dict[str, Any]:
        data = self.validated_data
        return {
            **super().service_kwargs(),
            "mediation_track": data["mediation_track"],
            "risk_level": data["risk_level"],
        }


class PetitionReceiveSerializer(_RegisterSerializer):
    kind = CaseKind.PETITION

    petition_type = serializers.ChoiceField(
        choices=PetitionType.choices, required=False, allow_blank=True
    )
    involves_accusation = serializers.BooleanField(default=False)
    collective = serializers.BooleanField(default=False)
    headcount = serializers.IntegerField(min_value=1, max_value=100_000, default=1)
    repeat_of = serializers.IntegerField(
        min_value=1,
        max_value=MAX_ID,
        required=False,
        allow_null=True,
        help_text="重复信访：原信访事项 id",
    )
    accused_agency = serializers.PrimaryKeyRelatedField(
        queryset=Agency.objects.all(), required=False, allow_null=True
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # As the web form: an accused agency only for a 检举控告 matter (信访工作条例 Art 30).
        accusation = attrs.get("involves_accusation") or (
            attrs.get("petition_type") == PetitionType.ACCUSATION
        )
        if attrs.get("accused_agency") is not None and not accusation:
            raise serializers.ValidationError(
                {"accused_agency": [_("只有检举控告事项需要填写被检举控告机构。")]}
            )
        return attrs

    def validate_repeat_of(self, value: int | None) -> int | None:
        if value is None:
            return None
        user = self.context["request"].user
        if not cases_visible_to(user).filter(pk=value, kind=CaseKind.PETITION).exists():
            raise serializers.ValidationError(_("原信访事项不存在或您无权查看。"))
        return value

    def service_kwargs(self) -> dict[str, Any]:
        data = self.validated_data
        accused = data.get("accused_agency")
        return {
            **super().service_kwargs(),
            "petition_type": data.get("petition_type", ""),
            "involves_accusation": data["involves_accusation"],
            "collective": data["collective"],
            "headcount": data["headcount"],
            "repeat_of_id": data.get("repeat_of"),
            "accused_agency_id": accused.pk if accused else None,
        }


# Events and clocks ------------------------------------------------------------------------


class EventSerializer(serializers.ModelSerializer):
    actor = UserRefSerializer(read_only=True, allow_null=True)
    actor_agency = AgencyRefSerializer(read_only=True, allow_null=True)
    note = serializers.SerializerMethodField()
    data = serializers.SerializerMethodField()

    class Meta:
        model = CaseEvent
        fields = [
            "version",
            "at",
            "transition",
            "from_state",
            "to_state",
            "actor",
            "actor_agency",
            "note",
            "data",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_data(self, event: CaseEvent) -> dict[str, Any]:
        return event_data_for(
            event,
            hidden=bool(self.context.get("identity_hidden")),
            secrets=self.context.get("secrets", ()),
        )

    def get_note(self, event: CaseEvent) -> str:
        return redact(event.note, self.context.get("secrets", ()))


class ClockPauseSerializer(serializers.Serializer):
    start_date = serializers.DateField()
    end_date = serializers.DateField(allow_null=True)
    reason = serializers.CharField()


class ClockSerializer(serializers.ModelSerializer):
    rule_label = serializers.SerializerMethodField()
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    remaining_working_days = serializers.SerializerMethodField(
        help_text="距到期日的剩余工作日（逾期为负数；相差十年以上为 null）"
    )
    overdue = serializers.SerializerMethodField()
    pauses = ClockPauseSerializer(many=True, read_only=True)

    class Meta:
        model = Clock
        fields = [
            "id",
            "rule_code",
            "rule_label",
            "kind",
            "status",
            "status_label",
            "entered_state",
            "start_date",
            "nominal_due",
            "due",
            "due_at",
            "provisional",
            "explanation",
            "extra_days",
            "paused_days",
            "remaining_working_days",
            "overdue",
            "started_at",
            "stopped_at",
            "stop_reason",
            "pauses",
        ]
        read_only_fields = fields

    def get_rule_label(self, clock: Clock) -> str:
        return rule_label(clock.rule_code)

    def get_remaining_working_days(self, clock: Clock) -> int | None:
        today: dt.date = self.context["today"]
        if abs((clock.due - today).days) > REMAINING_DAYS_HORIZON:
            return None
        calendar = self.context["calendar"]
        if clock.due >= today:
            return working_days_between(today, clock.due, calendar=calendar)
        return -working_days_between(clock.due, today, calendar=calendar)

    def get_overdue(self, clock: Clock) -> bool:
        return clock.status == ClockStatus.RUNNING and clock.due_at < self.context["now"]


# Transitions ------------------------------------------------------------------------------


class ChoiceSerializer(serializers.Serializer):
    value = serializers.JSONField()
    label = serializers.CharField()


class StepFieldSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    type = serializers.ChoiceField(
        choices=["string", "text", "integer", "boolean", "date", "choice", "reference"]
    )
    reference = serializers.CharField(
        allow_null=True, help_text="type=reference 时所引用的对象：agency、user、category"
    )
    required = serializers.BooleanField()
    choices = ChoiceSerializer(many=True, allow_null=True)
    max_length = serializers.IntegerField(allow_null=True)
    min_value = serializers.IntegerField(allow_null=True)
    max_value = serializers.IntegerField(allow_null=True)
    help_text = serializers.CharField(allow_blank=True)


class TransitionSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    target = serializers.CharField()
    target_label = serializers.CharField()
    fields = StepFieldSerializer(many=True)


class TransitionsSerializer(serializers.Serializer):
    case = serializers.IntegerField()
    state = serializers.CharField()
    version = serializers.IntegerField(help_text="提交时可作为 expected_version")
    transitions = TransitionSerializer(many=True)


class TransitionRequestSerializer(serializers.Serializer):
    """Documentation of the request body: the step's fields (see GET transitions/) plus these."""

    expected_version = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_INT, help_text="版本不符时返回 409 stale"
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)


_REFERENCE_NAMES = {Agency: "agency", User: "user", Category: "category"}


def _choices(field: forms.Field) -> list[dict[str, Any]]:
    return [
        {"value": value, "label": str(label)}
        for value, label in field.choices
        if value not in ("", None)
    ]


def _reference_choices(field: forms.ModelChoiceField, form: forms.Form) -> list[dict[str, Any]]:
    qs = field.queryset
    if qs.model is User:
        # Only people the step can name: the actor's colleagues and the holder's staff.
        agencies = {form.actor.agency_id, form.case.holder_agency_id} - {None}
        qs = qs.filter(agency_id__in=agencies)
    return [{"value": obj.pk, "label": str(obj)} for obj in qs.order_by("pk")[:500]]


def describe_step_field(name: str, field: forms.Field, form: forms.Form) -> dict[str, Any]:
    """One step-form field as the client needs it to build the form."""
    out: dict[str, Any] = {
        "name": name,
        "label": str(field.label or name),
        "type": "string",
        "reference": None,
        "required": bool(field.required),
        "choices": None,
        "max_length": getattr(field, "max_length", None),
        "min_value": getattr(field, "min_value", None),
        "max_value": getattr(field, "max_value", None),
        "help_text": str(field.help_text or ""),
    }
    if isinstance(field, forms.ModelChoiceField):
        model = field.queryset.model
        out["type"] = "reference"
        out["reference"] = _REFERENCE_NAMES.get(model, model._meta.model_name)
        out["choices"] = _reference_choices(field, form)
    elif isinstance(field, forms.BooleanField):
        out["type"] = "boolean"
    elif isinstance(field, forms.DateField):
        out["type"] = "date"
    elif isinstance(field, forms.IntegerField):
        out["type"] = "integer"
    elif isinstance(field, forms.ChoiceField):
        out["type"] = "choice"
        out["choices"] = _choices(field)
    elif isinstance(field, forms.CharField) and isinstance(field.widget, forms.Textarea):
        out["type"] = "text"
    return out


def _api_field_for(field: forms.Field) -> serializers.Field:
    """A DRF field that only checks the JSON type; the step form checks everything else."""
    common: dict[str, Any] = {"required": False, "allow_null": True}
    if isinstance(field, forms.ModelChoiceField):
        return serializers.IntegerField(min_value=1, max_value=MAX_ID, **common)
    if isinstance(field, forms.BooleanField):
        return serializers.BooleanField(**common)
    if isinstance(field, forms.DateField):
        return serializers.DateField(validators=[plausible_date], **common)
    if isinstance(field, forms.IntegerField):
        return serializers.IntegerField(min_value=-MAX_INT, max_value=MAX_INT, **common)
    return serializers.CharField(allow_blank=True, trim_whitespace=False, **common)


class ReferToMediationSerializer(StrictTypesMixin, serializers.Serializer):
    """访调对接 (信访工作条例 Art 33): the committee, the dispute's own title and category."""

    to_agency = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, help_text="接收的人民调解委员会 id（本辖区、有调解员）"
    )
    title = serializers.CharField(max_length=200, help_text="纠纷名称，按矛盾纠纷命名")
    category = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="纠纷类型 id")
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True)

    def form_data(self) -> dict[str, Any]:
        return {k: v for k, v in self.validated_data.items() if v is not None}


class StepInputSerializer(StrictTypesMixin, serializers.Serializer):
    """Type-checks a transition body against the step form's fields; unknown keys are refused."""

    def __init__(self, *args: Any, form_fields: dict[str, forms.Field], **kwargs: Any) -> None:
        self._form_fields = form_fields
        super().__init__(*args, **kwargs)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = {name: _api_field_for(f) for name, f in self._form_fields.items()}
        fields["expected_version"] = serializers.IntegerField(
            required=False, min_value=1, max_value=MAX_INT
        )
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({k: [_("未知字段。")] for k in unknown})
        return attrs

    def form_data(self) -> dict[str, Any]:
        """The validated values as a submitted form would carry them."""
        out: dict[str, Any] = {}
        for name, value in self.validated_data.items():
            if name == "expected_version" or value is None:
                continue
            out[name] = value.isoformat() if isinstance(value, dt.date) else value
        return out


# Parties ----------------------------------------------------------------------------------


class RevealRequestSerializer(StrictTypesMixin, serializers.Serializer):
    purpose = serializers.CharField(max_length=200, help_text="查看用途（记入查看记录）")


class RevealResponseSerializer(serializers.Serializer):
    party = serializers.IntegerField()
    id_number = serializers.CharField()


class PhoneRevealResponseSerializer(serializers.Serializer):
    party = serializers.IntegerField()
    phone = serializers.CharField()


# Deadlines --------------------------------------------------------------------------------


@extend_schema_field({"type": "string", "format": "date"})
class IsoDateText(serializers.CharField):
    """A date kept as text: `policy.parse_date` checks it, exactly as the command does."""


@extend_schema_field(
    {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}:[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
)
class PauseText(serializers.CharField):
    """`FROM:TO`, checked by `policy.parse_pause`."""


class DeadlineQuerySerializer(serializers.Serializer):
    rule = serializers.ChoiceField(choices=sorted(RULES), help_text="期限规则代码")
    start = IsoDateText(max_length=10, help_text="起算日 YYYY-MM-DD（当日不计入）")
    pause = serializers.ListField(
        child=PauseText(max_length=21),
        required=False,
        max_length=20,
        help_text="暂停期间 YYYY-MM-DD:YYYY-MM-DD，首尾两日均计入；可重复",
    )


class DeadlineSerializer(serializers.Serializer):
    rule = serializers.CharField()
    start = serializers.DateField()
    nominal_due = serializers.DateField()
    due = serializers.DateField()
    provisional = serializers.BooleanField()
    explanation = serializers.ListField(child=serializers.CharField())
    paused_days = serializers.IntegerField()
    extra_days = serializers.IntegerField()


# Escalations (超期督办) and notifications ---------------------------------------------------


class EscalationCaseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    title = serializers.CharField()
    state = serializers.CharField()
    state_label = serializers.CharField()
    holder_agency = AgencyRefSerializer()


class EscalationClockSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    rule_code = serializers.CharField()
    rule_label = serializers.SerializerMethodField()
    status = serializers.CharField()
    due = serializers.DateField()
    due_at = serializers.DateTimeField()

    def get_rule_label(self, clock: Clock) -> str:
        return rule_label(clock.rule_code)


class EscalationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    notice_number = serializers.CharField(
        source="notice_label", help_text="督办单编号，如 督字〔2026〕第12号；编号前为空"
    )
    issuer = AgencyRefSerializer(allow_null=True, help_text="签发督办单的督办机构")
    case = EscalationCaseSerializer()
    clock = EscalationClockSerializer()
    level = serializers.IntegerField()
    level_label = serializers.CharField(source="get_level_display")
    status = serializers.CharField()
    status_label = serializers.CharField(source="get_status_display")
    agency = AgencyRefSerializer(allow_null=True)
    created_at = serializers.DateTimeField()
    ack_due_at = serializers.DateTimeField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    acknowledged_by = UserRefSerializer(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolution = serializers.CharField()
    data = serializers.JSONField(help_text="督办单：案件、期限、超期天数、层级及督办意见记录")


class EscalationQueueFilterSerializer(serializers.Serializer):
    open_only = serializers.BooleanField(required=False, help_text="true：只列待签收的督办")


class EscalationNoteSerializer(StrictTypesMixin, serializers.Serializer):
    note = serializers.CharField(max_length=NOTE_MAX_LENGTH, required=False, allow_blank=True)


class EscalationReassignSerializer(StrictTypesMixin, serializers.Serializer):
    reason = serializers.CharField(max_length=REASON_MAX_LENGTH)
    to_agency = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    to_user = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)


class EscalationExtensionSerializer(StrictTypesMixin, serializers.Serializer):
    extra_days = serializers.IntegerField(min_value=1, max_value=365)
    reason = serializers.CharField(max_length=REASON_MAX_LENGTH)


class EscalationInstructionSerializer(StrictTypesMixin, serializers.Serializer):
    text = serializers.CharField(max_length=INSTRUCTION_MAX_LENGTH)


class NotificationCaseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()


class NotificationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    kind_label = serializers.CharField(source="get_kind_display")
    case = NotificationCaseSerializer(allow_null=True)
    subject = serializers.CharField()
    body = serializers.CharField()
    created_at = serializers.DateTimeField()
    read_at = serializers.DateTimeField(allow_null=True)


class NotificationFilterSerializer(serializers.Serializer):
    unread = serializers.BooleanField(required=False, help_text="true：只列未读通知")


class NotificationMarkReadSerializer(StrictTypesMixin, serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        required=False,
        max_length=500,
        help_text="要标为已读的通知 id（他人的通知忽略）",
    )
    all = serializers.BooleanField(default=False, help_text="true：全部标为已读")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("all") and not attrs.get("ids"):
            raise serializers.ValidationError({"ids": [_("请指定通知，或选择全部标为已读。")]})
        return attrs


class NotificationMarkReadResultSerializer(serializers.Serializer):
    marked = serializers.IntegerField()
    unread = serializers.IntegerField()


class UnreadCountSerializer(serializers.Serializer):
    unread = serializers.IntegerField()


# The case file (卷宗) -------------------------------------------------------------------------


class AttachmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    doc_type = serializers.CharField()
    doc_type_label = serializers.CharField(source="get_doc_type_display")
    description = serializers.CharField()
    original_name = serializers.CharField(help_text="上传时的文件名（仅供显示）")
    content_type = serializers.CharField(help_text="按文件内容识别的类型")
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    uploaded_by = serializers.CharField(source="uploaded_by.__str__")
    uploaded_at = serializers.DateTimeField()
    withdrawn_at = serializers.DateTimeField(allow_null=True)


class SessionRecordSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="session.pk")
    started_at = serializers.DateTimeField(source="session.started_at")
    place = serializers.CharField(source="session.place")
    mediators = serializers.CharField(source="session.mediators")
    parties_present = serializers.ListField(child=serializers.CharField())
    others_present = serializers.CharField()
    content = serializers.CharField()
    recorded_at = serializers.DateTimeField(source="session.recorded_at")


class CaseActionRequestSerializer(serializers.Serializer):
    """Documentation only: the action's own fields (see GET transitions/), as JSON, or as
    multipart/form-data for an upload (field `file`)."""
