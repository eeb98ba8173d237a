"""Admin for the holiday data behind deadlines, and a read-only view of case clocks.

Clocks are written only by the case services (`mediation.cases.services`); here they can be
listed and filtered, never edited. Holiday overrides are the one piece of deadline data an
administrator maintains by hand (DOMAIN.md §2.3).
"""

from __future__ import annotations

import calendar as stdlib_calendar
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from mediation.cases import labels
from mediation.cases.selectors import cases_visible_to
from mediation.core import clock as system_clock
from mediation.deadlines import policy
from mediation.deadlines.holidays import HolidayDataBusy, holiday_change, holiday_notice_apply
from mediation.deadlines.models import (
    Clock,
    ClockPause,
    ClockStatus,
    HolidayChange,
    HolidayNotice,
    HolidayOverride,
    HolidayYear,
)
from mediation.deadlines.notice import WEEKDAYS, ParsedNotice, parse_notice

HOLIDAY_HELP = _(
    "国务院办公厅每年公布下一年度放假安排（国办发明电）后，可在“导入放假通知”中粘贴通知全文一次导入；"
    "也可逐日录入："
    "① 每一个放假休息日（含与周末连休的日期），“是否上班”不勾选；"
    "② 每一个调休上班日（周六或周日上班），“是否上班”勾选；名称填节日名，依据填通知文号。"
    "全部录入后，再在“已录入年度”中添加该年份——未登记年度的期限仅按周末计算并标记为临时结果。"
    "本表录入的日期优先于 chinese-calendar 程序包数据；每次保存或删除后，"
    "涉及的在办期限由后台自动重新计算并通知承办人。"
)
HOLIDAY_YEAR_HELP = _(
    "只有在该年度的全部放假日和调休上班日都已录入“节假日调整”后，才添加该年份。"
    "添加后，该年度其余日期按普通工作日/周末计算，期限不再标记为临时结果。"
)


def _changed_message(request: HttpRequest, record: Any) -> None:
    if record.change is not None:
        messages.info(
            request,
            gettext("节假日数据已变更（%(n)s 个日期），涉及的在办期限将在后台重新计算。")
            % {"n": len(record.dates)},
        )


class HolidayWritesAdmin(admin.ModelAdmin):
    """Every write of holiday rows from the admin (add, change, delete, the bulk delete action,
    list actions) runs inside `holidays.holiday_change`: serialized with other changes and with
    readers, and recorded for the recompute. A lock that cannot be had is a message, not a 500."""

    def _guarded(self, request: HttpRequest, view: Callable[[], HttpResponse]) -> HttpResponse:
        if request.method != "POST":
            return view()
        try:
            with holiday_change(now=system_clock.now(), actor=request.user) as record:
                response = view()
        except HolidayDataBusy as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(request.get_full_path())
        _changed_message(request, record)
        return response

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return self._guarded(
            request,
            lambda: super(HolidayWritesAdmin, self).changeform_view(
                request, object_id, form_url, extra_context
            ),
        )

    def delete_view(self, request, object_id, extra_context=None):
        return self._guarded(
            request,
            lambda: super(HolidayWritesAdmin, self).delete_view(request, object_id, extra_context),
        )

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        return self._guarded(
            request,
            lambda: super(HolidayWritesAdmin, self).changelist_view(request, extra_context),
        )


@admin.register(HolidayOverride)
class HolidayOverrideAdmin(HolidayWritesAdmin):
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
class HolidayYearAdmin(HolidayWritesAdmin):
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


# 法定期限 → 导入放假通知 ------------------------------------------------------------------------

NOTICE_IMPORT_HELP = _(
    "将国务院办公厅《关于YYYY年部分节假日安排的通知》全文粘贴到下框，点击“预览”。"
    "系统逐项核对“共N天”、星期标注和调休上班日；核对无误后点击“确认导入”，"
    "即写入全部放假日、调休上班日并登记该年度，涉及的在办期限随后自动重新计算。"
)


def notice_months(notice: ParsedNotice) -> list[dict[str, Any]]:
    """Month calendars (Monday first) of the months the notice touches, days marked."""
    rest, work = set(notice.rest_days), set(notice.work_days)
    names = {d: h.name for h in notice.holidays for d in (*h.rest_days, *h.work_days)}
    months = sorted({(d.year, d.month) for d in rest | work})
    out = []
    for year, month in months:
        weeks = []
        for week in stdlib_calendar.Calendar(firstweekday=0).monthdatescalendar(year, month):
            cells = []
            for d in week:
                mark = "rest" if d in rest else "work" if d in work else ""
                cells.append(
                    {
                        "day": d.day if d.month == month else "",
                        "mark": mark,
                        "weekend": d.weekday() >= 5,
                        "title": names.get(d, ""),
                    }
                )
            weeks.append(cells)
        out.append({"label": f"{year} 年 {month} 月", "weeks": weeks})
    return out


@admin.register(HolidayNotice)
class HolidayNoticeAdmin(admin.ModelAdmin):
    """法定期限 → 导入放假通知: paste, preview (month calendars, failed items), confirm. The same
    parser (`notice.parse_notice`) and service (`holidays.holiday_notice_apply`) as the
    `holiday_notice` command."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_import(request)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._may_import(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _may_import(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.has_perms(
            [
                "deadlines.add_holidayoverride",
                "deadlines.change_holidayoverride",
                "deadlines.add_holidayyear",
            ]
        )

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        if not self._may_import(request):
            raise PermissionDenied
        text = request.POST.get("text", "") if request.method == "POST" else ""
        notice = parse_notice(text) if request.method == "POST" else None
        if notice is not None and request.POST.get("confirm") and not notice.problems:
            try:
                applied = holiday_notice_apply(notice, now=system_clock.now(), actor=request.user)
            except HolidayDataBusy as exc:
                messages.error(request, str(exc))
            else:
                messages.success(
                    request,
                    gettext(
                        "已导入 %(year)s 年放假安排（%(source)s）：新增 %(created)s 日，"
                        "修改 %(updated)s 日。涉及的在办期限将在后台重新计算。"
                    )
                    % {
                        "year": notice.year,
                        "source": notice.source,
                        "created": applied.created,
                        "updated": applied.updated,
                    },
                )
                return HttpResponseRedirect(
                    reverse("admin:deadlines_holidayoverride_changelist")
                    + f"?date__year={notice.year}"
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("导入放假通知"),
            "help": NOTICE_IMPORT_HELP,
            "text": text,
            "notice": notice,
            "months": notice_months(notice) if notice is not None else [],
            "weekdays": list(WEEKDAYS),
            "holidays": sorted(notice.holidays, key=lambda h: h.first) if notice else [],
            "can_confirm": notice is not None and not notice.problems and notice.holidays,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/deadlines/holiday_notice_import.html", context)


@admin.register(HolidayChange)
class HolidayChangeAdmin(admin.ModelAdmin):
    """Read-only log of holiday-data changes and their recompute."""

    list_display = ("created_at", "actor", "source", "first_date", "last_date", "status")
    list_filter = ("status",)
    fields = (
        "created_at",
        "actor",
        "source",
        "dates",
        "first_date",
        "last_date",
        "status",
        "finished_at",
        "counts",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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
