"""Admin for cases: 矛盾纠纷 and 信访事项 lists, read-only case files and transition buttons.

The state machine owns every case field, so the change pages are read-only. The buttons come
from django-fsm-2's `FSMAdminMixin` (only transitions that `has_transition_perm` allows for the
user are shown), but a transition never runs the model method here: it goes through
`mediation.cases.services.case_transition`, which locks the row, checks the permission again,
validates the step form, writes the step's rows and the audit event and reconciles the clocks.
Registration likewise goes through `dispute_register` / `petition_receive`.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import display_for_value, unquote
from django.contrib.admin.widgets import AdminDateWidget
from django.core.exceptions import PermissionDenied as HttpPermissionDenied
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template import engines
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _
from django_fsm import has_transition_perm
from django_fsm.admin import FSMAdminMixin, FSMTransitionContext

from mediation.accounts.models import User
from mediation.agencies.selectors import user_scope
from mediation.cases import workflow
from mediation.cases.labels import event_kind_choices, event_label, rule_label, state_label
from mediation.cases.models import (
    Agreement,
    AppliesTo,
    Case,
    CaseEvent,
    CaseKind,
    CaseParty,
    CasePartyRole,
    Category,
    Channel,
    Dispute,
    DisputeState,
    Extension,
    MediationTrack,
    Opinion,
    Petition,
    PetitionState,
    PetitionType,
    Referral,
    RiskLevel,
)
from mediation.cases.selectors import (
    cases_visible_to,
    event_data_for,
    identity_hidden_from,
    protected_texts,
    redact,
)
from mediation.cases.services import (
    PartyInput,
    case_transition,
    dispute_register,
    petition_receive,
    transition_label,
)
from mediation.cases.steps import StepForm
from mediation.core import clock as system_clock
from mediation.core import errors
from mediation.deadlines.admin import case_admin_url
from mediation.deadlines.models import Clock, ClockStatus
from mediation.parties import idnumbers
from mediation.parties.admin import PartyAdmin
from mediation.parties.models import Party

# Labels: `mediation.cases.labels` (one set for the admin, the web, the API and statistics).


def state_change(event: CaseEvent) -> str:
    kind = event.case.kind
    if event.from_state == event.to_state:
        return state_label(kind, event.to_state)
    if not event.from_state:
        return f"→ {state_label(kind, event.to_state)}"
    return f"{state_label(kind, event.from_state)} → {state_label(kind, event.to_state)}"


def _domain_error_text(exc: errors.DomainError) -> str:
    details = exc.details
    if isinstance(details, dict) and details and all(isinstance(v, list) for v in details.values()):
        parts = "；".join(f"{k}：{'，'.join(str(m) for m in v)}" for k, v in details.items())
        return f"{exc.message}（{parts}）"
    return exc.message


def _put_domain_error_on_form(form: forms.BaseForm, exc: errors.DomainError) -> None:
    """InvalidInput field errors go to their fields; anything else is a form-level error."""
    details = exc.details
    placed = False
    if isinstance(details, dict):
        for name, msgs in details.items():
            if name in form.fields and isinstance(msgs, list):
                for msg in msgs:
                    form.add_error(name, str(msg))
                placed = True
    if not placed:
        form.add_error(None, _domain_error_text(exc))


# Categories and channels --------------------------------------------------------------------


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "applies_to", "sort_order", "is_active")
    list_filter = ("applies_to", "is_active")
    list_editable = ("sort_order", "is_active")
    search_fields = ("name", "code")
    ordering = ("applies_to", "sort_order", "code")


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "sort_order", "is_active")
    list_filter = ("is_active",)
    list_editable = ("sort_order", "is_active")
    search_fields = ("name", "code")


# Read-only inlines ---------------------------------------------------------------------------


class ReadOnlyInline(admin.TabularInline):
    # Rows without their str(): the fields say it all, and a row's str() may name a party
    # whose identity is hidden from this viewer (检举控告).
    template = "admin/edit_inline/tabular_fields_only.html"
    extra = 0
    max_num = 0
    can_delete = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ClockInline(ReadOnlyInline):
    model = Clock
    verbose_name_plural = _("期限")
    fields = (
        "rule_label",
        "status",
        "start_date",
        "due",
        "overdue",
        "provisional",
        "extra_days",
        "paused_days",
        "stop_reason",
    )
    ordering = ("started_at", "pk")
    show_change_link = True

    @admin.display(description=_("期限"))
    def rule_label(self, obj: Clock) -> str:
        return f"{rule_label(obj.rule_code)}（{obj.rule_code}）"

    @admin.display(description=_("超期"), boolean=True)
    def overdue(self, obj: Clock) -> bool | None:
        if obj.status != ClockStatus.RUNNING:
            return None
        return obj.due_at < system_clock.now()


def labelled(attr: str, label: Any) -> Any:
    """A read-only column for a model field that has no Chinese verbose_name."""

    @admin.display(description=label, ordering=attr)
    def show(self: Any, obj: Any) -> Any:
        value = getattr(obj, attr)
        if value is None or value == "":
            return "—"
        return display_for_value(value, "—")

    show.__name__ = f"{attr}_shown"
    return show


class ReferralInline(ReadOnlyInline):
    model = Referral
    fields = (
        "kind",
        "from_agency",
        "to_agency",
        "status",
        "sender",
        "sent_at",
        "report_due",
        "responder",
        "responded_at",
        "return_reason",
    )
    sender = labelled("sent_by", _("移送人"))
    responder = labelled("responded_by", _("处理人"))


class AgreementInline(ReadOnlyInline):
    model = Agreement
    fields = ("form", "effective_on", "performance_due_on", "text", "recorder", "recorded")
    recorder = labelled("recorded_by", _("记录人"))
    recorded = labelled("recorded_at", _("记录时间"))


class OpinionInline(ReadOnlyInline):
    model = Opinion
    fields = ("stage", "result", "served_on", "agency", "issuer", "text", "issued")
    agency = labelled("issuing_agency", _("出具机关"))
    issuer = labelled("issued_by", _("出具人"))
    issued = labelled("issued_at", _("出具时间"))


class ExtensionInline(ReadOnlyInline):
    model = Extension
    fields = (
        "extra_days",
        "reason",
        "approved_by",
        "parties_consented",
        "petitioner_notified_on",
        "recorder",
        "recorded",
    )
    recorder = labelled("recorded_by", _("记录人"))
    recorded = labelled("recorded_at", _("记录时间"))


class CasePartyInline(ReadOnlyInline):
    """Parties with the ID number and phone masked; hidden entirely from an accused agency."""

    model = CaseParty
    verbose_name_plural = _("当事人")
    fields = ("role", "party_name", "party_id_number", "party_phone", "party_minor")
    hidden = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[CaseParty]:
        return super().get_queryset(request).select_related("party").order_by("pk")

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        # Inline instances are created per request, so the flag does not leak between users.
        self.hidden = obj is not None and identity_hidden_from(request.user, obj)
        return super().get_formset(request, obj, **kwargs)

    @admin.display(description=_("姓名/名称"))
    def party_name(self, obj: CaseParty) -> str:
        return _t("（保密）") if self.hidden else obj.party.name

    @admin.display(description=_("身份证号"))
    def party_id_number(self, obj: CaseParty) -> str:
        return _t("（保密）") if self.hidden else (obj.party.masked_id or "—")

    @admin.display(description=_("联系电话"))
    def party_phone(self, obj: CaseParty) -> str:
        return _t("（保密）") if self.hidden else (obj.party.masked_phone or "—")

    @admin.display(description=_("登记时未满14周岁"), boolean=True)
    def party_minor(self, obj: CaseParty) -> bool:
        return obj.party.is_minor


class CaseEventInline(ReadOnlyInline):
    model = CaseEvent
    verbose_name_plural = _("办理记录")
    fields = (
        "event_version",
        "event_at",
        "action",
        "states",
        "event_actor",
        "event_agency",
        "note_shown",
    )
    ordering = ("version",)
    event_version = labelled("version", _("版本"))
    event_at = labelled("at", _("时间"))
    event_actor = labelled("actor", _("操作人"))
    event_agency = labelled("actor_agency", _("操作人机构"))

    secrets: tuple[str, ...] = ()

    def get_queryset(self, request: HttpRequest) -> QuerySet[CaseEvent]:
        return super().get_queryset(request).select_related("case", "actor", "actor_agency")

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        # Inline instances are created per request, so this does not leak between users.
        hidden = obj is not None and identity_hidden_from(request.user, obj)
        self.secrets = tuple(protected_texts([obj.pk]).get(obj.pk, [])) if hidden else ()
        return super().get_formset(request, obj, **kwargs)

    @admin.display(description=_("操作"))
    def action(self, obj: CaseEvent) -> str:
        return event_label(obj.case.kind, obj.transition, obj.from_state)

    @admin.display(description=_("状态变化"))
    def states(self, obj: CaseEvent) -> str:
        return state_change(obj)

    @admin.display(description=_("备注"))
    def note_shown(self, obj: CaseEvent) -> str:
        return redact(obj.note, self.secrets) or "—"


# List filters -------------------------------------------------------------------------------


class StateFilter(admin.SimpleListFilter):
    title = _("状态")
    parameter_name = "state"
    state_choices: list[tuple[str, Any]] = []

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return list(self.state_choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Case]) -> QuerySet[Case]:
        if self.value():
            return queryset.filter(state=self.value())
        return queryset


class DisputeStateFilter(StateFilter):
    state_choices = DisputeState.choices


class PetitionStateFilter(StateFilter):
    state_choices = PetitionState.choices


class EventTransitionFilter(admin.SimpleListFilter):
    title = _("操作")
    parameter_name = "transition"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return event_kind_choices()

    def queryset(self, request: HttpRequest, queryset: QuerySet[CaseEvent]) -> QuerySet[CaseEvent]:
        if self.value():
            return queryset.filter(transition=self.value())
        return queryset


class ActorAgencyFilter(admin.RelatedOnlyFieldListFilter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = _("操作人机构")


class CaseOverdueFilter(admin.SimpleListFilter):
    title = _("期限")
    parameter_name = "clock"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("overdue", _("有超期期限")), ("running", _("有计时中的期限"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Case]) -> QuerySet[Case]:
        running = Clock.objects.filter(case_id=OuterRef("pk"), status=ClockStatus.RUNNING)
        if self.value() == "overdue":
            return queryset.filter(Exists(running.filter(due_at__lt=system_clock.now())))
        if self.value() == "running":
            return queryset.filter(Exists(running))
        return queryset


# Registration forms (add view) --------------------------------------------------------------


def _validate_id(value: str, today: dt.date) -> str:
    if not value:
        return ""
    try:
        return idnumbers.validate_id_number(value, today=today)
    except idnumbers.InvalidIdNumber as exc:
        raise forms.ValidationError(str(exc)) from None


def _validate_phone(value: str) -> str:
    try:
        return idnumbers.normalise_phone(value)
    except ValueError as exc:
        raise forms.ValidationError(str(exc)) from None


class RegisterCaseForm(forms.ModelForm):
    """Add form that registers through the service as the last step of validation.

    The admin's add view runs inside `transaction.atomic()`: if the service refuses, its
    message lands on the form and nothing was written; if it succeeds, `instance` is the new
    case and the admin only logs it and redirects (`save_model` does not save again).
    """

    kind: str = ""
    first_role: str = CasePartyRole.APPLICANT
    actor: User | None = None
    now: dt.datetime | None = None

    title = forms.CharField(label=_("标题"), max_length=200)
    description = forms.CharField(label=_("简要情况"), widget=forms.Textarea, required=False)
    category = forms.ModelChoiceField(
        label=_("类型"), queryset=Category.objects.none(), required=False
    )
    channel = forms.ModelChoiceField(
        label=_("来源"), queryset=Channel.objects.filter(is_active=True)
    )
    received_on = forms.DateField(label=_("收到日期"), widget=AdminDateWidget)
    first_name = forms.CharField(label=_("姓名"), max_length=200)
    first_id_number = forms.CharField(
        label=_("身份证号"),
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
        help_text=_("18位（或旧版15位）；保存后只显示脱敏号码。"),
    )
    first_phone = forms.CharField(label=_("联系电话"), max_length=32, required=False)
    first_address = forms.CharField(label=_("住址"), max_length=255, required=False)

    class Meta:
        model = Case
        fields: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].queryset = Category.objects.filter(
            is_active=True, applies_to__in=[self.kind, AppliesTo.BOTH]
        )
        self.fields["received_on"].initial = self._today()

    def _today(self) -> dt.date:
        return system_clock.local_date(self.now or system_clock.now())

    def clean_received_on(self) -> dt.date:
        value = self.cleaned_data["received_on"]
        if value > self._today():
            raise forms.ValidationError(_("收到日期不能晚于今天。"))
        return value

    def clean_first_id_number(self) -> str:
        return _validate_id(self.cleaned_data.get("first_id_number", ""), self._today())

    def clean_first_phone(self) -> str:
        return _validate_phone(self.cleaned_data.get("first_phone", ""))

    def parties(self) -> list[PartyInput]:
        d = self.cleaned_data
        return [
            PartyInput(
                name=d["first_name"],
                role=self.first_role,
                id_number=d["first_id_number"] or None,
                phone=d["first_phone"],
                address=d["first_address"],
            )
        ]

    def register(self) -> Case:
        raise NotImplementedError

    def _post_clean(self) -> None:
        super()._post_clean()
        if self._errors:
            return
        if self.actor is None:
            self.add_error(None, _("请通过后台登记页面提交。"))
            return
        try:
            self.instance = self.register()
        except errors.DomainError as exc:
            _put_domain_error_on_form(self, exc)


class RegisterDisputeForm(RegisterCaseForm):
    kind = CaseKind.DISPUTE
    first_role = CasePartyRole.APPLICANT

    mediation_track = forms.ChoiceField(
        label=_("调解类型"), choices=MediationTrack.choices, initial=MediationTrack.PEOPLE
    )
    risk_level = forms.ChoiceField(label=_("风险等级"), choices=RiskLevel.choices)
    second_name = forms.CharField(label=_("姓名"), max_length=200, required=False)
    second_id_number = forms.CharField(
        label=_("身份证号"),
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    second_phone = forms.CharField(label=_("联系电话"), max_length=32, required=False)
    second_address = forms.CharField(label=_("住址"), max_length=255, required=False)

    def clean_second_id_number(self) -> str:
        return _validate_id(self.cleaned_data.get("second_id_number", ""), self._today())

    def clean_second_phone(self) -> str:
        return _validate_phone(self.cleaned_data.get("second_phone", ""))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        extra = [data.get(f"second_{n}") for n in ("id_number", "phone", "address")]
        if any(extra) and not data.get("second_name"):
            self.add_error("second_name", _("请填写被申请人姓名。"))
        return data

    def parties(self) -> list[PartyInput]:
        out = super().parties()
        d = self.cleaned_data
        if d.get("second_name"):
            out.append(
                PartyInput(
                    name=d["second_name"],
                    role=CasePartyRole.RESPONDENT,
                    id_number=d["second_id_number"] or None,
                    phone=d["second_phone"],
                    address=d["second_address"],
                )
            )
        return out

    def register(self) -> Case:
        d = self.cleaned_data
        return dispute_register(
            actor=self.actor,
            title=d["title"],
            description=d["description"],
            channel_id=d["channel"].pk,
            category_id=d["category"].pk if d.get("category") else None,
            received_on=d["received_on"],
            parties=self.parties(),
            now=self.now or system_clock.now(),
            mediation_track=d["mediation_track"],
            risk_level=d["risk_level"],
        ).as_proxy()


class RegisterPetitionForm(RegisterCaseForm):
    kind = CaseKind.PETITION
    first_role = CasePartyRole.PETITIONER

    petition_type = forms.ChoiceField(
        label=_("信访类型"),
        choices=[("", _("（登记时确定）")), *PetitionType.choices],
        required=False,
    )
    headcount = forms.IntegerField(label=_("人数"), min_value=1, initial=1)

    def register(self) -> Case:
        d = self.cleaned_data
        return petition_receive(
            actor=self.actor,
            title=d["title"],
            description=d["description"],
            channel_id=d["channel"].pk,
            category_id=d["category"].pk if d.get("category") else None,
            received_on=d["received_on"],
            parties=self.parties(),
            now=self.now or system_clock.now(),
            petition_type=d["petition_type"],
            headcount=d["headcount"],
        ).as_proxy()


# Transition forms ---------------------------------------------------------------------------


class AdminStepFormMixin:
    """Admin widgets for a step form, plus the case version the page was rendered from."""

    required_css_class = "required"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["expected_version"] = forms.IntegerField(
            widget=forms.HiddenInput, required=False
        )
        for field in self.fields.values():
            if isinstance(field, forms.DateField):
                field.widget = AdminDateWidget()
        # The step's own fields first, the optional note last.
        self.order_fields([n for n in self.fields if n != "note"] + ["note"])


def admin_step_form(form_class: type[StepForm]) -> type[StepForm]:
    return type(f"Admin{form_class.__name__}", (AdminStepFormMixin, form_class), {})


def step_needs_input(form_class: type[StepForm]) -> bool:
    """Whether a step asks for more than the optional note (then the button opens a form)."""
    return bool(set(form_class.base_fields) - {"note"})


TRANSITION_PAGE = """{% extends "admin/change_form.html" %}
{% load i18n admin_urls %}
{% block breadcrumbs %}
<div class="breadcrumbs">
<a href="{% url 'admin:index' %}">{% translate 'Home' %}</a>
&rsaquo; <a href="{% url 'admin:app_list' app_label=opts.app_label %}">
  {{ opts.app_config.verbose_name }}</a>
