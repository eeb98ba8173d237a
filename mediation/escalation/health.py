"""Engine health: broker, queues, last sweep, oldest undelivered delivery, calendar horizon.

Policy (README "Health"):
- failures (HTTP 503, `manage.py health` exit 1): database unreachable; broker unreachable;
  no finished sweep within 3 × SWEEP_INTERVAL_SECONDS; a pending/sending delivery older than
  HEALTH_MAX_DELIVERY_AGE_SECONDS (10 min).
- warnings (HTTP 200, exit 0 unless `--strict`): the holiday calendar does not cover the next
  HEALTH_CALENDAR_HORIZON_DAYS (180) days. It needs an administrator, not a restart; failing
  the check would make an orchestrator restart healthy processes every day from July to
  December until the State Council notice is entered.
Queue depths are reported, not judged (a burst is normal; an old delivery is the signal).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Max, Min

from mediation.core.clock import local_date
from mediation.deadlines.calendar_source import calendar_coverage_warning
from mediation.escalation.models import SweepRun
from mediation.notifications.models import Delivery, DeliveryStatus

QUEUES = ("sweeps", "deliveries")
# kombu's Redis transport keeps priorities 3, 6 and 9 in sibling lists ("\x06\x16" separator).
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def broker_url() -> str:
    return settings.CELERY_BROKER_URL or settings.REDIS_URL


def _broker(timeout: float) -> dict[str, Any]:
    import redis

    url = broker_url()
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return {"ok": False, "error": f"unsupported broker URL scheme: {url.split(':', 1)[0]}"}
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
        depths = {}
        for queue in QUEUES:
            key = settings.CELERY_KEY_PREFIX + queue  # kombu's global_keyprefix, if any
            depths[queue] = sum(int(client.llen(key + suffix)) for suffix in _PRIORITY_SUFFIXES)
        return {"ok": True, "queues": depths}
    except redis.RedisError as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        client.close()


def _age(now: dt.datetime, then: dt.datetime | None) -> float | None:
    return None if then is None else round((now - then).total_seconds(), 1)


def health_report(*, now: dt.datetime) -> dict[str, Any]:
    failures: list[str] = []
    warnings: list[str] = []
    checks: dict[str, Any] = {}

    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        checks["database"] = {"ok": True}
    except DatabaseError as exc:
        checks["database"] = {"ok": False, "error": type(exc).__name__}
        failures.append("database")

    broker = _broker(settings.HEALTH_BROKER_TIMEOUT_SECONDS)
    checks["broker"] = {k: v for k, v in broker.items() if k != "queues"}
    checks["queues"] = broker.get("queues")
    if not broker["ok"]:
        failures.append("broker")

    if checks["database"]["ok"]:
        interval = settings.SWEEP_INTERVAL_SECONDS
        try:
            last = SweepRun.objects.aggregate(at=Max("finished_at"))["at"]
            age = _age(now, last)
            stale = age is None or age > 3 * interval
            checks["last_sweep"] = {
                "ok": not stale,
                "finished_at": last.isoformat() if last else None,
                "age_seconds": age,
                "max_age_seconds": 3 * interval,
            }
            if stale:
                failures.append("last_sweep")

            oldest = Delivery.objects.filter(
                status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING]
            ).aggregate(at=Min("created_at"))["at"]
            age = _age(now, oldest)
            limit = settings.HEALTH_MAX_DELIVERY_AGE_SECONDS
            too_old = age is not None and age > limit
            checks["oldest_undelivered"] = {
                "ok": not too_old,
                "created_at": oldest.isoformat() if oldest else None,
                "age_seconds": age,
                "max_age_seconds": limit,
            }
            if too_old:
                failures.append("oldest_undelivered")

            warning = calendar_coverage_warning(
                today=local_date(now), horizon_days=settings.HEALTH_CALENDAR_HORIZON_DAYS
            )
            checks["calendar"] = {"ok": warning is None, "warning": warning}
            if warning:
                warnings.append("calendar")
        except DatabaseError as exc:
            checks["engine_tables"] = {"ok": False, "error": type(exc).__name__}
            failures.append("engine_tables")

    status = "fail" if failures else "warn" if warnings else "ok"
    return {
        "status": status,
        "now": now.isoformat(),
        "failures": failures,
        "warnings": warnings,
        "checks": checks,
    }
