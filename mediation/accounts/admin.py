"""Admin for users: django.contrib.auth's UserAdmin plus agency, role, name and phone."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from mediation.accounts.models import User
from mediation.agencies.selectors import user_scope

WORK_FIELDS = ("display_name", "agency", "role", "phone")


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = (
        "username",
        "display_name",
        "agency",
        "role",
        "phone",
        "is_staff",
        "is_active",
        "last_login",
    )
    list_filter = ("role", "agency__level", "is_staff", "is_superuser", "is_active", "groups")
    list_select_related = ("agency",)
    search_fields = ("username", "display_name", "phone", "agency__name")
    autocomplete_fields = ("agency",)
    ordering = ("agency__name", "username")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("所属机构与角色"), {"fields": WORK_FIELDS}),
        (_("个人信息"), {"fields": ("first_name", "last_name", "email")}),
        (
            _("权限"),
            {
                "fields": (
                    "is_active",
                    "is_staff",
                    "is_superuser",
                    "groups",
                    "user_permissions",
                ),
                "description": _(
                    "办案操作由“角色”和所属机构决定；“可查看完整身份证号”权限在此单独授予。"
                ),
            },
        ),
        (_("重要日期"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "usable_password", "password1", "password2"),
            },
        ),
        (_("所属机构与角色"), {"classes": ("wide",), "fields": WORK_FIELDS}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        """Superusers see every account; others the staff of their agency scope."""
        qs = super().get_queryset(request)
        if request.user.is_active and request.user.is_superuser:
            return qs
        return qs.filter(agency_id__in=user_scope(request.user).below)
