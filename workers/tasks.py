"""Imported by `app.autodiscover_tasks(["workers"], related_name="tasks")`."""

from workers.deliveries import deliver_batch
from workers.reports import refresh_stats
from workers.sweeps import run_sweep

__all__ = ["deliver_batch", "refresh_stats", "run_sweep"]
