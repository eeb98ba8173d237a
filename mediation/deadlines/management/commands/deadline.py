"""`manage.py deadline RULE START [--pause FROM:TO ...] [--json]` (DOMAIN.md §7 contract).

Text output: the due date alone on the first line, then the explanation. `--json`: one object.
Bad input exits with status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import DatabaseError

from mediation.core.commands import USAGE_ERROR, OneLineErrorCommand
from mediation.deadlines.calendar_source import current_calendar
from mediation.deadlines.policy import (
    ChineseCalendar,
    PolicyError,
    compute_deadline,
    get_rule,
    parse_date,
    parse_pause,
)


class Command(OneLineErrorCommand):
    help = "计算法定期限的到期日（DOMAIN.md §7）。"
    missing_args_message = "缺少参数：RULE START（例如 petition.notify 2025-01-20）"
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("rule", help="规则代码，例如 petition.notify")
        parser.add_argument("start", help="起算日 YYYY-MM-DD（当日不计入）")
        parser.add_argument(
            "--pause",
            action="append",
            default=[],
            metavar="YYYY-MM-DD:YYYY-MM-DD",
            help="暂停期间，首尾两日均计入；可重复",
        )
        parser.add_argument("--json", action="store_true", help="输出一个 JSON 对象")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            rule = get_rule(options["rule"])
            start = parse_date(options["start"])
            pauses = [parse_pause(text) for text in options["pause"]]
        except PolicyError as exc:
            raise CommandError(str(exc), returncode=USAGE_ERROR) from None

        note = None
        try:
            calendar = current_calendar()
        except DatabaseError as exc:
            calendar = ChineseCalendar()
            reason = next(iter(str(exc).strip().splitlines()), "") or type(exc).__name__
            note = f"未能读取数据库中的节假日调整（{reason}），仅使用 chinese_calendar 数据"

        try:
            deadline = compute_deadline(rule, start, calendar=calendar, pauses=pauses)
        except PolicyError as exc:
            raise CommandError(str(exc), returncode=USAGE_ERROR) from None
        if note:
            deadline = deadline.with_note(note)

        if options["json"]:
            self.stdout.write(json.dumps(deadline.as_dict(), ensure_ascii=False))
        else:
            self.stdout.write(deadline.due.isoformat())
            for line in deadline.explanation:
                self.stdout.write(line)
