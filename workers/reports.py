"""The periodic statistics refresh (queue `reports`, consumed by the deliveries worker)."""

from __future__ import annotations

from typing import Any

from mediation.core import clock
from mediation.reports.services import stats_refresh
from workers.celery import VISIBILITY_TIMEOUT, app

# The refresh reads every case, clock and event row: about a minute at 1 M cases on a busy
# two-core machine. Still below the Redis visibility timeout, so a running refresh is never
# handed to a second worker (and if it were, the advisory lock would queue it behind this one).
REFRESH_TIME_LIMIT = VISIBILITY_TIMEOUT - 60
REFRESH_SOFT_TIME_LIMIT = REFRESH_TIME_LIMIT - 20


@app.task(
    name="workers.reports.refresh_stats",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=REFRESH_TIME_LIMIT,
    soft_time_limit=REFRESH_SOFT_TIME_LIMIT,
)
def refresh_stats() -> dict[str, Any]:
    """Triggered by beat every STATS_REFRESH_SECONDS (expires after one period).

    Recomputes the statistics rollups as of the current time (MEDIATION_FAKE_NOW_FILE
    honoured) in one transaction. Guarantees: idempotent (every row is replaced; the result
    depends only on the data and `now`) and safe to run concurrently (advisory lock); a
    crash or time-out rolls back and leaves the previous rollups in place.
    """
    snapshot = stats_refresh(now=clock.now())
    return {"as_of": snapshot.as_of.isoformat(), "duration_ms": snapshot.duration_ms}
