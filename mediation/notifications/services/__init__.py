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
    register_sms_param,
)
from mediation.notifications.services.outbox import (
    Created,
    NotificationSpec,
    PartySmsSpec,
    notification_mark_all_read,
    notification_mark_read,
    notifications_create_bulk,
    outbox_sql,
    party_sms_create,
)

__all__ = [
    "Created",
    "DeliveryTally",
    "NotificationSpec",
    "PartySmsSpec",
    "backoff_seconds",
    "deliveries_claimable_ids",
    "deliveries_deliver",
    "deliveries_dispatch",
    "lease_clock",
    "notification_mark_all_read",
    "notification_mark_read",
    "notifications_create_bulk",
    "outbox_sql",
    "party_sms_create",
    "register_sms_param",
]
