from django.contrib import admin

from mediation.escalation.models import Escalation, SweepRun


@admin.register(Escalation)
class EscalationAdmin(admin.ModelAdmin):
    """Ledger rows: read-only here; supervisors act through the services (audited)."""

    list_display = (
        "id",
        "case",
        "level",
        "status",
        "agency",
        "created_at",
        "ack_due_at",
        "acknowledged_at",
        "resolution",
    )
    list_filter = ("status", "level")
    search_fields = ("case__number", "case__title")
    raw_id_fields = ("clock", "case", "agency", "acknowledged_by", "resolved_by")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SweepRun)
class SweepRunAdmin(admin.ModelAdmin):
    list_display = ("id", "trigger", "runner", "started_at", "finished_at", "swept_until", "error")
    list_filter = ("trigger",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
