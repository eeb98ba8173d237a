"""The beat schedule, in code (STYLE.md). Every entry expires after one period: a tick that
waited longer than that is superseded by the next one, so a backlog never builds up."""

from __future__ import annotations

from typing import Any

# How often the statistics rollups are recomputed: the page says "统计截至 HH:MM".
STATS_REFRESH_SECONDS = 600


def beat_schedule(sweep_interval_seconds: int) -> dict[str, dict[str, Any]]:
    period = float(sweep_interval_seconds)
    return {
        # Escalation ladder + reminders + after-outage digests, then hands due deliveries to
        # `workers.deliveries.deliver_batch`. Idempotent: two beats, or a missed tick, change
        # nothing (SKIP LOCKED + unique keys); a missed tick is caught up by the next one.
        "sweep": {
            "task": "workers.sweeps.run_sweep",
            "schedule": period,
            "options": {"expires": period, "queue": "sweeps"},
        },
        # Statistics rollups (mediation.reports): a full recompute in one transaction, about
        # a minute at 1 M cases. Idempotent and serialised by an advisory lock; a missed tick
        # only leaves the page's "as of" time older. Its own queue `reports`, consumed by the
        # deliveries worker: a minute-long refresh on the one-process sweeps worker would
        # hold back two sweeps.
        "refresh-stats": {
            "task": "workers.reports.refresh_stats",
            "schedule": float(STATS_REFRESH_SECONDS),
            "options": {"expires": float(STATS_REFRESH_SECONDS), "queue": "reports"},
        },
    }
