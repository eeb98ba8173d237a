"""`manage.py sweep_bench [--clocks N] [--batch-size N] [--keep]`: time the sweep on N newly
overdue duty clocks (README "Performance").

Builds a throwaway agency hierarchy (county → township 综治中心 → village committee, a head
with e-mail, supervisors, a group-robot URL) and N cases with running duty clocks due
yesterday, bulk-inserted outside the timing. Then times one full sweep (level 1 for every
clock: escalation rows, 督办单, notifications, e-mail and webhook deliveries) and, one
working day later, the climb to level 2. Nothing is delivered.

Without --keep everything runs in one transaction that is rolled back at the end (batches
use savepoints instead of commits); with --keep each batch commits as in production and the
rows stay (use a scratch database).
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from mediation.accounts.models import Role, User
from mediation.agencies.models import Agency
from mediation.core.clock import now as clock_now
from mediation.escalation.models import Escalation
from mediation.escalation.sweeps import sweep_run
from mediation.escalation.testing import overdue_clocks_bulk


class _Rollback(Exception):
    pass


class Command(BaseCommand):
    help = "测量超期督办扫描的耗时（批量造数，默认回滚）。"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--clocks", type=int, default=10_000)
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--keep", action="store_true", help="提交数据（仅用于临时数据库）")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["keep"]:
            result = self._run(options)
        else:
            try:
                with transaction.atomic():
                    result = self._run(options)
                    raise _Rollback
            except _Rollback:
                pass
        self.stdout.write(json.dumps(result, ensure_ascii=False))

    def _run(self, options: dict[str, Any]) -> dict[str, Any]:
        tag = uuid.uuid4().hex[:6]
        now = clock_now()

        def agency(suffix: str, kind: str, level: str, parent: Agency | None) -> Agency:
            return Agency.objects.create(
                code=f"bench-{tag}-{suffix}",
                name=f"压测{suffix}",
                kind=kind,
                level=level,
                parent=parent,
                case_number_prefix=f"压测{tag}{suffix}",
            )

        county = agency("county", "peace_office", "county", None)
        centre = agency("centre", "peace_office", "township", county)
        village = agency("village", "mediation_committee", "village", centre)
        village.webhook_url = "http://127.0.0.1:9/robot"
        head = User.objects.create_user(
            f"bench-{tag}-head", email="head@example.org", agency=village, role=Role.SUPERVISOR
        )
        village.head = head
        village.save(update_fields=["webhook_url", "head"])
        mediator = User.objects.create_user(
            f"bench-{tag}-m", email="m@example.org", agency=village, role=Role.MEDIATOR
        )
        for i in range(3):
            User.objects.create_user(
                f"bench-{tag}-s{i}", email=f"s{i}@example.org", agency=centre, role=Role.SUPERVISOR
            )

        n = options["clocks"]
        due = (now - dt.timedelta(days=1)).date()
        started = time.perf_counter()
        overdue_clocks_bulk(holder=village, count=n, due=due, now=now, assignee_id=mediator.pk)
        setup_s = time.perf_counter() - started

        started = time.perf_counter()
        first = sweep_run(now=now, trigger="bench", batch_size=options["batch_size"])
        level1_s = time.perf_counter() - started

        later = now + dt.timedelta(days=5)
        started = time.perf_counter()
        second = sweep_run(now=later, trigger="bench", batch_size=options["batch_size"])
        level2_s = time.perf_counter() - started

        escalated = Escalation.objects.filter(case__holder_agency=village).count()
        return {
            "clocks": n,
            "setup_seconds": round(setup_s, 2),
            "level1_sweep_seconds": round(level1_s, 2),
            "level1_escalated": first.counts.escalated,
            "level1_per_second": round(first.counts.escalated / level1_s) if level1_s else None,
            "level1_notifications": first.counts.notifications_queued,
            "level1_deliveries": first.counts.deliveries_queued,
            "level2_sweep_seconds": round(level2_s, 2),
            "level2_escalated": second.counts.escalated_level2,
            "level2_notifications": second.counts.notifications_queued,
            "escalation_rows": escalated,
            "committed": bool(options["keep"]),
        }
