"""Admin of the escalation ledger and the sweep log: read-only; supervisors act through the
services (audited). Non-superusers see the escalations they may see (`escalation_visible`:
of cases they may open, or addressed to their agency scope)."""

from django.contrib import admin
from django.db.models import Q

from mediation.agencies.selectors import user_scope
from mediation.cases.selectors import cases_visible_to
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
        "notice_label",
        "created_at",
        "ack_due_at",
        "acknowledged_at",
        "resolution",
    )
    list_filter = ("status", "level")
    search_fields = ("case__number", "case__title")
    raw_id_fields = ("clock", "case", "agency", "issuer", "acknowledged_by", "resolved_by")

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        user = request.user
        if user.is_active and user.is_superuser:
            return qs
        return qs.filter(
            Q(case__in=cases_visible_to(user).values("pk"))
            | Q(agency_id__in=user_scope(user).below)
        )

    @admin.display(description="督办单编号")
    def notice_label(self, obj):
        return obj.notice_label or "—"

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
