"""The delivery task (queue `deliveries`)."""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

from mediation.core import clock
from mediation.notifications.services import deliveries_deliver
from workers.celery import TASK_SOFT_TIME_LIMIT, TASK_TIME_LIMIT, app

MAX_IDS = 50
BUDGET_SECONDS = 80.0  # below the soft time limit: leftovers go back to the next sweep


@app.task(
    name="workers.deliveries.deliver_batch",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=TASK_TIME_LIMIT,
    soft_time_limit=TASK_SOFT_TIME_LIMIT,
)
def deliver_batch(ids: list[int]) -> dict[str, Any]:
    """Enqueued by `workers.sweeps.run_sweep` with ≤ 50 delivery ids.

    Each delivery is claimed under a lease (DELIVERY_LEASE_SECONDS), sent with its
    idempotency key, and marked sent / retried with backoff / failed. Ids that are not
    claimable (already sent, another worker's live lease, in backoff) are skipped, so running
    the task twice sends nothing twice. A worker killed mid-send leaves the row `sending`; it
    is sent again (same key) after the lease expires.
    """
    worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    tally = deliveries_deliver(
        [int(i) for i in ids[:MAX_IDS]],
        worker=worker,
        clock=clock.now,
        budget_seconds=BUDGET_SECONDS,
    )
    return vars(tally)