&rsaquo; <a href="{% url opts|admin_urlname:'changelist' %}">{{ opts.verbose_name_plural }}</a>
&rsaquo; <a href="{{ change_url }}">{{ original.number }}</a>
&rsaquo; {{ transition.label }}
</div>
{% endblock %}
{% block content %}
<div id="content-main">
<p>{{ original.number }} {{ original.title }} ·
   {% translate "当前状态" %}：<strong>{{ original.state_label }}</strong></p>
{% if transition.help_text %}<p class="help">{{ transition.help_text }}</p>{% endif %}
<form method="post" novalidate>{% csrf_token %}
{% if transition_form.errors %}
  <p class="errornote">{% translate "请更正下列错误。" %}</p>
{% endif %}
<fieldset class="module aligned">{{ transition_form.as_div }}</fieldset>
<div class="submit-row">
<input type="submit" class="default" value="{% translate '确定执行' %}">
<a href="{{ change_url }}" class="closelink">{% translate '取消' %}</a>
</div>
</form>
</div>
{% endblock %}
"""


# Case admins --------------------------------------------------------------------------------


class CaseAdminBase(FSMAdminMixin, admin.ModelAdmin):
    kind: str = ""
    fsm_fields = ["state"]
    add_form: type[RegisterCaseForm] = RegisterCaseForm
    list_select_related = ("holder_agency", "category", "channel", "assignee")
    search_fields = ("number", "title")
    date_hierarchy = "received_on"
    list_per_page = 50
    inlines = (
        CasePartyInline,
        ClockInline,
        ReferralInline,
        AgreementInline,
        OpinionInline,
        ExtensionInline,
        CaseEventInline,
    )
    case_fieldsets: tuple[Any, ...] = ()
    add_fieldsets: tuple[Any, ...] = ()

    # Queryset and columns

    def get_queryset(self, request: HttpRequest) -> QuerySet[Case]:
        # `next_due` shows the stored `Case.next_due_at` (earliest running duty clock).
        return cases_visible_to(request.user, super().get_queryset(request))

    @admin.display(description=_("状态"), ordering="state")
    def state_display(self, obj: Case) -> str:
        return obj.state_label

    @admin.display(description=_("最近到期"), ordering="next_due_at")
    def next_due(self, obj: Case) -> str:
        due_at = obj.next_due_at
        if due_at is None:
            return "—"
        day = system_clock.local_date(due_at - dt.timedelta(seconds=1))
        if due_at < system_clock.now():
            return format_html('<strong style="color:#ba2121">{}（{}）</strong>', day, _t("超期"))
        return str(day)

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            # Per object, per request (ModelAdmin instances are shared between requests).
            hidden = identity_hidden_from(request.user, obj)
            obj.secrets = protected_texts([obj.pk]).get(obj.pk, []) if hidden else []
        return obj

    @admin.display(description=_("标题"))
    def title_shown(self, obj: Case) -> str:
        return redact(obj.title, getattr(obj, "secrets", []))

    @admin.display(description=_("简要情况"))
    def description_shown(self, obj: Case) -> str:
        return redact(obj.description, getattr(obj, "secrets", [])) or "—"

    @admin.display(description=_("处理结果"))
    def outcome_shown(self, obj: Case) -> str:
        return redact(obj.outcome_note, getattr(obj, "secrets", [])) or "—"

    @admin.display(description=_("来源信访事项"))
    def spawned_from_link(self, obj: Case) -> str:
        return self._case_link(obj.spawned_from)

    @admin.display(description=_("重复信访"))
    def repeat_of_link(self, obj: Case) -> str:
        return self._case_link(obj.repeat_of)

    @staticmethod
    def _case_link(case: Case | None) -> str:
        if case is None:
            return "—"
        url = case_admin_url(case)
        return format_html('<a href="{}">{}</a>', url, case) if url else str(case)

    # Forms: read-only change page, service-backed add page

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.add_fieldsets if obj is None else self.case_fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        base = tuple(super().get_readonly_fields(request, obj))
        if obj is None:
            return base
        names = [n for _name, opts in self.case_fieldsets for n in opts["fields"]]
        return tuple(dict.fromkeys([*base, *names]))

    def get_inlines(self, request: HttpRequest, obj: Any) -> Any:
        return self.inlines if obj is not None else ()

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        if obj is None:
            kwargs["form"] = self.add_form
            form = super().get_form(request, obj, change=change, **kwargs)
            return type(form.__name__, (form,), {"actor": request.user, "now": system_clock.now()})
        return super().get_form(request, obj, change=change, **kwargs)

    def save_model(self, request: HttpRequest, obj: Case, form: Any, change: bool) -> None:
        """Nothing to save: the service registered the case; case fields are read-only."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """No related rows are edited here."""

    def response_add(self, request: HttpRequest, obj: Case, post_url_continue: Any = None):
        self.message_user(
            request, _t("已登记：%(number)s") % {"number": obj.number}, messages.SUCCESS
        )
        return HttpResponseRedirect(self._change_url(obj))

    # Permissions: no edits, no deletes; transitions are checked per transition

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    # Transitions (django-fsm-2 admin integration, routed through the service)

    @staticmethod
    def get_fsm_block_label(fsm_field_name: str) -> str:
        return _t("办理操作")

    def is_fsm_transition_visible(self, transition: Any) -> bool:
        return workflow.action(self.kind, transition.name) is not None and (
            super().is_fsm_transition_visible(transition)
        )

    def _change_url(self, obj: Case) -> str:
        opts = self.model._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])

    def _transition_url(self, obj: Case, name: str) -> str:
        opts = self.model._meta
        return reverse(
            f"admin:{opts.app_label}_{opts.model_name}_transition",
            kwargs={"object_id": obj.pk, "transition_name": name},
        )

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # A transition button posts the (read-only) change form: handle it before Django's
        # form processing, which would refuse the POST for lack of change permission.
        name = request.POST.get(self.fsm_post_param) if request.method == "POST" else None
        if name:
            return self._transition_button(request, object_id, name)
        return super().change_view(request, object_id, form_url, extra_context)

    def _transition_button(self, request: HttpRequest, object_id: str, name: str) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, obj):
            raise HttpPermissionDenied
        act = workflow.action(obj.kind, name)
        if act is None or not act.transition:
            self.message_user(request, _t("未知的操作：%(name)s") % {"name": name}, messages.ERROR)
            return HttpResponseRedirect(self._change_url(obj))
        if step_needs_input(act.step.form_class):
            return HttpResponseRedirect(self._transition_url(obj, name))
        self._apply_fsm_transition(obj=obj, transition_name=name, request=request, kwargs={})
        return HttpResponseRedirect(self._change_url(obj))

    def _execute_fsm_transition(
        self, *, transition_func: Any, request: HttpRequest, kwargs: Any = None
    ) -> None:
        """Run the transition through `case_transition`, never by calling the method here.

        `kwargs` is the raw step-form input; the service validates it again under the row
        lock. Raises the service's DomainError subclasses.
        """
        data = dict(kwargs or {})
        expected = data.pop("expected_version", None)
        case_transition(
            case_id=transition_func.__self__.pk,
            transition=transition_func.__name__,
            actor=request.user,
            now=system_clock.now(),
            data=data,
            expected_version=int(expected) if expected not in (None, "") else None,
        )

    def _apply_fsm_transition(
        self,
        *,
        obj: Case,
        transition_name: str,
        request: HttpRequest,
        kwargs: Any = None,
    ) -> bool:
        """The mixin's apply step, without `obj.save()`: the service has saved everything."""
        label = transition_label(obj, transition_name)
        if workflow.action(obj.kind, transition_name) is None:
            self.message_user(
                request, _t("未知的操作：%(name)s") % {"name": transition_name}, messages.ERROR
            )
            return False
        try:
            self._execute_fsm_transition(
                transition_func=self._get_fsm_transition_func(
                    obj=obj, transition_name=transition_name
                ),
                request=request,
                kwargs=kwargs,
            )
        except errors.DomainError as exc:
            self.message_user(
                request,
                _t("「%(action)s」未执行：%(error)s")
                % {"action": label, "error": _domain_error_text(exc)},
                messages.ERROR,
            )
            return False
        self.message_user(
            request, _t("已执行「%(action)s」。") % {"action": label}, messages.SUCCESS
        )
        return True

    def fsm_transition_view(
        self, request: HttpRequest, object_id: str, transition_name: str, **kwargs: Any
    ) -> HttpResponse:
        """The step form of one transition; a valid POST runs it through the service."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, obj):
            raise HttpPermissionDenied
        change_url = self._change_url(obj)
        act = workflow.action(obj.kind, transition_name)
        if act is None or not act.transition:
            self.message_user(
                request, _t("未知的操作：%(name)s") % {"name": transition_name}, messages.ERROR
            )
            return HttpResponseRedirect(change_url)
        label = transition_label(obj, transition_name)
        method = getattr(obj, transition_name)
        if not has_transition_perm(method, request.user):
            why = workflow.refusal(request.user, obj, transition_name) or ""
            self.message_user(
                request,
                _t("案件当前状态为「%(state)s」，您不能执行「%(action)s」。")
                % {"state": obj.state_label, "action": label}
                + why,
                messages.ERROR,
            )
            return HttpResponseRedirect(change_url)

        form_class = admin_step_form(act.step.form_class)
        today = system_clock.local_date(system_clock.now())
        if request.method == "POST":
            raw = {k: v for k, v in request.POST.items() if k != "csrfmiddlewaretoken"}
            form = form_class(data=raw, case=obj, actor=request.user, today=today)
            if form.is_valid():
                try:
                    self._execute_fsm_transition(
                        transition_func=method, request=request, kwargs=raw
                    )
                except errors.InvalidInput as exc:
                    _put_domain_error_on_form(form, exc)
                except errors.DomainError as exc:
                    self.message_user(
                        request,
                        _t("「%(action)s」未执行：%(error)s")
                        % {"action": label, "error": _domain_error_text(exc)},
                        messages.ERROR,
                    )
                    return HttpResponseRedirect(change_url)
                else:
                    self.message_user(
                        request, _t("已执行「%(action)s」。") % {"action": label}, messages.SUCCESS
                    )
                    return HttpResponseRedirect(change_url)
        else:
            form = form_class(
                initial={"expected_version": obj.version}, case=obj, actor=request.user, today=today
            )

        transition = self._get_fsm_transition_by_name(obj=obj, transition_name=transition_name)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": obj,
            "change": True,
            "add": False,
            "is_popup": False,
            "has_view_permission": True,
            "title": f"{label}：{obj.number}",
            "change_url": change_url,
            "media": self.media + form.media,
            "transition": FSMTransitionContext(
                name=transition_name, label=label, help_text=self.get_help_text(transition)
            ),
            "transition_form": form,
        }
        template = engines["django"].from_string(TRANSITION_PAGE)
        return HttpResponse(template.render(context, request))


@admin.register(Dispute)
class DisputeAdmin(CaseAdminBase):
    kind = CaseKind.DISPUTE
    add_form = RegisterDisputeForm
    list_display = (
        "number",
        "title",
        "state_display",
        "holder_agency",
        "assignee",
        "category",
        "channel",
        "risk_level",
        "received_on",
        "next_due",
    )
    list_filter = (
        DisputeStateFilter,
        CaseOverdueFilter,
        ("holder_agency", admin.RelatedOnlyFieldListFilter),
        ("category", admin.RelatedOnlyFieldListFilter),
        "channel",
        "mediation_track",
        "risk_level",
    )
    case_fieldsets = (
        (
            _("案件信息"),
            {
                "fields": (
                    "number",
                    "state_display",
                    "version",
                    "state_entered_at",
                    "title_shown",
                    "description_shown",
                    "category",
                    "channel",
                    "received_on",
                    "registered_at",
                    "risk_level",
                )
            },
        ),
        (_("承办"), {"fields": ("registering_agency", "holder_agency", "assignee")}),
        (
            _("调解"),
            {
                "fields": (
                    "mediation_track",
                    "accepted_on",
                    "mediation_period_start",
                    "extension_days",
                    "confirmation_applied_on",
                    "confirmation_court",
                    "spawned_from_link",
                )
            },
        ),
        (
            _("结果"),
            {"fields": ("outcome_shown", "transfer_target", "external_reference", "closed_at")},
        ),
    )
    add_fieldsets = (
        (
            _("案件信息"),
            {
                "fields": (
                    "title",
                    "description",
                    "category",
                    "channel",
                    "received_on",
                    "mediation_track",
                    "risk_level",
                ),
                "description": _("登记后由研判分流、交办、受理等操作推进；案件字段不能直接修改。"),
            },
        ),
        (
            _("申请人"),
            {"fields": ("first_name", "first_id_number", "first_phone", "first_address")},
        ),
        (
            _("被申请人"),
            {"fields": ("second_name", "second_id_number", "second_phone", "second_address")},
        ),
    )


@admin.register(Petition)
class PetitionAdmin(CaseAdminBase):
    kind = CaseKind.PETITION
    add_form = RegisterPetitionForm
    list_display = (
        "number",
        "title",
        "state_display",
        "holder_agency",
        "assignee",
        "category",
        "channel",
        "petition_type",
        "headcount",
        "received_on",
        "next_due",
    )
    list_filter = (
        PetitionStateFilter,
        CaseOverdueFilter,
        ("holder_agency", admin.RelatedOnlyFieldListFilter),
        ("category", admin.RelatedOnlyFieldListFilter),
        "channel",
        "petition_type",
        "collective",
        "supervised",
    )
    case_fieldsets = (
        (
            _("信访事项"),
            {
                "fields": (
                    "number",
                    "state_display",
                    "version",
                    "state_entered_at",
                    "title_shown",
                    "description_shown",
                    "category",
                    "channel",
                    "received_on",
                    "registered_at",
                    "petition_type",
                    "involves_accusation",
                    "collective",
                    "headcount",
                    "repeat_of_link",
                    "supervised",
                )
            },
        ),
        (_("承办"), {"fields": ("registering_agency", "holder_agency", "assignee")}),
        (
            _("办理"),
            {"fields": ("accepted_on", "review_requested_on", "rereview_requested_on")},
        ),
        (
            _("结果"),
            {"fields": ("outcome_shown", "transfer_target", "external_reference", "closed_at")},
        ),
    )
    add_fieldsets = (
        (
            _("信访事项"),
            {
                "fields": (
                    "title",
                    "description",
                    "category",
                    "channel",
                    "received_on",
                    "petition_type",
                    "headcount",
                ),
                "description": _(
                    "收到后须及时登记（信访工作条例第二十一条）；案件字段不能直接修改。"
                ),
            },
        ),
        (
            _("信访人"),
            {"fields": ("first_name", "first_id_number", "first_phone", "first_address")},
        ),
    )


# Audit trail --------------------------------------------------------------------------------


@admin.register(CaseEvent)
class CaseEventAdmin(admin.ModelAdmin):
    """Append-only: no add, change or delete, and no bulk delete action."""

    list_display = (
        "event_at",
        "case_link",
        "event_version",
        "action",
        "states",
        "event_actor",
        "event_agency",
    )
    list_filter = (
        EventTransitionFilter,
        "case__kind",
        ("actor_agency", ActorAgencyFilter),
    )
    list_select_related = ("case", "actor", "actor_agency")
    # Not the notes: a search by a name would tell an accused agency which accusation names
    # whom (检举控告), even though no note is shown.
    search_fields = ("case__number", "case__title")
    date_hierarchy = "at"
    ordering = ("-at", "-pk")
    fields = (
        "case_link",
        "event_version",
        "action",
        "states",
        "event_actor",
        "event_agency",
        "event_at",
        "note_shown",
        "data_text",
    )
    readonly_fields = fields
    event_version = labelled("version", _("版本"))
    event_at = labelled("at", _("时间"))
    event_actor = labelled("actor", _("操作人"))
    event_agency = labelled("actor_agency", _("操作人机构"))

    def get_queryset(self, request: HttpRequest) -> QuerySet[CaseEvent]:
        qs = super().get_queryset(request)
        return qs.filter(case__in=cases_visible_to(request.user).values("pk"))

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            # Per object, per request (ModelAdmin instances are shared between requests).
            hidden = identity_hidden_from(request.user, obj.case)
            obj.identity_hidden = hidden
            obj.secrets = protected_texts([obj.case_id]).get(obj.case_id, []) if hidden else []
        return obj

    @admin.display(description=_("案件"), ordering="case__number")
    def case_link(self, obj: CaseEvent) -> str:
        url = case_admin_url(obj.case)
        return format_html('<a href="{}">{}</a>', url, obj.case.number) if url else str(obj.case)

    @admin.display(description=_("操作"), ordering="transition")
    def action(self, obj: CaseEvent) -> str:
        return event_label(obj.case.kind, obj.transition, obj.from_state)

    @admin.display(description=_("状态变化"))
    def states(self, obj: CaseEvent) -> str:
        return state_change(obj)

    @admin.display(description=_("数据"))
    def data_text(self, obj: CaseEvent) -> str:
        # 检举控告: no party ids for a viewer from whom the petitioner is hidden (they would
        # match the petitioner across cases). Unknown viewer: hidden.
        data = event_data_for(obj, hidden=getattr(obj, "identity_hidden", True))
        text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True)
        return format_html("<pre>{}</pre>", text)

    @admin.display(description=_("备注"))
    def note_shown(self, obj: CaseEvent) -> str:
        return redact(obj.note, getattr(obj, "secrets", [])) or "—"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


# Parties ------------------------------------------------------------------------------------


@admin.register(Party)
class ScopedPartyAdmin(PartyAdmin):
    """Parties of the cases the user may see; never a petitioner hidden from the user
    (检举控告 against their agency or one above it), whatever other case names them."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Party]:
        qs = super().get_queryset(request)
        user = request.user
        if user.is_active and user.is_superuser:
            return qs
        links = CaseParty.objects.filter(case__in=cases_visible_to(user).values("pk"))
        hidden = CaseParty.objects.filter(
            case__involves_accusation=True, case__accused_agency_id__in=user_scope(user).above
        ).exclude(role=CasePartyRole.RESPONDENT)
        return qs.filter(pk__in=links.values("party_id")).exclude(pk__in=hidden.values("party_id"))
