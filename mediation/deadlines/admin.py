"""Admin for the holiday data behind deadlines, and a read-only view of case clocks.

Clocks are written only by the case services (`mediation.cases.services`); here they can be
listed and filtered, never edited. Holiday overrides are the one piece of deadline data an
administrator maintains by hand (DOMAIN.md §2.3).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from mediation.cases import labels
from mediation.cases.selectors import cases_visible_to
from mediation.core import clock as system_clock
from mediation.deadlines import policy
from mediation.deadlines.models import Clock, ClockPause, ClockStatus, HolidayOverride, HolidayYear

HOLIDAY_HELP = _(
    "国务院办公厅每年公布下一年度放假安排（国办发明电）后，请逐日录入："
    "① 每一个放假休息日（含与周末连休的日期），“是否上班”不勾选；"
    "② 每一个调休上班日（周六或周日上班），“是否上班”勾选；名称填节日名，依据填通知文号。"
    "全部录入后，再在“已录入年度”中添加该年份——未登记年度的期限仅按周末计算并标记为临时结果。"
    "本表录入的日期优先于 chinese-calendar 程序包数据，新的计算即时生效。"
)
HOLIDAY_YEAR_HELP = _(
    "只有在该年度的全部放假日和调休上班日都已录入“节假日调整”后，才添加该年份。"
    "添加后，该年度其余日期按普通工作日/周末计算，期限不再标记为临时结果。"
)


@admin.register(HolidayOverride)
class HolidayOverrideAdmin(admin.ModelAdmin):
    list_display = ("date", "weekday", "is_workday", "name", "source")
    list_filter = ("is_workday", "name")
    search_fields = ("name", "source")
    date_hierarchy = "date"
    ordering = ("date",)
    fieldsets = (
        (None, {"fields": ("date", "is_workday", "name", "source"), "description": HOLIDAY_HELP}),
    )

    @admin.display(description=_("星期"))
    def weekday(self, obj: HolidayOverride) -> str:
        return "一二三四五六日"[obj.date.weekday()]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        kwargs["help_texts"] = {
            "is_workday": _("勾选：调休上班日（周末上班）；不勾选：放假休息日。"),
            "name": _("节日名称，如“春节”“国庆节”。"),
            "source": _("放假通知文号，如“国办发明电〔2024〕12号”。"),
        }
        return super().get_form(request, obj, change=change, **kwargs)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        if request.method == "GET":
            messages.info(request, HOLIDAY_HELP)
        return super().changelist_view(request, extra_context=extra_context)


@admin.register(HolidayYear)
class HolidayYearAdmin(admin.ModelAdmin):
    list_display = ("year", "source", "entered_at", "override_count")
    search_fields = ("source",)
    ordering = ("-year",)
    fieldsets = ((None, {"fields": ("year", "source"), "description": HOLIDAY_YEAR_HELP}),)

    @admin.display(description=_("该年度已录入的调整日数"))
    def override_count(self, obj: HolidayYear) -> int:
        return HolidayOverride.objects.filter(date__year=obj.year).count()

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        if request.method == "GET":
            messages.info(request, HOLIDAY_YEAR_HELP)
        return super().changelist_view(request, extra_context=extra_context)


CLOCK_KINDS = {
    policy.ClockKind.DUTY: _("本机关办理期限"),
    policy.ClockKind.WINDOW: _("当事人申请期间"),
    policy.ClockKind.WATCH: _("他机关期限（只读）"),
}


class OverdueFilter(admin.SimpleListFilter):
    """超期: a running clock whose due instant (end of the due day, Asia/Shanghai) has passed."""

    title = _("是否超期")
    parameter_name = "overdue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("已超期")), ("no", _("未超期"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Clock]) -> QuerySet[Clock]:
        now = system_clock.now()
        if self.value() == "yes":
            return queryset.filter(status=ClockStatus.RUNNING, due_at__lt=now)
        if self.value() == "no":
            return queryset.exclude(status=ClockStatus.RUNNING, due_at__lt=now)
        return queryset


class RuleFilter(admin.SimpleListFilter):
    title = _("期限规则")
    parameter_name = "rule"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [(code, f"{rule.label}（{code}）") for code, rule in policy.RULES.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Clock]) -> QuerySet[Clock]:
        if self.value():
            return queryset.filter(rule_code=self.value())
        return queryset


class KindFilter(admin.SimpleListFilter):
    title = _("性质")
    parameter_name = "kind"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [(str(k), v) for k, v in CLOCK_KINDS.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Clock]) -> QuerySet[Clock]:
        if self.value():
            return queryset.filter(kind=self.value())
        return queryset


def case_admin_url(case: Any) -> str | None:
    """The change page of a case in its kind's admin (矛盾纠纷 or 信访事项)."""
    model = "dispute" if case.kind == "dispute" else "petition"
    try:
        return reverse(f"admin:cases_{model}_change", args=[case.pk])
    except NoReverseMatch:
        return None


class ClockPauseInline(admin.TabularInline):
    model = ClockPause
    fields = ("start_date", "end_date", "reason")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Clock)
class ClockAdmin(admin.ModelAdmin):
    """Read-only: clocks are started, paused and stopped by the case services."""

    list_display = (
        "case_link",
        "rule_label",
        "kind_label",
        "start_date",
        "due",
        "overdue_flag",
        "status",
        "provisional",
        "extra_days",
        "paused_days",
    )
    list_filter = (OverdueFilter, "status", RuleFilter, "provisional", KindFilter)
    list_select_related = ("case",)
    search_fields = ("case__number", "case__title", "rule_code")
    date_hierarchy = "due"
    ordering = ("due_at", "pk")
    inlines = (ClockPauseInline,)
    fields = (
        "case_link",
        "rule_code",
        "rule_label",
        "kind_label",
        "entered_state",
        "status",
        "start_date",
        "nominal_due",
        "due",
        "due_at",
        "provisional",
        "extra_days",
        "paused_days",
        "explanation_text",
        "started_at",
        "stopped_at",
        "stop_reason",
        "generation",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Clock]:
        qs = super().get_queryset(request)
        return qs.filter(case__in=cases_visible_to(request.user).values("pk"))

    @admin.display(description=_("案件"), ordering="case__number")
    def case_link(self, obj: Clock) -> str:
        url = case_admin_url(obj.case)
        if url is None:
            return str(obj.case)
        return format_html('<a href="{}">{}</a>', url, obj.case.number)

    @admin.display(description=_("期限"), ordering="rule_code")
    def rule_label(self, obj: Clock) -> str:
        return labels.rule_label(obj.rule_code)

    @admin.display(description=_("性质"), ordering="kind")
    def kind_label(self, obj: Clock) -> str:
        return str(CLOCK_KINDS.get(obj.kind, obj.kind))

    @admin.display(description=_("超期"), boolean=True)
    def overdue_flag(self, obj: Clock) -> bool | None:
        if obj.status != ClockStatus.RUNNING:
            return None
        return obj.due_at < system_clock.now()

    @admin.display(description=_("计算说明"))
    def explanation_text(self, obj: Clock) -> str:
        if not obj.explanation:
            return "—"
        return format_html_join("", "<div>{}</div>", ((line,) for line in obj.explanation))

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
