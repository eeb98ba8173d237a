"""The periodic sweep task (queue `sweeps`). Imports the delivery tasks to hand out work; they
never import this module."""

from __future__ import annotations

import logging
from typing import Any

from mediation.core import clock
from mediation.escalation.sweeps import sweep_run
from workers.celery import TASK_SOFT_TIME_LIMIT, TASK_TIME_LIMIT, app
from workers.deliveries import dispatch_deliveries

logger = logging.getLogger(__name__)

SWEEP_BUDGET_SECONDS = 60.0


@app.task(
    name="workers.sweeps.run_sweep",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=TASK_TIME_LIMIT,
    soft_time_limit=TASK_SOFT_TIME_LIMIT,
)
def run_sweep() -> dict[str, Any]:
    """Triggered by beat every SWEEP_INTERVAL_SECONDS (expires after one period).

    One sweep at the current time (MEDIATION_FAKE_NOW_FILE honoured): resolve stale
    escalations, escalate overdue duty clocks, climb unacknowledged escalations, send due
    reminders (digests after an outage); then hand due deliveries to `deliver_batch` in
    chunks of ≤ DISPATCH_CHUNK ids. Guarantees: idempotent and safe to run concurrently
    (SKIP LOCKED claims, unique keys); a crash mid-sweep rolls back the current batch only.
    """
    now = clock.now()
    result = sweep_run(now=now, trigger="celery", budget_seconds=SWEEP_BUDGET_SECONDS)
    dispatched = dispatch_deliveries(now=now)
    return {"run": result.run_id, "dispatched": dispatched, **result.counts.as_dict()}
