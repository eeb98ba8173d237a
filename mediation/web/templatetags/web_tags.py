"""Template helpers of the web pages: header counts, urgency badges, small look-ups."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.utils import timezone

from mediation.accounts.models import Role
from mediation.cases import labels
from mediation.cases.selectors import referral_pending_count
from mediation.web import engine, selectors

register = template.Library()


@register.simple_tag(takes_context=True)
def nav_counts(context: template.Context) -> dict[str, Any]:
    """Counts shown in the header: referrals waiting for my agency, unread notifications."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "referrals": referral_pending_count(user),
        "unread": engine.unread_count(user),
        "notifications": engine.notifications_ready(),
        "supervisor": user.role in (Role.SUPERVISOR, Role.ADMINISTRATOR)
        and engine.escalation_ready(),
        # Agency heads get their level-1 督办单 as "我的督办".
        "my_escalations": user.role not in (Role.SUPERVISOR, Role.ADMINISTRATOR)
        and engine.escalation_ready()
        and engine.heads_an_agency(user),
        "stats": user.role in (Role.SUPERVISOR, Role.ADMINISTRATOR) or user.is_superuser,
    }


@register.inclusion_tag("web/includes/urgency.html")
def urgency_badge(urgency: selectors.Urgency) -> dict[str, Any]:
    return {"u": urgency}


@register.filter
def get_item(mapping: dict, key: Any) -> Any:
    if not mapping:
        return None
    return mapping.get(key)


@register.filter
def rule_label(code: str) -> str:
    return labels.rule_label(code)


@register.filter
def clock_kind_label(kind: str) -> str:
    return str(labels.CLOCK_KIND_LABELS.get(kind, kind))


@register.filter
def note_action(action: str) -> str:
    return str(labels.NOTE_ACTIONS.get(action, action))


@register.filter
def iso_local(value: str) -> str:
    """An ISO-8601 instant stored in JSON, shown as Asia/Shanghai local time."""
    try:
        instant = dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return ""
    if instant.tzinfo is None:
        return instant.strftime("%Y-%m-%d %H:%M")
    return timezone.localtime(instant).strftime("%Y-%m-%d %H:%M")
