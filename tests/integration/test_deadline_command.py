"""`manage.py deadline` (DOMAIN.md §7 contract) and the holiday calendar read from the database.

The command-line cases run the real `manage.py` in subprocesses, all started at once by one
module fixture; in-process `call_command` covers the database-backed calendar.
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from mediation.deadlines.calendar_source import calendar_coverage_warning, current_calendar
from mediation.deadlines.checks import check_calendar_coverage
from mediation.deadlines.models import HolidayOverride, HolidayYear
from mediation.deadlines.policy import DayInfo

REPO_ROOT = Path(__file__).resolve().parents[2]
# Nothing listens on port 1: the command must fall back to the package-only calendar.
NO_DATABASE = "postgres://root@127.0.0.1:1/unreachable"
FALLBACK_NOTE_START = "未能读取数据库中的节假日调整"

CLI_CASES: dict[str, tuple[list[str], str | None]] = {
    # name: (arguments after "deadline", DATABASE_URL override or None to inherit)
    "notify_text": (["petition.notify", "2025-01-20"], None),
    "notify_json": (["petition.notify", "2025-01-20", "--json"], None),
    "review_request_json": (["petition.review_request", "2025-12-02", "--json"], None),
    "objection_json": (["petition.objection", "2025-09-30", "--json"], None),
    "mediate_month_json": (["dispute.mediate_month", "2026-01-15", "--json"], None),
    "mediate_json": (["dispute.mediate", "2026-01-15", "--json"], None),
    "handle_2027_text": (["petition.handle", "2026-11-20"], NO_DATABASE),
    "handle_2027_json": (["petition.handle", "2026-11-20", "--json"], NO_DATABASE),
    "pauses_json": (
        [
            "petition.rereview",
            "2026-03-02",
            "--pause",
            "2026-03-10:2026-03-14",
            "--pause",
            "2026-03-12:2026-03-16",
            "--json",
        ],
        None,
    ),
    "unknown_rule": (["petition.nope", "2025-01-20"], None),
    "month_13": (["petition.notify", "2025-13-01"], None),
    "slashes": (["petition.notify", "2025/01/01"], None),
    "tomorrow": (["petition.notify", "tomorrow"], None),
    "reversed_pause": (["petition.notify", "2025-01-20", "--pause", "2025-02-05:2025-02-01"], None),
    "malformed_pause": (["petition.notify", "2025-01-20", "--pause", "2025-02-05"], None),
    "no_arguments": ([], None),
    "missing_start": (["petition.notify"], None),
    "unknown_option": (["petition.notify", "2025-01-20", "--bogus"], None),
}


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def cli() -> dict[str, Run]:
    base_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mediation.settings.test"}
    procs = {}
    for name, (args, database_url) in CLI_CASES.items():
        env = {**base_env, "DATABASE_URL": database_url} if database_url else base_env
        procs[name] = subprocess.Popen(
            [sys.executable, "manage.py", "deadline", *args],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
    runs = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        runs[name] = Run(proc.returncode, stdout, stderr)
    return runs


def test_text_output_starts_with_the_due_date_alone(cli):
    run = cli["notify_text"]

    lines = run.stdout.splitlines()
    assert run.returncode == 0
    assert lines[0] == "2025-02-05"
    assert lines[1:6] == [
        "起算日 2025-01-20 不计入；期间 15 日（信访工作条例 第二十三条）",
        "名义到期日 2025-02-04",
        "2025-02-04 为休息日（春节），顺延",
        "到期日 2025-02-05",
        "节假日数据齐全，结果非临时",
    ]


@pytest.mark.parametrize(
    ("case", "rule", "start", "nominal_due", "due"),
    [
        ("notify_json", "petition.notify", "2025-01-20", "2025-02-04", "2025-02-05"),
        (
            "review_request_json",
            "petition.review_request",
            "2025-12-02",
            "2026-01-01",
            "2026-01-04",
        ),
        ("objection_json", "petition.objection", "2025-09-30", "2025-10-14", "2025-10-14"),
        ("mediate_month_json", "dispute.mediate_month", "2026-01-15", "2026-02-15", "2026-02-24"),
        ("mediate_json", "dispute.mediate", "2026-01-15", "2026-02-14", "2026-02-14"),
    ],
)
def test_json_output_of_the_worked_examples(cli, case, rule, start, nominal_due, due):
    run = cli[case]

    payload = json.loads(run.stdout)
    assert run.returncode == 0
    assert run.stdout.count("\n") == 1
    assert {k: payload[k] for k in ("rule", "start", "nominal_due", "due", "provisional")} == {
        "rule": rule,
        "start": start,
        "nominal_due": nominal_due,
        "due": due,
        "provisional": False,
    }
    assert set(payload) == {
        "rule",
        "start",
        "nominal_due",
        "due",
        "provisional",
        "explanation",
        "paused_days",
        "extra_days",
    }
    assert all(isinstance(line, str) for line in payload["explanation"])


def test_json_output_is_not_ascii_escaped(cli):
    assert "春节" in cli["notify_json"].stdout


def test_2027_is_provisional_and_a_missing_database_falls_back_to_the_package(cli):
    text, as_json = cli["handle_2027_text"], cli["handle_2027_json"]

    payload = json.loads(as_json.stdout)
    assert (text.returncode, as_json.returncode) == (0, 0)
    assert text.stdout.splitlines()[0] == "2027-01-19"
    assert (payload["due"], payload["provisional"]) == ("2027-01-19", True)
    assert "2027 年节假日数据未发布：仅按周末计算，结果为临时结果" in payload["explanation"]
    assert payload["explanation"][-1].startswith(FALLBACK_NOTE_START)
    assert "Traceback" not in text.stderr + as_json.stderr


def test_pauses_are_merged_and_push_the_due_date(cli):
    run = cli["pauses_json"]

    payload = json.loads(run.stdout)
    assert run.returncode == 0
    assert (payload["nominal_due"], payload["due"], payload["paused_days"]) == (
        "2026-04-08",
        "2026-04-08",
        7,
    )


@pytest.mark.parametrize(
    ("case", "named"),
    [
        ("unknown_rule", "petition.nope"),
        ("month_13", "2025-13-01"),
        ("slashes", "2025/01/01"),
        ("tomorrow", "tomorrow"),
        ("reversed_pause", "2025-02-05:2025-02-01"),
        ("malformed_pause", "2025-02-05"),
        ("no_arguments", "RULE START"),
        ("missing_start", "start"),
        ("unknown_option", "--bogus"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_traceback(cli, case, named):
    run = cli[case]

    assert run.returncode == 2
    assert run.stdout == ""
    assert len(run.stderr.strip().splitlines()) == 1
    assert named in run.stderr
    assert "Traceback" not in run.stderr


# --- in process --------------------------------------------------------------------------------


def test_in_process_bad_input_raises_command_error_with_status_2():
    with pytest.raises(CommandError) as excinfo:
        call_command("deadline", "petition.nope", "2025-01-20")

    assert excinfo.value.returncode == 2
    assert str(excinfo.value) == "未知的期限规则：'petition.nope'"


def test_in_process_missing_argument_raises_command_error_with_status_2():
    with pytest.raises(CommandError) as excinfo:
        call_command("deadline", "petition.notify")

    assert excinfo.value.returncode == 2


@pytest.mark.django_db
def test_command_applies_holiday_rows_from_the_database():
    HolidayOverride.objects.create(
        date=date(2027, 1, 19), is_workday=False, name="测试假日", source="测试"
    )
    HolidayYear.objects.create(year=2027, source="测试")
    out = StringIO()

    call_command("deadline", "petition.handle", "2026-11-20", "--json", stdout=out)

    payload = json.loads(out.getvalue())
    assert (payload["nominal_due"], payload["due"], payload["provisional"]) == (
        "2027-01-19",
        "2027-01-20",
        False,
    )
    assert "2027-01-19 为休息日（测试假日），顺延" in payload["explanation"]
    assert not any(line.startswith(FALLBACK_NOTE_START) for line in payload["explanation"])


@pytest.mark.django_db
def test_current_calendar_reads_overrides_and_declared_years():
    HolidayOverride.objects.create(date=date(2025, 2, 4), is_workday=True, name="")
    HolidayYear.objects.create(year=2027, source="测试")

    calendar = current_calendar()

    assert calendar.day(date(2025, 2, 4)) == DayInfo(is_workday=True, name=None, known=True)
    assert calendar.day(date(2027, 1, 4)) == DayInfo(is_workday=True, name=None, known=True)
    assert calendar.covered_until(today=date(2026, 11, 27)) == date(2027, 12, 31)


@pytest.mark.django_db
def test_coverage_warning_when_next_year_is_not_entered():
    warning = calendar_coverage_warning(today=date(2026, 11, 27))

    assert warning == (
        "节假日数据只覆盖到 2026-12-31，不足今后 180 日（至 2027-05-26）：2027 年的期限将仅按"
        "周末计算并标记为临时结果。请按国务院办公厅放假通知录入节假日调整，并登记该年度为已录入。"
    )


@pytest.mark.django_db
def test_no_coverage_warning_once_next_year_is_declared():
    HolidayYear.objects.create(year=2027, source="国办发明电〔2026〕")

    assert calendar_coverage_warning(today=date(2026, 11, 27)) is None


@pytest.mark.django_db
def test_calendar_check_reports_w001(tmp_path, monkeypatch):
    now_file = tmp_path / "now"
    now_file.write_text("2026-11-27T10:00:00+08:00")
    monkeypatch.setenv("MEDIATION_FAKE_NOW_FILE", str(now_file))

    messages = check_calendar_coverage(databases=["default"])

    assert [m.id for m in messages] == ["deadlines.W001"]
    assert messages[0].msg.startswith("节假日数据只覆盖到 2026-12-31")


def test_calendar_check_needs_a_database_alias():
    assert check_calendar_coverage(databases=None) == []
