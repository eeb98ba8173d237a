"""Imported by the benchmark worker (`-I bench.celery_tasks`).

- `bench.noop`, the trivial task of the Celery ceiling: same app and settings (acks_late,
  reject_on_worker_lost, prefetch 1, JSON) as the delivery tasks; the body only increments a
  Redis counter so the benchmark can see it ran.
- With BENCH_NULL_CHANNEL=1, the null-channel ceiling: every channel's send is a no-op that
  returns the address. The rest of the pipeline (sweep, notifications, dispatch, claim, message
  read, lease re-check, outcome recorded) is the real one, so deliveries/s of a real run over
  this ceiling is what the sends (MIME, SMTP, HTTP) cost.
"""

from __future__ import annotations

import os

import redis

from mediation.notifications import channels
from workers.celery import app

if os.environ.get("BENCH_NULL_CHANNEL") == "1":

    def _null_send(message: channels.OutboundMessage, session: object = None) -> str:
        return message.email or message.webhook_url or message.phone

    for _name in channels.SENDERS:
        channels.SENDERS[_name] = _null_send

_redis: redis.Redis | None = None


@app.task(name="bench.noop", ignore_result=True)
def noop() -> None:
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    _redis.incr("bench:noop")
