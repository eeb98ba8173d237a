"""`manage.py holiday_notice FILE [--json] [--apply]`: the State Council holiday notice (issue 10).

FILE is the notice's text in UTF-8; `-` reads standard input. Prints the parsed days sorted
(`--json`: one object, `ParsedNotice.as_dict`). The text is checked against itself
(`mediation.deadlines.notice`); any problem, an unreadable file or a text that is not a notice
exits with status 2 and one Chinese line on stderr, never a traceback.

`--apply` writes the `HolidayOverride` rows and the `HolidayYear` in one transaction
(`holidays.holiday_notice_apply`), then re-dates the clocks it touches at once
(`recalendar.holidays_recompute_pending`, what the sweep would otherwise do next). Applying
the same notice twice adds nothing.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import DatabaseError

from mediation.core import clock
from mediation.core.commands import USAGE_ERROR, OneLineErrorCommand
from mediation.deadlines.holidays import HolidayDataBusy, holiday_notice_apply
from mediation.deadlines.notice import WEEKDAYS, NoticeError, ParsedNotice, parse_notice_strict


class Command(OneLineErrorCommand):
    help = "解析国务院办公厅放假通知文本；--apply 写入节假日调整并重新计算期限。"
    missing_args_message = "缺少参数：FILE（通知文本文件，UTF-8；“-”表示标准输入）"
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="通知文本文件（UTF-8）；“-”读取标准输入")
        parser.add_argument("--json", action="store_true", help="输出一个 JSON 对象")
        parser.add_argument(
            "--apply", action="store_true", help="写入节假日调整和已录入年度，并重新计算期限"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        text = self._read(options["file"])
        try:
            notice = parse_notice_strict(text)
        except NoticeError as exc:
            raise CommandError(str(exc), returncode=USAGE_ERROR) from None
        if options["json"]:
            self.stdout.write(json.dumps(notice.as_dict(), ensure_ascii=False))
        else:
            self.stdout.write(_text(notice))
        if options["apply"]:
            self._apply(notice)

    def _read(self, path: str) -> str:
        try:
            if path == "-":
                data = sys.stdin.buffer.read()
            else:
                with open(path, "rb") as handle:
                    data = handle.read()
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise CommandError(f"文件不是 UTF-8 文本：{path}", returncode=USAGE_ERROR) from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise CommandError(f"无法读取文件 {path}：{reason}", returncode=USAGE_ERROR) from None

    def _apply(self, notice: ParsedNotice) -> None:
        from mediation.escalation.recalendar import holidays_recompute_pending

        now = clock.now()
        try:
            applied = holiday_notice_apply(notice, now=now)
            counts = holidays_recompute_pending(now=now)
        except HolidayDataBusy as exc:
            raise CommandError(str(exc), returncode=USAGE_ERROR) from None
        except DatabaseError as exc:
            line = " ".join(str(exc).split())[:200]
            raise CommandError(f"写入数据库失败：{line}", returncode=1) from None
        self.stderr.write(
            f"已写入：新增 {applied.created} 日，修改 {applied.updated} 日，"
            f"{'新登记' if applied.year_created else '已登记'} {notice.year} 年度；"
            f"重新计算期限 {counts.clocks_recomputed} 项，到期日变动 {counts.clocks_moved} 项。"
        )


def _text(notice: ParsedNotice) -> str:
    def day(d: Any) -> str:
        return f"{d.isoformat()}（周{WEEKDAYS[d.weekday()]}）"

    lines = [f"{notice.year} 年放假安排（依据：{notice.source}）"]
    for h in sorted(notice.holidays, key=lambda h: h.first):
        span = day(h.first) if h.first == h.last else f"{day(h.first)} 至 {day(h.last)}"
        lines.append(f"{h.name}：{span} 放假，共 {h.days} 天")
        if h.work_days:
            lines.append("  上班：" + "、".join(day(d) for d in h.work_days))
    lines.append("放假日：" + " ".join(d.isoformat() for d in notice.rest_days))
    lines.append("调休上班日：" + " ".join(d.isoformat() for d in notice.work_days))
    return "\n".join(lines)
