"""`manage.py health [--json] [--strict]`: the engine's health (see mediation/escalation/health.py).

Exit 0 when healthy or only warnings (the calendar horizon); 1 when something needs attention;
with --strict, warnings exit 1 too.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from mediation.core.clock import now as clock_now
from mediation.escalation.health import health_report


class Command(BaseCommand):
    help = "检查提醒与督办引擎的运行状况。"
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="输出一个 JSON 对象")
        parser.add_argument("--strict", action="store_true", help="有警告时也以 1 退出")

    def handle(self, *args: Any, **options: Any) -> None:
        report = health_report(now=clock_now())
        if options["json"]:
            self.stdout.write(json.dumps(report, ensure_ascii=False))
        else:
            self.stdout.write(f"status: {report['status']}")
            for name, check in report["checks"].items():
                if check is None:
                    continue
                if isinstance(check, dict) and "ok" in check:
                    mark = (
                        "ok" if check["ok"] else ("WARN" if name in report["warnings"] else "FAIL")
                    )
                    detail = {k: v for k, v in check.items() if k != "ok" and v is not None}
                    self.stdout.write(f"{name}: {mark} {json.dumps(detail, ensure_ascii=False)}")
                else:
                    self.stdout.write(f"{name}: {json.dumps(check, ensure_ascii=False)}")
        failed = report["status"] == "fail" or (options["strict"] and report["status"] == "warn")
        if failed:
            raise SystemExit(1)
