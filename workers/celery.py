"""The Celery application. Redis is the transport; PostgreSQL is the record (RELIABILITY.md §0).

Tasks and the beat schedule arrive with the reminder and escalation engine; the reliability
settings below are fixed now so every task inherits them.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediation.settings.base")

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
    task_time_limit=120,
    task_soft_time_limit=100,
    broker_connection_retry_on_startup=True,
    timezone="Asia/Shanghai",
)
app.autodiscover_tasks(["workers"], related_name="tasks")
