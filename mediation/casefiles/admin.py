"""The case file in the admin site: for administrators (superusers), read-only. They see what
was withdrawn, by whom and why, and who downloaded what."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from mediation.casefiles.models import Attachment, FileAccess


class _SuperuserReadOnly(admin.ModelAdmin):
    def has_module_permission(self, request: Any) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: Any, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Attachment)
class AttachmentAdmin(_SuperuserReadOnly):
    list_display = (
        "original_name",
        "case",
        "doc_type",
        "content_type",
        "size",
        "uploaded_by",
        "uploaded_at",
        "withdrawn_at",
        "withdrawn_by",
    )
    list_filter = ("doc_type", ("withdrawn_at", admin.EmptyFieldListFilter))
    list_select_related = ("case", "uploaded_by", "withdrawn_by")
    search_fields = ("case__number",)


@admin.register(FileAccess)
class FileAccessAdmin(_SuperuserReadOnly):
    list_display = ("at", "kind", "case", "attachment", "user", "agency")
    list_select_related = ("case", "attachment", "user", "agency")
    list_filter = ("kind",)
