"""The periodic sweep task (queue `sweeps`)."""

from __future__ import annotations

import logging
from typing import Any

from mediation.core import clock
from mediation.escalation.sweeps import sweep_run
from mediation.notifications.services import deliveries_dispatch
from workers.celery import TASK_SOFT_TIME_LIMIT, TASK_TIME_LIMIT, app

logger = logging.getLogger(__name__)

# Ids per deliver_batch message. Each message costs a Celery round trip and a successor
# hand-out, so tiny batches spend more on the broker than on sending; 100 ids take well under
# a second when the servers answer, and a batch stops at its budget when they do not.
DISPATCH_CHUNK = 100
# Backpressure: at most this many deliver_batch messages waiting in the `deliveries` queue.
# Ids handed out are marked for DELIVERY_LEASE_SECONDS; keeping the queue short means they
# are delivered before the mark expires, so a backlog is not handed out again and again.
MAX_QUEUED_BATCHES = 20
SWEEP_BUDGET_SECONDS = 60.0


def queued_batches() -> int | None:
    """Messages waiting in the `deliveries` queue, or None if the broker cannot say."""
    try:
        with app.connection_for_write() as conn:
            declared = conn.default_channel.queue_declare(queue="deliveries")
            return int(declared.message_count)
    except Exception:  # unknown: dispatch anyway (duplicates are harmless)
        logger.warning("could not read the deliveries queue depth", exc_info=True)
        return None


def dispatch_deliveries(*, now: Any) -> int:
    """Hand due deliveries to delivery tasks in chunks of DISPATCH_CHUNK; returns how many ids.

    Only as many chunks as keep the queue at most MAX_QUEUED_BATCHES deep; the rest wait in
    the database for the next sweep.
    """
    from workers.deliveries import deliver_batch

    depth = 0 if app.conf.task_always_eager else queued_batches()
    room = MAX_QUEUED_BATCHES - (depth or 0)
    total = 0
    for _ in range(max(room, 0)):
        ids = deliveries_dispatch(now=now, limit=DISPATCH_CHUNK)
        if not ids:
            break
        deliver_batch.apply_async(args=[ids])
        total += len(ids)
    return total


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
