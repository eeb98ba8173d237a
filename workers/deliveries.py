"""The delivery task (queue `deliveries`)."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from typing import Any

from celery.signals import worker_process_shutdown

from mediation.core import clock
from mediation.notifications.channels import ChannelSession
from mediation.notifications.services import deliveries_deliver, deliveries_dispatch
from workers.celery import TASK_SOFT_TIME_LIMIT, TASK_TIME_LIMIT, app

logger = logging.getLogger(__name__)

MAX_IDS = 200
BUDGET_SECONDS = 80.0  # below the soft time limit: leftovers go back to the next sweep

# Ids per deliver_batch message. Each message costs a Celery round trip and a successor
# hand-out, so tiny batches spend more on the broker than on sending; 100 ids take well under
# a second when the servers answer, and a batch stops at its budget when they do not.
DISPATCH_CHUNK = 100
# Backpressure: at most this many deliver_batch messages waiting in the `deliveries` queue.
# Ids handed out are marked for DELIVERY_LEASE_SECONDS; keeping the queue short means they
# are delivered before the mark expires, so a backlog is not handed out again and again.
MAX_QUEUED_BATCHES = 20


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


# This worker process's SMTP connection and webhook keep-alive connections, reused across
# batches (a new connection per batch cost an SMTP/TCP handshake every few messages). A
# connection that fails, or sat idle too long, is replaced on the next message.
_session: ChannelSession | None = None


def channel_session() -> ChannelSession:
    global _session
    if _session is None:
        _session = ChannelSession()
    return _session


@worker_process_shutdown.connect
def _close_channel_session(**_kwargs: Any) -> None:
    global _session
    session, _session = _session, None
    if session is not None:
        session.close()


@app.task(
    name="workers.deliveries.deliver_batch",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=TASK_TIME_LIMIT,
    soft_time_limit=TASK_SOFT_TIME_LIMIT,
)
def deliver_batch(ids: list[int]) -> dict[str, Any]:
    """Enqueued by `workers.sweeps.run_sweep` with ≤ MAX_IDS delivery ids, and by itself.

    Each delivery is claimed under a lease (DELIVERY_LEASE_SECONDS), sent with its
    idempotency key over this process's kept-open SMTP / HTTP connections, and marked sent /
    retried with backoff / failed (set-based statements per chunk). Ids that are not
    claimable (already sent, another worker's live lease, in backoff) are skipped, so running
    the task twice sends nothing twice. A worker killed mid-send leaves the row `sending`; it
    is sent again (same key) after the lease expires.

    When it finishes within its budget the task hands out the next due deliveries itself (one
    successor message of DISPATCH_CHUNK ids, marked like the sweep's), so a backlog drains at
    the workers' pace instead of one sweep interval per MAX_QUEUED_BATCHES chunks; the number
    of queued messages does not grow. A lost successor is handed out again by a later sweep
    once its mark expires.
    """
    worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    tally = deliveries_deliver(
        [int(i) for i in ids[:MAX_IDS]],
        worker=worker,
        clock=clock.now,
        budget_seconds=BUDGET_SECONDS,
        session=channel_session(),
    )
    result: dict[str, Any] = dict(vars(tally))
    if tally.total == len(ids[:MAX_IDS]):  # finished in time: keep the backlog moving
        result["continued"] = dispatch_successor()
    return result


def dispatch_successor() -> int:
    """Hand the next due deliveries (if any) to one new `deliver_batch`; returns how many."""
    more = deliveries_dispatch(now=clock.now(), limit=DISPATCH_CHUNK)
    if more:
        deliver_batch.apply_async(args=[more])
    return len(more)
