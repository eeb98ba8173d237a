"""`manage.py sweep --once [--json] [--now ISO] [--no-deliver]`: one full sweep, synchronously.

Escalation ladder, reminders and digests, then (unless --no-deliver) every delivery whose time
has come, inline, without Celery. Prints what it did; `--json` prints one object. Running it
twice at the same moment does nothing the second time. Without `--once` it loops every
SWEEP_INTERVAL_SECONDS (a Celery-free runner, Zulip-style). Bad input exits 2 with one line.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.db import DatabaseError

from mediation.core.clock import SHANGHAI
from mediation.core.clock import now as clock_now
from mediation.core.commands import USAGE_ERROR, OneLineErrorCommand
from mediation.escalation.sweeps import runner_name, sweep_run
from mediation.notifications.services import (
    DeliveryTally,
    deliveries_claimable_ids,
    deliveries_deliver,
)

DELIVER_CHUNK = 200
MAX_DELIVER_ROUNDS = 1000


def parse_now(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"--now 格式错误：{text!r}，应为 ISO-8601 时间，例如 2026-03-11T10:00:00+08:00",
            returncode=USAGE_ERROR,
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=SHANGHAI)
    return value


def deliver_inline(*, fixed_now: dt.datetime | None) -> DeliveryTally:
    """Attempt every claimable delivery once (a transient failure waits for its backoff)."""
    total = DeliveryTally()
    worker = f"sweep-command:{runner_name()}"
    seen: set[int] = set()
    for _round in range(MAX_DELIVER_ROUNDS):
        moment = fixed_now or clock_now()
        ids = [
            i for i in deliveries_claimable_ids(now=moment, limit=DELIVER_CHUNK) if i not in seen
        ]
        if not ids:
            break
        seen.update(ids)
        tally = deliveries_deliver(ids, worker=worker, clock=lambda: fixed_now or clock_now())
        for name in ("sent", "retry", "failed", "skipped", "lost"):
            setattr(total, name, getattr(total, name) + getattr(tally, name))
    return total


class Command(OneLineErrorCommand):
    help = "运行一次超期督办、期限提醒与通知发送扫描。"
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="只运行一次（否则循环运行）")
        parser.add_argument("--json", action="store_true", help="输出一个 JSON 对象")
        parser.add_argument("--now", help="以该时刻扫描（ISO-8601；无时区按 Asia/Shanghai）")
        parser.add_argument("--no-deliver", action="store_true", help="不发送通知，只入队")
        parser.add_argument("--batch-size", type=int, default=None, help="每批处理行数")

    def handle(self, *args: Any, **options: Any) -> None:
        fixed_now = parse_now(options["now"]) if options["now"] else None
        batch = options["batch_size"]
        if batch is not None and batch < 1:
            raise CommandError("--batch-size 须为正整数", returncode=USAGE_ERROR)
        if not options["once"] and fixed_now is not None:
            raise CommandError("--now 只能与 --once 一起使用", returncode=USAGE_ERROR)
        if options["once"]:
            self._once(fixed_now, batch, options)
            return
        interval = settings.SWEEP_INTERVAL_SECONDS
        while True:  # pragma: no cover - the long-running mode
            started = time.monotonic()
            try:
                self._once(None, batch, options)
            except CommandError as exc:
                self.stderr.write(str(exc))
            time.sleep(max(0.0, interval - (time.monotonic() - started)))

    def _once(self, fixed_now: dt.datetime | None, batch: int | None, options: dict) -> None:
        now = fixed_now or clock_now()
        try:
            result = sweep_run(now=now, trigger="command", batch_size=batch)
            tally = DeliveryTally()
            if not options["no_deliver"]:
                tally = deliver_inline(fixed_now=fixed_now)
        except DatabaseError as exc:
            reason = next(iter(str(exc).strip().splitlines()), "") or type(exc).__name__
            raise CommandError(f"数据库错误：{reason}", returncode=1) from None
        c = result.counts
        out = {
            "now": now.isoformat(),
            "sweep_run_id": result.run_id,
            "escalated": c.escalated,
            "escalated_by_level": {
                "1": c.escalated_level1,
                "2": c.escalated_level2,
                "3": c.escalated_level3,
            },
            "escalated_level1": c.escalated_level1,
            "escalated_level2": c.escalated_level2,
            "escalated_level3": c.escalated_level3,
            "escalations_resolved": c.escalations_resolved,
            "escalations_without_recipients": c.escalations_without_recipients,
            "reminders_sent": c.reminders_sent,
            "reminders_digested": c.reminders_digested,
            "reminders_cancelled": c.reminders_cancelled,
            "digests": c.digests,
            "notifications_queued": c.notifications_queued,
            "deliveries_queued": c.deliveries_queued,
            "deliveries_sent": tally.sent,
            "deliveries_failed": tally.failed,
            "deliveries_retrying": tally.retry,
            "delivered_inline": not options["no_deliver"],
            "duration_ms": result.duration_ms,
        }
        if options["json"]:
            self.stdout.write(json.dumps(out, ensure_ascii=False))
            return
        self.stdout.write(
            f"sweep at {out['now']} (run {result.run_id}, {result.duration_ms} ms)\n"
            f"escalated: {c.escalated} (level 1: {c.escalated_level1}, "
            f"level 2: {c.escalated_level2}, level 3: {c.escalated_level3})\n"
            f"escalations resolved: {c.escalations_resolved}\n"
            f"reminders sent: {c.reminders_sent} (in digests: {c.reminders_digested}, "
            f"digests: {c.digests}); cancelled: {c.reminders_cancelled}\n"
            f"notifications queued: {c.notifications_queued}; "
            f"deliveries queued: {c.deliveries_queued}\n"
            + (
                f"deliveries sent: {tally.sent}, failed: {tally.failed}, retrying: {tally.retry}"
                if not options["no_deliver"]
                else "deliveries: not attempted (--no-deliver)"
            )
        )
