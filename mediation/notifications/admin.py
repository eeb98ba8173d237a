"""Admin of notifications, deliveries and channel preferences.

Non-superusers see what was sent to people of their agency scope (their own agency, and below
it for supervisors), and only about cases they may open: a notice names its case.
"""

from django.contrib import admin
from django.db.models import Q

from mediation.agencies.selectors import user_scope
from mediation.cases.selectors import cases_visible_to
from mediation.notifications.models import ChannelPreference, Delivery, Notification


def _notifications_in_scope(user):
    return Q(recipient__agency_id__in=user_scope(user).below) & (
        Q(case__isnull=True) | Q(case__in=cases_visible_to(user).values("pk"))
    )


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    fields = ("channel", "status", "attempts", "next_attempt_at", "sent_at", "last_error")
    readonly_fields = fields


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("id", "recipient", "kind", "subject", "case", "created_at", "read_at")
    list_filter = ("kind",)
    search_fields = ("subject", "key", "recipient__username")
    raw_id_fields = ("recipient", "case")
    readonly_fields = ("key", "created_at")
    inlines = [DeliveryInline]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_active and request.user.is_superuser:
            return qs
        return qs.filter(_notifications_in_scope(request.user))


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    """Failed deliveries are visible here with their error (filter by status)."""

    list_display = (
        "id",
        "notification",
        "channel",
        "status",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "last_error",
    )
    list_filter = ("status", "channel")
    search_fields = ("last_error", "address", "notification__key")
    raw_id_fields = ("notification",)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_active and request.user.is_superuser:
            return qs
        allowed = Notification.objects.filter(_notifications_in_scope(request.user))
        return qs.filter(notification__in=allowed.values("pk"))

    readonly_fields = (
        "claimed_by",
        "lease_until",
        "dispatched_until",
        "sent_at",
        "failed_at",
        "created_at",
    )
    actions = ["retry_now"]

    @admin.action(description="立即重试（重置为待发送）")
    def retry_now(self, request, queryset):
        from django.utils import timezone

        count = queryset.exclude(status="sent").update(
            status="pending",
            next_attempt_at=timezone.now(),
            lease_until=None,
            dispatched_until=None,
        )
        self.message_user(request, f"已重置 {count} 条发送记录")


@admin.register(ChannelPreference)
class ChannelPreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "agency", "email", "sms", "webhook")
    raw_id_fields = ("user", "agency")

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_active and request.user.is_superuser:
            return qs
        below = user_scope(request.user).below
        return qs.filter(Q(user__agency_id__in=below) | Q(agency_id__in=below))
