"""The web pages' view of the reminder and escalation engine (issue 3).

The engine's apps may be absent (being built, or left out of INSTALLED_APPS); the pages then
leave out their escalation and notification parts instead of failing.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps

from mediation.accounts.models import User
from mediation.cases.models import Case


def escalation_ready() -> bool:
    return apps.is_installed("mediation.escalation")


def notifications_ready() -> bool:
    return apps.is_installed("mediation.notifications")


def escalations_for_case(case: Case) -> list[Any]:
    from mediation.escalation.models import Escalation

    return list(
        Escalation.objects.filter(case=case)
        .select_related("clock", "agency", "acknowledged_by")
        .order_by("-created_at", "-pk")
    )


def unread_count(user: User) -> int:
    if not notifications_ready() or not user.is_authenticated:
        return 0
    from mediation.notifications.selectors import notification_unread_count

    return notification_unread_count(user=user)
