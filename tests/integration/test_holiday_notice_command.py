"""`manage.py holiday_notice FILE [--json] [--apply]` (issue 10).

Bad input runs the real `manage.py` in subprocesses (exit status 2, one line, no traceback);
`--apply` runs in-process against the test database.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from mediation.accounts.models import Role
from mediation.core.clock import SHANGHAI
from mediation.deadlines import services as clock_services
from mediation.deadlines.calendar_source import current_calendar
from mediation.deadlines.models import Clock, HolidayChange, HolidayOverride, HolidayYear
from tests.factories.accounts import head_of, staff
from tests.factories.agencies import township_tree
from tests.factories.cases import register_dispute

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "holiday_notices"


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "holiday_notice", *args],
        cwd=REPO_ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        timeout=120,
    )


def _stderr_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if "AXES" not in line]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_the_command_prints_the_json_of_a_notice_read_from_stdin():
    result = run("-", "--json", stdin=(FIXTURES / "2025.txt").read_text(encoding="utf-8"))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert list(data) == ["year", "rest_days", "work_days", "holidays", "source"]
    assert (data["year"], data["source"]) == (2025, "国办发明电〔2024〕12号")
    assert data["holidays"][1] == {
        "name": "春节",
        "first": "2025-01-28",
        "last": "2025-02-04",
        "days": 8,
    }


def test_bad_input_exits_2_with_one_chinese_line(tmp_path):
    wrong = tmp_path / "wrong.txt"
    text = (FIXTURES / "2026.txt").read_text(encoding="utf-8")
    wrong.write_text(text.replace("5月1日（周五）", "5月1日（周六）"), encoding="utf-8")
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    other = tmp_path / "other.txt"
    other.write_text("会议通知：请于周一上午九点到会议室开会。", encoding="utf-8")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")

    cases = {
        wrong: "第四项（劳动节）：5月1日 标注为周六，实为周五",
        empty: "通知文本为空",
        other: "不是国务院办公厅放假通知",
        tmp_path / "missing.txt": "无法读取文件",
        binary: "文件不是 UTF-8 文本",
    }
    for path, expected in cases.items():
        result = run(str(path), "--json")
        assert result.returncode == 2, (path, result.stderr)
        assert expected in _stderr_line(result)
        assert result.stdout == ""


@pytest.mark.django_db
def test_apply_writes_the_days_recomputes_and_adds_nothing_the_second_time(monkeypatch):
    now = dt.datetime(2025, 1, 2, 10, 0, tzinfo=SHANGHAI)
    monkeypatch.setattr("mediation.core.clock.now", lambda: now)
    town = township_tree()
    head_of(town.village_committee)
    case = register_dispute(town, now=now, actor=staff(town.village_committee, Role.MEDIATOR))
    # An entry made before the notice (say, by hand): 2025-01-29 as a working day.
    HolidayOverride.objects.create(date=dt.date(2025, 1, 29), is_workday=True, name="误录")
    clock = clock_services.clock_start(
        case_id=case.pk,
        rule_code="dispute.mediate",
        start_date=dt.date(2024, 12, 30),  # + 30 days = Wed 2025-01-29
        entered_state=case.state,
        now=now,
        calendar=current_calendar(),
    )
    assert clock.due == dt.date(2025, 1, 29)
    out, err = StringIO(), StringIO()

    call_command("holiday_notice", str(FIXTURES / "2025.txt"), "--apply", stdout=out, stderr=err)

    assert HolidayOverride.objects.count() == 33
    assert HolidayYear.objects.get().source == "国办发明电〔2024〕12号"
    clock.refresh_from_db()
    assert clock.due == dt.date(2025, 2, 5)  # rolled over the Spring Festival
    assert "到期日变动 1 项" in err.getvalue()
    assert out.getvalue().startswith("2025 年放假安排（依据：国办发明电〔2024〕12号）")

    err2 = StringIO()
    call_command(
        "holiday_notice", str(FIXTURES / "2025.txt"), "--apply", stdout=StringIO(), stderr=err2
    )
    assert HolidayOverride.objects.count() == 33
    assert HolidayChange.objects.count() == 1
    assert "新增 0 日，修改 0 日，已登记 2025 年度" in err2.getvalue()
    assert Clock.objects.get(pk=clock.pk).due == dt.date(2025, 2, 5)


@pytest.mark.django_db
def test_a_bad_notice_applies_nothing(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text(
        (FIXTURES / "2025.txt").read_text(encoding="utf-8").replace("共3天", "共4天", 1),
        encoding="utf-8",
    )
    with pytest.raises(CommandError) as info:
        call_command("holiday_notice", str(bad), "--apply", stdout=StringIO())
    assert info.value.returncode == 2
    assert str(info.value) == "第三项（清明节）：共4天与 4月4日至4月6日 的 3 天不符"
    assert not HolidayOverride.objects.exists()
