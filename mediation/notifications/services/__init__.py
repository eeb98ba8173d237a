"""Notification services: the outbox (creation, inbox) and delivery, one module each.

Callers import the public functions from here; the modules are `outbox` and `delivery`
(tunables such as `delivery.CLAIM_CHUNK` live in theirs).
"""

from mediation.notifications.services.delivery import (
    DeliveryTally,
    backoff_seconds,
    deliveries_claimable_ids,
    deliveries_deliver,
    deliveries_dispatch,
    lease_clock,
)
from mediation.notifications.services.outbox import (
    Created,
    NotificationSpec,
    notification_mark_all_read,
    notification_mark_read,
    notifications_create_bulk,
    outbox_sql,
)

__all__ = [
    "Created",
    "DeliveryTally",
    "NotificationSpec",
    "backoff_seconds",
    "deliveries_claimable_ids",
    "deliveries_deliver",
    "deliveries_dispatch",
    "lease_clock",
    "notification_mark_all_read",
    "notification_mark_read",
    "notifications_create_bulk",
    "outbox_sql",
]
