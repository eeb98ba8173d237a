"""Forms of the web pages that are not a transition's step form (those live in cases.steps)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from mediation.agencies.models import Agency
from mediation.cases.models import (
    AppliesTo,
    CaseKind,
    CasePartyRole,
    Category,
    Channel,
    MediationTrack,
    PetitionType,
    RiskLevel,
)
from mediation.core.text import validate_visible_text
from mediation.parties import idnumbers

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class RegisterCaseForm(forms.Form):
    """登记: the case itself. The parties come in `PartyFormSet`."""

    title = forms.CharField(
        label=_("案件标题"),
        max_length=200,
        validators=[validate_visible_text],
        help_text=_("简要概括纠纷或信访事项，如“邻里宅基地界址纠纷”。"),
    )
    category = forms.ModelChoiceField(label=_("类型"), queryset=Category.objects.none())
    channel = forms.ModelChoiceField(label=_("来源渠道"), queryset=Channel.objects.none())
    received_on = forms.DateField(
        label=_("收到日期"), widget=DATE_INPUT, help_text=_("法定期限自收到之日起算。")
    )
    description = forms.CharField(
        label=_("简要情况"), widget=forms.Textarea(attrs={"rows": 4}), max_length=20000
    )
    # Dispute only.
    mediation_track = forms.ChoiceField(
        label=_("调解类型"), choices=MediationTrack.choices, initial=MediationTrack.PEOPLE
    )
    risk_level = forms.ChoiceField(
        label=_("风险等级"), choices=RiskLevel.choices, initial=RiskLevel.LOW
    )
    # Petition only.
    petition_type = forms.ChoiceField(label=_("信访类型"), choices=PetitionType.choices)
    accused_agency = forms.ModelChoiceField(
        label=_("被检举控告机构"),
        queryset=Agency.objects.none(),
        required=False,
        help_text=_("检举控告事项：该机构及其下属机构将看不到信访人身份。"),
    )
    headcount = forms.IntegerField(label=_("人数"), min_value=1, initial=1)

    DISPUTE_ONLY = ("mediation_track", "risk_level")
    PETITION_ONLY = ("petition_type", "accused_agency", "headcount")

    def __init__(self, *args: Any, kind: str, today: dt.date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.today = today
        applies = AppliesTo.DISPUTE if kind == CaseKind.DISPUTE else AppliesTo.PETITION
        self.fields["category"].queryset = Category.objects.filter(
            Q(applies_to=applies) | Q(applies_to=AppliesTo.BOTH), is_active=True
        )
        if kind == CaseKind.PETITION:
            self.fields["category"].label = _("内容分类")
        self.fields["channel"].queryset = Channel.objects.filter(is_active=True)
        self.fields["accused_agency"].queryset = Agency.objects.active()
        self.fields["received_on"].initial = today
        drop = self.PETITION_ONLY if kind == CaseKind.DISPUTE else self.DISPUTE_ONLY
        for name in drop:
            del self.fields[name]

    def clean_received_on(self) -> dt.date:
        value = self.cleaned_data["received_on"]
        if value > self.today:
            raise forms.ValidationError(_("收到日期不能晚于今天。"))
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if (
            self.kind == CaseKind.PETITION
            and data.get("accused_agency") is not None
            and data.get("petition_type") != PetitionType.ACCUSATION
        ):
            self.add_error("accused_agency", _("只有检举控告事项需要填写被检举控告机构。"))
        return data


ROLE_CHOICES = {
    CaseKind.DISPUTE: [
        (CasePartyRole.APPLICANT, CasePartyRole.APPLICANT.label),
        (CasePartyRole.RESPONDENT, CasePartyRole.RESPONDENT.label),
        (CasePartyRole.OTHER, CasePartyRole.OTHER.label),
    ],
    CaseKind.PETITION: [
        (CasePartyRole.PETITIONER, CasePartyRole.PETITIONER.label),
        (CasePartyRole.REPRESENTATIVE, CasePartyRole.REPRESENTATIVE.label),
        (CasePartyRole.OTHER, CasePartyRole.OTHER.label),
    ],
}


class PartyForm(forms.Form):
    name = forms.CharField(label=_("姓名/名称"), max_length=200, validators=[validate_visible_text])
    role = forms.ChoiceField(label=_("身份"), choices=())
    id_number = forms.CharField(
        label=_("身份证号"),
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "text"}),
    )
    phone = forms.CharField(
        label=_("联系电话"),
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
    )
    address = forms.CharField(label=_("住址"), max_length=255, required=False)
    sms_consent = forms.BooleanField(
        label=_("当事人同意接收短信（查询码及办理进展）"), required=False
    )

    def __init__(self, *args: Any, kind: str, today: dt.date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.today = today
        self.fields["role"].choices = ROLE_CHOICES[kind]

    def clean_id_number(self) -> str:
        value = (self.cleaned_data.get("id_number") or "").strip()
        if not value:
            return ""
        try:
            return idnumbers.validate_id_number(value, today=self.today)
        except idnumbers.InvalidIdNumber as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_phone(self) -> str:
        value = (self.cleaned_data.get("phone") or "").strip()
        try:
            return idnumbers.normalise_phone(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


class BasePartyFormSet(forms.BaseFormSet):
    def __init__(self, *args: Any, kind: str, today: dt.date, **kwargs: Any) -> None:
        self.kind = kind
        self.today = today
        super().__init__(*args, **kwargs)

    def get_form_kwargs(self, index: int | None) -> dict[str, Any]:
        roles = [value for value, _label in ROLE_CHOICES[self.kind]]
        # The first row is the applicant (petitioner), the next ones default to the other side.
        role = roles[0] if index == 0 else roles[1]
        return {"kind": self.kind, "today": self.today, "initial": {"role": role}}

    def clean(self) -> None:
        if any(self.errors):
            return
        filled = [f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        if not filled:
            raise forms.ValidationError(_("请至少填写一名当事人。"))
        roles = [f.cleaned_data["role"] for f in filled]
        if self.kind == CaseKind.PETITION:
            if CasePartyRole.PETITIONER not in roles and CasePartyRole.REPRESENTATIVE not in roles:
                raise forms.ValidationError(_("请至少填写一名信访人。"))
            if roles.count(CasePartyRole.REPRESENTATIVE) > 5:
                raise forms.ValidationError(
                    _("集体访代表人不得超过 5 人（信访工作条例第二十条）。")
                )
        elif CasePartyRole.APPLICANT not in roles:
            raise forms.ValidationError(_("请至少填写一名申请人。"))
        numbers = [f.cleaned_data["id_number"] for f in filled if f.cleaned_data.get("id_number")]
        if len(numbers) != len(set(numbers)):
            raise forms.ValidationError(_("同一身份证号填写了两次。"))

    def filled(self) -> list[dict[str, Any]]:
        return [f.cleaned_data for f in self.forms if f.cleaned_data]


def party_formset_class(kind: str) -> type[BasePartyFormSet]:
    """Disputes start with two rows (申请人, 被申请人), petitions with one (信访人)."""
    return forms.formset_factory(
        PartyForm,
        formset=BasePartyFormSet,
        extra=1 if kind == CaseKind.DISPUTE else 0,
        min_num=1,
        validate_min=True,
        max_num=50,
    )


class RevealForm(forms.Form):
    purpose = forms.CharField(
        label=_("查看用途"),
        max_length=200,
        help_text=_("查看完整身份证号将被记录（居民身份证法第十三条）。"),
    )


class StatsFilterForm(forms.Form):
    """The statistics period (page and CSV exports): both ends between 2000-01-01 and a year
    from today, at most STATS_MAX_DAYS long. Anything else is a form error and the page shows
    the default period: no date arithmetic near `datetime`'s limits, no eight-thousand-year
    sums over the daily rollups."""

    EARLIEST = dt.date(2000, 1, 1)
    MAX_DAYS = 3 * 366

    date_from = forms.DateField(label=_("开始日期"), widget=DATE_INPUT, required=False)
    date_to = forms.DateField(label=_("结束日期"), widget=DATE_INPUT, required=False)

    def __init__(self, *args: Any, today: dt.date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.today = today

    def _bounded(self, name: str) -> dt.date | None:
        value = self.cleaned_data.get(name)
        latest = self.today + dt.timedelta(days=366)
        if value is not None and not (self.EARLIEST <= value <= latest):
            raise forms.ValidationError(
                _("日期须在 %(a)s 至 %(b)s 之间。")
                % {"a": self.EARLIEST.isoformat(), "b": latest.isoformat()}
            )
        return value

    def clean_date_from(self) -> dt.date | None:
        return self._bounded("date_from")

    def clean_date_to(self) -> dt.date | None:
        return self._bounded("date_to")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        a, b = data.get("date_from"), data.get("date_to")
        if a and b and a > b:
            raise forms.ValidationError(_("开始日期不能晚于结束日期。"))
        if a and b and (b - a).days >= self.MAX_DAYS:
            raise forms.ValidationError(_("统计期间不能超过 %(n)d 天。") % {"n": self.MAX_DAYS})
        return data


class PhoneRevealForm(forms.Form):
    purpose = forms.CharField(label=_("查看用途"), max_length=200)


WIDE_AGENCY_LIST = 50

DUE_CHOICES = [
    ("", _("全部")),
    ("overdue", _("已超期（红牌）")),
    ("soon", _("3 个工作日内到期（黄牌）")),
]


class CaseSearchForm(forms.Form):
    """The search box and filters of the case lists. Invalid values are shown as errors and
    ignored (the list is never a 500 nor silently unfiltered by something else)."""

    q = forms.CharField(label=_("搜索"), max_length=100, required=False)
    kind = forms.ChoiceField(label=_("类别"), required=False)
    state = forms.ChoiceField(label=_("状态"), required=False)
    category = forms.ModelChoiceField(
        label=_("类型"), queryset=Category.objects.none(), required=False
    )
    channel = forms.ModelChoiceField(
        label=_("来源渠道"), queryset=Channel.objects.none(), required=False
    )
    holder_agency = forms.ModelChoiceField(
        label=_("承办机构"), queryset=Agency.objects.none(), required=False
    )
    assignee = forms.ModelChoiceField(label=_("承办人"), queryset=None, required=False)
    registered_from = forms.DateField(label=_("登记日期起"), widget=DATE_INPUT, required=False)
    registered_to = forms.DateField(label=_("登记日期止"), widget=DATE_INPUT, required=False)
    due = forms.ChoiceField(label=_("期限"), choices=DUE_CHOICES, required=False)
    closed = forms.BooleanField(label=_("含已结案"), required=False)

    def __init__(self, *args: Any, agency_ids: frozenset[int], agency_id: int | None, **kw: Any):
        from mediation.accounts.models import User
        from mediation.cases.models import DisputeState, PetitionState

        super().__init__(*args, **kw)
        self.fields["kind"].choices = [("", _("全部")), *CaseKind.choices]
        states: dict[str, str] = {}
        for value, label in [*DisputeState.choices, *PetitionState.choices]:
            states.setdefault(value, str(label))
        self.fields["state"].choices = [("", _("全部")), *sorted(states.items())]
        self.fields["category"].queryset = Category.objects.filter(is_active=True)
        self.fields["channel"].queryset = Channel.objects.filter(is_active=True)
        # Within the user's scope only (a supervisor: every agency below theirs). A county's
        # thousand village committees are not listed (rendering them cost a county supervisor's
        # list 300 ms): the townships are, and any agency of the scope is still accepted.
        field = self.fields["holder_agency"]
        field.queryset = Agency.objects.filter(pk__in=agency_ids).order_by("level", "name")
        if len(agency_ids) > WIDE_AGENCY_LIST:
            from mediation.agencies.models import AgencyLevel

            shown = field.queryset.exclude(level=AgencyLevel.VILLAGE).values_list("pk", "name")
            field.widget.choices = [("", "---------"), *shown]
        self.fields["assignee"].queryset = User.objects.filter(
            agency_id=agency_id, is_active=True
        ).order_by("username")
        for name in ("q",):
            self.fields[name].widget.attrs.update(
                {"type": "search", "placeholder": _("案号、当事人姓名、身份证号、电话或标题文字")}
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        lo, hi = data.get("registered_from"), data.get("registered_to")
        for name in ("registered_from", "registered_to"):
            day = data.get(name)
            if day is not None and not 1990 <= day.year <= 2199:
                self.add_error(name, _("日期超出有效范围。"))
        if lo and hi and lo > hi:
            self.add_error("registered_to", _("结束日期不能早于开始日期。"))
        return data


# The public side (/public/) ---------------------------------------------------------------------


class PublicApplicationForm(forms.Form):
    """申请调解 online. Each party's details are checked by the staff registration's own
    `PartyForm` (ID checksum, phone, lengths, visible text), so both doors refuse the same
    input with the same messages; control characters never reach a form (the middleware)."""

    applicant_name = forms.CharField(label=_("申请人姓名"), max_length=200)
    applicant_id_number = forms.CharField(
        label=_("申请人身份证号"),
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "text"}),
    )
    applicant_phone = forms.CharField(
        label=_("申请人手机号码"),
        max_length=32,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
        help_text=_("用于查询办理进度（手机号后四位）和接收短信通知。"),
    )
    applicant_address = forms.CharField(label=_("申请人住址"), max_length=255, required=False)
    other_name = forms.CharField(label=_("对方当事人姓名或名称"), max_length=200, required=False)
    other_phone = forms.CharField(
        label=_("对方联系电话"),
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
    )
    other_address = forms.CharField(label=_("对方住址"), max_length=255, required=False)
    intake_agency = forms.ModelChoiceField(
        label=_("向哪个乡镇（街道）申请"), queryset=Agency.objects.none(), empty_label=None
    )
    place = forms.CharField(
        label=_("纠纷发生地"),
        max_length=200,
        validators=[validate_visible_text],
        help_text=_("村（社区）名称和具体地点，如“将官池村二组”。"),
    )
    category = forms.ModelChoiceField(label=_("纠纷类型"), queryset=Category.objects.none())
    summary = forms.CharField(
        label=_("纠纷简要情况"),
        max_length=5000,
        validators=[validate_visible_text],
        widget=forms.Textarea(attrs={"rows": 5}),
    )
    requests = forms.CharField(
        label=_("申请事项"),
        max_length=2000,
        validators=[validate_visible_text],
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("希望通过调解解决的问题，可分条填写。"),
    )
    sms_consent = forms.BooleanField(
        label=_("同意接收本事项的短信通知（查询码、受理、调解时间、办结等）"), required=False
    )
    privacy = forms.BooleanField(label=_("我已阅读并同意《个人信息处理告知》"))

    def __init__(self, *args: Any, today: dt.date, agencies: list[Agency], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.today = today
        self.fields["intake_agency"].queryset = Agency.objects.filter(
            pk__in=[a.pk for a in agencies]
        ).order_by("name")
        if len(agencies) == 1:
            self.fields["intake_agency"].initial = agencies[0].pk
        self.fields["category"].queryset = Category.objects.filter(
            Q(applies_to=AppliesTo.DISPUTE) | Q(applies_to=AppliesTo.BOTH), is_active=True
        )
        self.fields["sms_consent"].initial = True

    def _party(self, prefix: str, role: str, data: dict[str, Any]) -> dict[str, Any] | None:
        form = PartyForm(
            data={
                "name": data.get(f"{prefix}_name", ""),
                "role": role,
                "id_number": data.get(f"{prefix}_id_number", ""),
                "phone": data.get(f"{prefix}_phone", ""),
                "address": data.get(f"{prefix}_address", ""),
            },
            kind=CaseKind.DISPUTE,
            today=self.today,
        )
        if form.is_valid():
            return form.cleaned_data
        for name, errors in form.errors.items():
            target = f"{prefix}_{name}"
            for e in errors:
                self.add_error(target if target in self.fields else None, e)
        return None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        applicant = self._party("applicant", CasePartyRole.APPLICANT, data)
        if applicant is not None:
            if not applicant.get("phone"):
                self.add_error("applicant_phone", _("请填写手机号码。"))
            elif not applicant["phone"].startswith("1"):
                self.add_error("applicant_phone", _("请填写11位手机号码，用于查询和短信通知。"))
            data["applicant"] = applicant
        if (data.get("other_name") or "").strip() or data.get("other_phone"):
            other = self._party("other", CasePartyRole.RESPONDENT, data)
            if other is not None:
                data["other"] = other
        return data


class PublicTrackForm(forms.Form):
    code = forms.CharField(
        label=_("查询码"),
        max_length=32,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
        ),
        help_text=_("12位，登记时告知或短信发送，如 ACEF-HKMN-PRTW。"),
    )
    phone_last4 = forms.CharField(
        label=_("登记手机号后四位"),
        max_length=4,
        min_length=4,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )

    def clean_phone_last4(self) -> str:
        value = self.cleaned_data["phone_last4"]
        if not value.isascii() or not value.isdigit():
            raise forms.ValidationError(_("请填写4位数字。"))
        return value


class PublicRatingForm(forms.Form):
    value = forms.ChoiceField(
        label=_("您对办理结果的评价"),
        choices=[
            ("satisfied", _("满意")),
            ("basic", _("基本满意")),
            ("unsatisfied", _("不满意")),
        ],
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(
        label=_("意见和建议"),
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
