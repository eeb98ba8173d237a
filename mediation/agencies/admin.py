"""Admin for agencies (机构): the village → township → county tree, its heads and prefixes."""

from __future__ import annotations

from django.contrib import admin
from django.db import models
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from mediation.agencies.models import Agency


@admin.register(Agency)
class AgencyAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "code",
        "level",
        "kind",
        "parent",
        "head",
        "member_count",
        "case_number_prefix",
        "is_active",
    )
    list_filter = ("level", "kind", "is_active")
    list_select_related = ("parent", "head")
    search_fields = ("name", "code", "case_number_prefix")
    autocomplete_fields = ("parent", "head")
    ordering = ("level", "parent__name", "name")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = (
        (None, {"fields": ("name", "code", "kind", "level", "parent", "is_active")}),
        (
            _("办理设置"),
            {
                "fields": ("case_number_prefix", "head", "webhook_url"),
                "description": _(
                    "负责人用于延期审批（信访工作条例第三十四条）；上级机构决定上交、复查的默认去向。"
                ),
            },
        ),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Agency]:
        return super().get_queryset(request).annotate(_members=Count("members", distinct=True))

    @admin.display(description=_("人员数"), ordering="_members")
    def member_count(self, obj: Agency) -> int:
        return getattr(obj, "_members", 0)
