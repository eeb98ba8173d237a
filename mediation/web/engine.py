"""The web pages' view of the reminder and escalation engine (issue 3).

The engine's apps may be absent (being built, or left out of INSTALLED_APPS); the pages then
leave out their escalation and notification parts instead of failing.
"""

from __future__ import annotations

from django.apps import apps

from mediation.accounts.models import User


def escalation_ready() -> bool:
    return apps.is_installed("mediation.escalation")


def notifications_ready() -> bool:
    return apps.is_installed("mediation.notifications")


def heads_an_agency(user: User) -> bool:
    from mediation.agencies.models import Agency

    cached = getattr(user, "_heads_an_agency", None)
    if cached is None:
        cached = Agency.objects.filter(head=user).exists()
        user._heads_an_agency = cached  # type: ignore[attr-defined]
    return cached


def unread_count(user: User) -> int:
    if not notifications_ready() or not user.is_authenticated:
        return 0
    from mediation.notifications.selectors import notification_unread_count

    return notification_unread_count(user=user)
