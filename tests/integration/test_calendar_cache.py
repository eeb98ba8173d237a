"""The per-process holiday calendar cache (mediation/deadlines/calendar_source.py).

The calendar is rebuilt only when the fingerprint of the holiday rows changes, and any change
(however it is written) is seen by the very next call: no staleness window.
"""

from __future__ import annotations

import threading
from datetime import date

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from mediation.deadlines.calendar_source import calendar_fingerprint, current_calendar
from mediation.deadlines.models import HolidayOverride, HolidayYear
from mediation.deadlines.policy import DayInfo

pytestmark = pytest.mark.django_db

SAT = date(2030, 6, 1)  # a Saturday of a year the package does not cover


def test_fingerprint_function_reads_the_models_tables() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT prosrc FROM pg_proc WHERE proname = 'deadlines_calendar_fingerprint'"
        )
        (source,) = cursor.fetchone()

    assert f"FROM {HolidayOverride._meta.db_table} o" in source
    assert f"FROM {HolidayYear._meta.db_table} y" in source


def test_unchanged_data_reuses_the_calendar_with_one_query() -> None:
    first = current_calendar()

    with CaptureQueriesContext(connection) as queries:
        again = current_calendar()

    assert again is first
    assert len(queries) == 1


def test_a_new_override_is_seen_by_the_next_call() -> None:
    before = current_calendar()
    assert not before.day(SAT).is_workday

    HolidayOverride.objects.create(date=SAT, is_workday=True, name="调休")

    assert current_calendar().day(SAT) == DayInfo(is_workday=True, name="调休", known=True)


def test_an_edited_override_is_seen_even_when_the_row_count_is_unchanged() -> None:
    HolidayOverride.objects.create(date=SAT, is_workday=True, name="调休")
    assert current_calendar().day(SAT).is_workday

    # A queryset update sends no signal: the fingerprint still sees it.
    HolidayOverride.objects.filter(date=SAT).update(is_workday=False, name="端午节")

    assert current_calendar().day(SAT) == DayInfo(is_workday=False, name="端午节", known=True)


def test_a_deleted_override_and_a_declared_year_are_seen() -> None:
    HolidayOverride.objects.create(date=SAT, is_workday=True, name="")
    assert current_calendar().day(SAT).is_workday

    HolidayOverride.objects.all().delete()
    assert not current_calendar().day(SAT).is_workday
    assert not current_calendar().day(SAT).known

    HolidayYear.objects.create(year=2030, source="测试")
    assert current_calendar().day(SAT).known


def test_names_with_separators_give_distinct_fingerprints() -> None:
    HolidayOverride.objects.create(date=SAT, is_workday=True, name="a,b")
    one = calendar_fingerprint()
    HolidayOverride.objects.filter(date=SAT).update(name="a")
    HolidayOverride.objects.create(date=date(2030, 6, 2), is_workday=True, name="b")

    assert calendar_fingerprint() != one


def test_a_rolled_back_override_does_not_stay_in_the_cache() -> None:
    current_calendar()
    with transaction.atomic():
        HolidayOverride.objects.create(date=SAT, is_workday=True, name="")
        assert current_calendar().day(SAT).is_workday  # seen inside its own transaction
        transaction.set_rollback(True)

    assert not current_calendar().day(SAT).is_workday


@pytest.mark.django_db(transaction=True)
def test_an_override_committed_by_another_connection_is_seen_at_once() -> None:
    current_calendar()

    def admin() -> None:
        try:
            HolidayOverride.objects.create(date=SAT, is_workday=True, name="调休")
        finally:
            connection.close()

    thread = threading.Thread(target=admin)
    thread.start()
    thread.join()

    assert current_calendar().day(SAT).is_workday
