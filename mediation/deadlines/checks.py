"""System check: the holiday calendar must cover the next 180 days (DOMAIN.md §2.3).

It reads the database, so like Django's own database checks it runs only when databases are
given: `manage.py check --database default`, `migrate` and the test runner.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.checks import CheckMessage, Tags, register
from django.core.checks import Warning as CheckWarning
from django.db import DatabaseError

from mediation.core import clock

from .calendar_source import calendar_coverage_warning
from .policy import ChineseCalendar


@register("calendar", Tags.database)
def check_calendar_coverage(
    app_configs: Sequence[Any] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    if not databases or "default" not in databases:
        return []
    today = clock.local_date(clock.now())
    hint = "后台 → 法定期限 → 节假日调整 / 已录入年度"
    try:
        message = calendar_coverage_warning(today=today)
    except DatabaseError:
        message = calendar_coverage_warning(today=today, calendar=ChineseCalendar())
        hint = f"未能读取数据库中的节假日调整，仅按 chinese_calendar 数据检查。{hint}"
    if message is None:
        return []
    return [CheckWarning(message, hint=hint, id="deadlines.W001")]
