"""Login throttling policy on top of django-axes' database handler (README "Security").

Three limits, counted over the failed logins of the last `AXES_COOLOFF_TIME` (30 minutes),
whatever the entry point (web login, admin login, API token endpoint):

| criterion | default | env | against |
|---|---|---|---|
| one username, one address | 5 | `AXES_FAILURE_LIMIT` | guessing one password |
| one address, any usernames | 20 | `AXES_ADDRESS_FAILURE_LIMIT` | spraying |
| one username, any addresses | 30 | `AXES_USERNAME_FAILURE_LIMIT` | many addresses |

The address is the client's as the trusted proxy reports it (`mediation.core.client_ip`), not
the proxy's own, so the offices behind one proxy do not share a counter.

A lock ends `AXES_COOLOFF_TIME` after the last failure that counted. Failures during a lock
are not counted (`AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False`), so a flood against
a username cannot keep its owner out: the lock ends 30 minutes after it began, however many
attempts follow. A successful login clears only the attempts of that username from that
address, so an attacker who owns one account cannot wipe the address's spraying count.

django-axes compares one number with one limit; `get_failures` therefore reports each
criterion's failures scaled to `AXES_FAILURE_LIMIT` and returns the worst, so the lock starts
exactly when any criterion reaches its own limit.
"""

from __future__ import annotations

from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

# axes keeps usernames in a varchar(255).
USERNAME_MAX_LENGTH = 255


def _limits() -> list[int]:
    return [
        int(settings.AXES_FAILURE_LIMIT),
        int(settings.AXES_ADDRESS_FAILURE_LIMIT),
        int(settings.AXES_USERNAME_FAILURE_LIMIT),
    ]


def attempted_username(request: Any, credentials: dict | None) -> str | None:
    """The username as axes records it: text that fits its column, never a NUL."""
    value = (credentials or {}).get(getattr(settings, "AXES_USERNAME_FORM_FIELD", "username"))
    if value is None:
        return None
    return str(value).replace("\x00", "")[:USERNAME_MAX_LENGTH]


class LoginThrottleHandler(AxesDatabaseHandler):
    def get_failures(self, request: Any, credentials: dict | None = None) -> int:
        scale = get_failure_limit(request, credentials)
        worst = 0
        attempts_list = self.get_user_attempts(request, credentials)
        for attempts, limit in zip(attempts_list, _limits(), strict=True):
            failures = attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0
            worst = max(worst, failures * scale // max(limit, 1))
        return worst

    def reset_user_attempts(self, request: Any, credentials: dict | None = None) -> int:
        count, _by_model = AccessAttempt.objects.filter(
            username=get_client_username(request, credentials),
            ip_address=request.axes_ip_address,
        ).delete()
        return count


def lockout_response(
    request: Any, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """429: the API's error shape under /api/, the lockout page elsewhere."""
    cool_off = get_cool_off(request)
    minutes = int(cool_off.total_seconds() // 60) if cool_off else None
    message = _("登录失败次数过多，已暂时锁定，请稍后再试。")
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {"code": "locked_out", "message": message, "details": {"cooloff_minutes": minutes}},
            status=429,
            json_dumps_params={"ensure_ascii": False},
        )
        response["Cache-Control"] = "no-store"
        if cool_off:
            response["Retry-After"] = str(int(cool_off.total_seconds()))
        return response
    return render(request, settings.AXES_LOCKOUT_TEMPLATE, {"cooloff_minutes": minutes}, status=429)
