"""Read side of the in-app inbox."""

from __future__ import annotations

from django.db.models import QuerySet

from mediation.accounts.models import User
from mediation.notifications.models import Delivery, DeliveryStatus, Notification


def notification_list_for(*, user: User, unread_only: bool = False) -> QuerySet[Notification]:
    """The user's inbox, newest first."""
    qs = Notification.objects.filter(recipient=user).select_related("case")
    if unread_only:
        qs = qs.filter(read_at__isnull=True)
    return qs.order_by("-created_at", "-id")


def notification_unread_count(*, user: User) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def delivery_list_failed() -> QuerySet[Delivery]:
    """Deliveries given up on, for the admin and operators."""
    return (
        Delivery.objects.filter(status=DeliveryStatus.FAILED)
        .select_related("notification")
        .order_by("-failed_at", "-id")
    )
