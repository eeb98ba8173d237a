"""The State Council's yearly holiday notice (国务院办公厅关于YYYY年部分节假日安排的通知), parsed
from its text (issue 10). Pure Python: no Django.

The notice has a fixed style. Its numbered items read like

    二、春节：1月28日（农历除夕、周二）至2月4日（农历正月初七、周二）放假调休，共8天。
    1月26日（周日）、2月8日（周六）上班。

`parse_notice` reads every item (a single day, a range within a month or across months,
"放假1天，不调休", "放假调休，共N天", a list of 上班 days) and checks the text against itself:
each "共N天" equals its range, every （周X） annotation is the date's real weekday, every 上班
day is a Saturday or Sunday, no date is given twice, and the year is the same throughout. A
problem is a `NoticeProblem` naming the item; `ParsedNotice.problems` lists them all (the
admin's preview shows each), `NoticeError` is raised for the first by `parse_notice_strict`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

WEEKDAYS = "一二三四五六日"
_NUMERALS = "一二三四五六七八九十"

_TITLE = re.compile(r"国务院办公厅关于\s*(\d{4})\s*年部分节假日安排的通知")
_DOC_NUMBER = re.compile(r"国办发明电\s*[〔\[［(（]\s*(\d{4})\s*[〕\]］)）]\s*(\d+)\s*号")
_INTRO_YEAR = re.compile(r"现将\s*(\d{4})\s*年")
_ITEM = re.compile(rf"^\s*([{_NUMERALS}]+)\s*、\s*([^：:\n]+?)\s*[：:]\s*(.+?)\s*$", re.M)
# A date: optional year, optional month (a range's end may give the day only), the day, and an
# optional annotation in full-width or ASCII parentheses.
_DATE = r"(?:(\d{4})\s*年\s*)?(?:(\d{1,2})\s*月\s*)?(\d{1,2})\s*日\s*(?:[（(]([^）)]*)[）)])?"
_DATE_RE = re.compile(_DATE)
_REST = re.compile(
    rf"^{_DATE}\s*(?:(?:至|—|-|～|~)\s*{_DATE})?\s*"
    r"放假(?:调休)?\s*(?:(\d+)\s*天)?\s*(?:[，,]\s*(?:不调休|与周末连休))?"
    r"(?:\s*[，,]\s*共\s*(\d+)\s*天)?\s*[。；;]?"
)
_WEEKDAY = re.compile(r"(?:周|星期)([一二三四五六日天])")


class NoticeError(ValueError):
    """A one-line Chinese message naming the item."""


@dataclass(frozen=True)
class ParsedHoliday:
    number: str  # 一, 二, …
    name: str
    first: dt.date
    last: dt.date
    rest_days: tuple[dt.date, ...]
    work_days: tuple[dt.date, ...]

    @property
    def days(self) -> int:
        return len(self.rest_days)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
            "days": self.days,
        }


@dataclass
class ParsedNotice:
    year: int | None
    title: str
    source: str
    holidays: list[ParsedHoliday] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def rest_days(self) -> list[dt.date]:
        return sorted(d for h in self.holidays for d in h.rest_days)

    @property
    def work_days(self) -> list[dt.date]:
        return sorted(d for h in self.holidays for d in h.work_days)

    def as_dict(self) -> dict[str, Any]:
        """The `holiday_notice --json` shape."""
        return {
            "year": self.year,
            "rest_days": [d.isoformat() for d in self.rest_days],
            "work_days": [d.isoformat() for d in self.work_days],
            "holidays": [h.as_dict() for h in sorted(self.holidays, key=lambda h: h.first)],
            "source": self.source,
        }


def _label(number: str, name: str) -> str:
    return f"第{number}项（{name}）"


def _fmt(d: dt.date) -> str:
    return f"{d.month}月{d.day}日"


class _ItemError(Exception):
    pass


def _make_date(
    year: int, y: str | None, m: str | None, d: str, *, month: int | None, what: str
) -> dt.date:
    if y is not None and int(y) != year:
        raise _ItemError(f"{what}的年份 {y} 与通知年份 {year} 不一致")
    mon = int(m) if m is not None else month
    if mon is None:
        raise _ItemError(f"{what}缺少月份")
    try:
        return dt.date(year, mon, int(d))
    except ValueError:
        raise _ItemError(f"{what} {mon}月{d}日 不存在") from None


def _check_weekday(day: dt.date, annotation: str | None) -> None:
    if not annotation:
        return
    match = _WEEKDAY.search(annotation)
    if match is None:
        return
    said = "日" if match.group(1) == "天" else match.group(1)
    real = WEEKDAYS[day.weekday()]
    if said != real:
        raise _ItemError(f"{_fmt(day)} 标注为周{said}，实为周{real}")


def _parse_item(year: int, number: str, name: str, body: str) -> ParsedHoliday:
    match = _REST.match(body)
    if match is None:
        raise _ItemError("未能识别放假日期（应为“M月D日（周X）至M月D日（周X）放假……”）")
    y1, m1, d1, a1, y2, m2, d2, a2, n_days, total = match.groups()
    first = _make_date(year, y1, m1, d1, month=None, what="放假起始日")
    _check_weekday(first, a1)
    if d2 is not None:
        last = _make_date(year, y2, m2, d2, month=first.month, what="放假结束日")
        _check_weekday(last, a2)
    else:
        last = first
    if last < first:
        raise _ItemError(f"放假结束日 {_fmt(last)} 早于起始日 {_fmt(first)}")
    span = (last - first).days + 1
    for stated in (n_days, total):
        if stated is not None and int(stated) != span:
            raise _ItemError(
                f"共{stated}天与 {_fmt(first)}至{_fmt(last)} 的 {span} 天不符"
                if d2 is not None
                else f"放假{stated}天与 {_fmt(first)} 的 1 天不符"
            )
    rest = tuple(first + dt.timedelta(days=i) for i in range(span))
    work: list[dt.date] = []
    rest_of_body = body[match.end() :]
    for sentence in re.split(r"[。；;]", rest_of_body):
        sentence = sentence.strip()
        if not sentence:
            continue
        if not sentence.endswith("上班"):
            raise _ItemError(f"未能识别“{sentence[:30]}”")
        found = list(_DATE_RE.finditer(sentence))
        if not found:
            raise _ItemError(f"未能识别上班日期“{sentence[:30]}”")
        month = None
        for m in found:
            y, mo, d, annotation = m.groups()
            day = _make_date(year, y, mo, d, month=month, what="上班日")
            month = day.month
            _check_weekday(day, annotation)
            if day.weekday() < 5:
                raise _ItemError(
                    f"上班日 {_fmt(day)} 是周{WEEKDAYS[day.weekday()]}，调休上班日应在周末"
                )
            if first <= day <= last:
                raise _ItemError(f"上班日 {_fmt(day)} 在放假期间内")
            work.append(day)
    return ParsedHoliday(
        number=number, name=name, first=first, last=last, rest_days=rest, work_days=tuple(work)
    )


def parse_notice(text: str) -> ParsedNotice:
    """Parse the notice's text; every problem found is in `.problems` (module docstring)."""
    text = (text or "").replace("\r\n", "\n").replace("\u3000", " ").lstrip("\ufeff")
    if not text.strip():
        return ParsedNotice(None, "", "", problems=["通知文本为空"])
    title_match = _TITLE.search(text)
    items = list(_ITEM.finditer(text))
    if title_match is None and not items:
        return ParsedNotice(
            None,
            "",
            "",
            problems=[
                "不是国务院办公厅放假通知：未找到“国务院办公厅关于YYYY年部分节假日安排的通知”"
            ],
        )
    title = title_match.group(0) if title_match else ""
    problems: list[str] = []
    years = []
    if title_match:
        years.append(int(title_match.group(1)))
    intro = _INTRO_YEAR.search(text)
    if intro:
        years.append(int(intro.group(1)))
    if not years:
        return ParsedNotice(None, title, "", problems=["未找到通知所属年份（标题中的“YYYY年”）"])
    year = years[0]
    if any(y != year for y in years):
        problems.append(f"通知年份不一致：标题为 {year} 年，正文为 {years[-1]} 年")
    doc = _DOC_NUMBER.search(text)
    if doc:
        source = f"国办发明电〔{doc.group(1)}〕{doc.group(2)}号"
    else:
        source = title or f"{year}年放假通知"
    notice = ParsedNotice(year=year, title=title, source=source, problems=problems)
    if not items:
        problems.append("未找到任何放假安排条目（应为“一、元旦：……”）")
        return notice
    seen: dict[dt.date, str] = {}
    for item in items:
        number, name, body = item.group(1), item.group(2).strip(), item.group(3)
        label = _label(number, name)
        try:
            holiday = _parse_item(year, number, name, body)
        except _ItemError as exc:
            problems.append(f"{label}：{exc}")
            continue
        clash = next((d for d in (*holiday.rest_days, *holiday.work_days) if d in seen), None)
        if clash is not None:
            problems.append(f"{label}：{_fmt(clash)} 已在{seen[clash]}中出现")
            continue
        for d in (*holiday.rest_days, *holiday.work_days):
            seen[d] = label
        notice.holidays.append(holiday)
    return notice


def parse_notice_strict(text: str) -> ParsedNotice:
    """`parse_notice`, raising NoticeError with the first problem."""
    notice = parse_notice(text)
    if notice.problems:
        raise NoticeError(notice.problems[0])
    return notice
