"""通知: the in-app inbox of the engine's notifications (reminders, 督办, 改派)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from mediation.core.ids import parse_id
from mediation.web import engine
from mediation.web.views.common import RequestClock, paginate, query_without_page


@never_cache
@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    if not engine.notifications_ready():
        raise Http404
    from mediation.notifications.selectors import notification_list_for

    unread_only = request.GET.get("unread") == "1"
    page = paginate(request, notification_list_for(user=request.user, unread_only=unread_only))
    return render(
        request,
        "web/notifications/inbox.html",
        {
            "nav": "notifications",
            "page": page,
            "unread_only": unread_only,
            "querystring": query_without_page(request),
            # 督办单 received here can be signed for (签收) right from the inbox.
            "escalations": _escalations_of(request.user, page.object_list),
        },
    )


def _escalations_of(user: Any, notifications: Any) -> dict[int, Any]:
    """{notification id: its escalation} for the 督办 notices on the page the user may act on."""
    from mediation.escalation import selectors as esc_selectors
    from mediation.escalation.models import Escalation

    wanted = {}
    for n in notifications:
        esc_id = (n.data or {}).get("escalation_id")
        if n.kind == "escalation" and isinstance(esc_id, int):
            wanted[n.pk] = esc_id
    if not wanted:
        return {}
    found = {
        e.pk: e
        for e in Escalation.objects.filter(pk__in=set(wanted.values())).select_related(
            "case", "case__holder_agency", "agency"
        )
    }
    return {
        n_id: found[e_id]
        for n_id, e_id in wanted.items()
        if e_id in found and esc_selectors.escalation_may_act(user, found[e_id])
    }


@never_cache
@login_required
@require_POST
def mark_read(request: HttpRequest) -> HttpResponse:
    """Mark the ticked (or all) of the user's own notifications read; others' ids are ignored."""
    if not engine.notifications_ready():
        raise Http404
    from mediation.notifications.services import (
        notification_mark_all_read,
        notification_mark_read,
    )

    rc = RequestClock()
    if request.POST.get("all") == "1":
        n = notification_mark_all_read(user=request.user, now=rc.now)
    else:
        ids = [i for i in map(parse_id, request.POST.getlist("notification")) if i is not None]
        n = notification_mark_read(user=request.user, notification_ids=ids, now=rc.now)
    messages.success(request, _("已标为已读：%(n)d 条。") % {"n": n})
    target = parse_id(request.POST.get("case"))
    if target is not None:
        return redirect("web:case_detail", pk=target)
    return redirect("web:notifications")
