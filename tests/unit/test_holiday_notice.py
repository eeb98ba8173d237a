"""The State Council holiday notice parser (mediation/deadlines/notice.py, issue 10).

The fixtures are the published 2025 (国办发明电〔2024〕12号) and 2026 (国办发明电〔2025〕7号)
notices; chinese-calendar's data for those years is the ground truth they must reproduce.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import chinese_calendar
import pytest

from mediation.deadlines.notice import NoticeError, parse_notice, parse_notice_strict

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "holiday_notices"


def notice_text(year: int) -> str:
    return (FIXTURES / f"{year}.txt").read_text(encoding="utf-8")


def package_days(year: int) -> tuple[list[str], list[str]]:
    rest = sorted(d.isoformat() for d in chinese_calendar.constants.holidays if d.year == year)
    work = sorted(d.isoformat() for d in chinese_calendar.constants.workdays if d.year == year)
    return rest, work


@pytest.mark.parametrize(
    ("year", "source"), [(2025, "国办发明电〔2024〕12号"), (2026, "国办发明电〔2025〕7号")]
)
def test_the_real_notice_gives_exactly_the_packages_data(year, source):
    parsed = parse_notice_strict(notice_text(year)).as_dict()

    rest, work = package_days(year)
    assert rest
    assert work
    assert parsed["rest_days"] == rest
    assert parsed["work_days"] == work
    assert (parsed["year"], parsed["source"]) == (year, source)
    # The names, too: every rest day's holiday is the package's (国庆节、中秋节 covers both).
    names = {
        "New Year's Day": "元旦",
        "Spring Festival": "春节",
        "Tomb-sweeping Day": "清明节",
        "Labour Day": "劳动节",
        "Dragon Boat Festival": "端午节",
        "National Day": "国庆节",
        "Mid-autumn Festival": "中秋节",
    }
    for h in parse_notice_strict(notice_text(year)).holidays:
        for d in h.rest_days:
            assert names[chinese_calendar.constants.holidays[d]] in h.name


def test_the_2025_json_shape():
    assert parse_notice_strict(notice_text(2025)).as_dict() == {
        "year": 2025,
        "rest_days": package_days(2025)[0],
        "work_days": ["2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11"],
        "holidays": [
            {"name": "元旦", "first": "2025-01-01", "last": "2025-01-01", "days": 1},
            {"name": "春节", "first": "2025-01-28", "last": "2025-02-04", "days": 8},
            {"name": "清明节", "first": "2025-04-04", "last": "2025-04-06", "days": 3},
            {"name": "劳动节", "first": "2025-05-01", "last": "2025-05-05", "days": 5},
            {"name": "端午节", "first": "2025-05-31", "last": "2025-06-02", "days": 3},
            {"name": "国庆节、中秋节", "first": "2025-10-01", "last": "2025-10-08", "days": 8},
        ],
        "source": "国办发明电〔2024〕12号",
    }


def _problem(text: str) -> str:
    with pytest.raises(NoticeError) as info:
        parse_notice_strict(text)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_wrong_day_count_names_the_item():
    text = notice_text(2025).replace("放假调休，共8天。1月26日", "放假调休，共9天。1月26日")
    assert _problem(text) == "第二项（春节）：共9天与 1月28日至2月4日 的 8 天不符"


def test_a_wrong_single_day_count_names_the_item():
    text = notice_text(2025).replace("放假1天，不调休", "放假2天，不调休")
    assert _problem(text) == "第一项（元旦）：放假2天与 1月1日 的 1 天不符"


def test_a_wrong_weekday_names_the_item():
    text = notice_text(2026).replace("5月1日（周五）", "5月1日（周四）")
    assert _problem(text) == "第四项（劳动节）：5月1日 标注为周四，实为周五"


def test_a_work_day_that_is_not_a_weekend_is_refused():
    text = notice_text(2026).replace("5月9日（周六）上班", "5月8日上班")
    assert _problem(text) == "第四项（劳动节）：上班日 5月8日 是周五，调休上班日应在周末"


def test_an_inconsistent_year_is_refused():
    text = notice_text(2025).replace("现将2025年元旦", "现将2024年元旦")
    assert _problem(text) == "通知年份不一致：标题为 2025 年，正文为 2024 年"


def test_an_empty_text_and_a_non_notice_are_refused():
    assert _problem("") == "通知文本为空"
    assert _problem("  \n") == "通知文本为空"
    assert _problem("关于召开年度工作会议的通知\n请各单位准时参加。").startswith(
        "不是国务院办公厅放假通知"
    )


def test_every_failed_item_is_listed_and_the_others_are_kept():
    text = notice_text(2025).replace("共8天。1月26日", "共9天。1月26日")
    text = text.replace("5月1日（周四）", "5月1日（周五）")
    parsed = parse_notice(text)
    assert [p.split("：")[0] for p in parsed.problems] == ["第二项（春节）", "第四项（劳动节）"]
    assert [h.name for h in parsed.holidays] == ["元旦", "清明节", "端午节", "国庆节、中秋节"]


def test_a_range_across_months_and_a_year_prefix_are_read():
    text = (
        "国务院办公厅关于2027年部分节假日安排的通知\n"
        "一、春节：2027年1月30日（周六）至2月1日（周一）放假调休，共3天。2027年2月6日（周六）上班。\n"
    )
    parsed = parse_notice_strict(text)
    assert parsed.rest_days == [dt.date(2027, 1, 30), dt.date(2027, 1, 31), dt.date(2027, 2, 1)]
    assert parsed.work_days == [dt.date(2027, 2, 6)]
    assert parsed.source == "国务院办公厅关于2027年部分节假日安排的通知"
