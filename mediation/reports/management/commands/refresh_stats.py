"""`manage.py refresh_stats`: recompute the statistics rollups now (operators, after a bulk
import or a change to the agency tree; the beat does it every few minutes)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from mediation.core import clock
from mediation.reports.services import stats_refresh


class Command(BaseCommand):
    help = "Recompute the statistics rollups (统计分析) as of now."

    def handle(self, *args, **options) -> None:
        snapshot = stats_refresh(now=clock.now())
        self.stdout.write(
            f"statistics as of {snapshot.as_of.isoformat()} ({snapshot.duration_ms} ms)"
        )
