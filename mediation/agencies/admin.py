"""Admin for agencies (机构): the village → township → county tree, its heads and prefixes.

Non-superusers see their place in the tree only (their agency, what is below it for supervisors,
and the chain above it). Group-robot webhook URLs carry their secret key: the admin never shows
one back, it only says whether one is set; a new URL replaces it, an empty field keeps it.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from mediation.agencies.models import Agency, ReviewingOrgan
from mediation.agencies.selectors import user_scope


class AgencyForm(forms.ModelForm):
    webhook_url = forms.URLField(
        label=_("群机器人 Webhook"),
        required=False,
        assume_scheme="https",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("地址含密钥，保存后不再显示；留空则保持原设置，填入新地址则替换。"),
    )
    clear_webhook = forms.BooleanField(label=_("删除已设置的 Webhook"), required=False)

    class Meta:
        model = Agency
        fields = (
            "name",
            "code",
            "kind",
            "level",
            "parent",
            "is_active",
            "case_number_prefix",
            "head",
            "webhook_url",
        )

    def clean_webhook_url(self) -> str:
        value = self.cleaned_data.get("webhook_url") or ""
        if self.cleaned_data.get("clear_webhook"):
            return ""
        return value or (self.instance.webhook_url if self.instance.pk else "")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("clear_webhook"):
            data["webhook_url"] = ""
        return data


class ReviewingOrganInline(admin.TabularInline):
    model = ReviewingOrgan
    fk_name = "agency"
    extra = 0
    autocomplete_fields = ("reviewer",)
    verbose_name = _("复查/复核机关（上一级机构之外）")
    verbose_name_plural = _("复查/复核机关（上一级机构之外）")


@admin.register(Agency)
class AgencyAdmin(admin.ModelAdmin):
    form = AgencyForm
    list_display = (
        "name",
        "code",
        "level",
        "kind",
        "parent",
        "head",
        "member_count",
        "case_number_prefix",
        "webhook_set",
        "is_active",
    )
    list_filter = ("level", "kind", "is_active")
    list_select_related = ("parent", "head")
    search_fields = ("name", "code", "case_number_prefix")
    autocomplete_fields = ("parent", "head")
    ordering = ("level", "parent__name", "name")
    inlines = (ReviewingOrganInline,)
    readonly_fields = ("webhook_set",)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        editable = self.has_change_permission(request, obj) or obj is None
        webhook = ("webhook_url", "clear_webhook") if editable else ()
        return (
            (None, {"fields": ("name", "code", "kind", "level", "parent", "is_active")}),
            (
                _("办理设置"),
                {
                    "fields": ("case_number_prefix", "head", "webhook_set", *webhook),
                    "description": _(
                        "负责人签收一级督办单并审批延期（信访工作条例第三十四条）；上级机构决定"
                        "上交的去向，也是复查、复核的默认机关（另可在下方指定）。"
                    ),
                },
            ),
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Agency]:
        qs = super().get_queryset(request).annotate(_members=Count("members", distinct=True))
        if request.user.is_active and request.user.is_superuser:
            return qs
        scope = user_scope(request.user)
        return qs.filter(pk__in=scope.below | scope.above)

    @admin.display(description=_("人员数"), ordering="_members")
    def member_count(self, obj: Agency) -> int:
        return getattr(obj, "_members", 0)

    @admin.display(description=_("已设置 Webhook"), boolean=True)
    def webhook_set(self, obj: Agency) -> bool:
        return bool(obj.webhook_url)
