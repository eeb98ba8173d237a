"""The trivial task for the Celery ceiling (`-I bench.celery_tasks` on the benchmark worker).

Same app, same settings (acks_late, reject_on_worker_lost, prefetch 1, JSON) as the delivery
tasks; the body only increments a Redis counter so the benchmark can see it ran.
"""

from __future__ import annotations

import os

import redis

from workers.celery import app

_redis: redis.Redis | None = None


@app.task(name="bench.noop", ignore_result=True)
def noop() -> None:
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    _redis.incr("bench:noop")
