from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from mediation.core.clock import now as clock_now
from mediation.escalation.health import health_report


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """GET /health/: the engine's health as JSON; 503 when something needs attention.

    No personal data. When HEALTH_TOKEN is set, `Authorization: Bearer <token>` is required.
    """
    token = settings.HEALTH_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return JsonResponse({"status": "forbidden"}, status=403)
    report = health_report(now=clock_now())
    status = 503 if report["status"] == "fail" else 200
    return JsonResponse(report, status=status, json_dumps_params={"ensure_ascii": False})
