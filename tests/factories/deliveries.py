"""One delivery attempt through the production path, for tests that look at one row."""

from __future__ import annotations

import datetime as dt

from mediation.notifications.services import deliveries_deliver


def delivery_attempt(*, delivery_id: int, now: dt.datetime, worker: str) -> str:
    """`deliveries_deliver` for one id: its one outcome (sent | retry | failed | skipped |
    lost)."""
    tally = deliveries_deliver([delivery_id], worker=worker, clock=lambda: now)
    (outcome,) = (name for name, n in vars(tally).items() if n)
    return outcome
