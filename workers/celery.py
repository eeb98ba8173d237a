"""The Celery application. Redis is the transport; PostgreSQL is the record (RELIABILITY.md §0).

Celery only nudges: beat triggers a short, idempotent, level-triggered sweep; the sweep hands
ids of due deliveries to delivery tasks. Losing any message (Redis restart, FLUSHALL, a killed
worker) delays work by at most a sweep interval or a lease; it never loses or doubles it
(README "Faults").

Reliability settings:
- acks_late + reject_on_worker_lost + prefetch 1: a task whose worker dies is redelivered;
  every task is idempotent through the database, so a rerun is harmless.
- Explicit time limits; the Redis `visibility_timeout` (300 s) is above the longest hard limit
  (120 s), so a task still running is never redelivered to a second worker because of the
  timeout. It only decides how soon a message whose worker was SIGKILLed comes back (timeout +
  kombu's ~100 s restore scan); the next sweep re-finds the work in the database sooner anyway.
- No ETA/countdown tasks: deadlines, retries and backoff are `*_at` columns swept by beat.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediation.settings.base")

from django.conf import settings  # after DJANGO_SETTINGS_MODULE is set

from workers.schedule import beat_schedule

TASK_TIME_LIMIT = 120
TASK_SOFT_TIME_LIMIT = 100
VISIBILITY_TIMEOUT = 300  # > TASK_TIME_LIMIT: see the module docstring

app = Celery("mediation")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_time_limit=TASK_TIME_LIMIT,
    task_soft_time_limit=TASK_SOFT_TIME_LIMIT,
    # After a broker connection loss, running tasks FINISH: cancelling a delivery between the
    # SMTP server's "250 OK" and "mark sent" would send the message again once its lease ran
    # out (seen in the Redis-restart fault test). The ack that cannot reach the broker is
    # lost, the message is restored on reconnect and the re-run finds the rows already sent.
    worker_cancel_long_running_tasks_on_connection_loss=False,
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=None,  # keep reconnecting after a Redis outage
    broker_transport_options={
        "visibility_timeout": VISIBILITY_TIMEOUT,
        "socket_timeout": 5,
        "socket_connect_timeout": 5,
        # Keys and queues of this installation only (scripts/run on a shared Redis).
        **({"global_keyprefix": settings.CELERY_KEY_PREFIX} if settings.CELERY_KEY_PREFIX else {}),
    },
    task_default_queue="sweeps",
    task_routes={
        "workers.sweeps.*": {"queue": "sweeps"},
        "workers.deliveries.*": {"queue": "deliveries"},
        "workers.reports.*": {"queue": "reports"},
    },
    beat_schedule=beat_schedule(settings.SWEEP_INTERVAL_SECONDS),
    timezone="Asia/Shanghai",
)
app.autodiscover_tasks(["workers"], related_name="tasks")
