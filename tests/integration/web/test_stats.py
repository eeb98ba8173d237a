"""The statistics page reads the rollups: freshness, scope and the CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.urls import reverse

from mediation.accounts.models import Role
from mediation.public.services import rating_submit
from mediation.reports.models import StatsSnapshot
from mediation.reports.services import stats_refresh
from tests.factories.accounts import staff
from tests.factories.agencies import township_tree
from tests.factories.cases import dispute_in_state, register_dispute

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("tests.integration.web.urls"),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

PERIOD = {"date_from": "2026-01-01", "date_to": "2026-03-31"}


def _tables(response) -> dict:
    return {t.slug: t for t in response.context["tables"]}


def test_the_first_view_computes_the_statistics_and_says_as_of_when(
    login, supervisor, township, now
):
    register_dispute(township, now=now - dt.timedelta(days=2))

    response = login(supervisor).get(reverse("web:stats"), PERIOD)

    html = response.content.decode()
    assert StatsSnapshot.objects.get().as_of == now
    assert "统计截至 2026-03-11 10:00" in html
    assert sum(row[-1] for row in _tables(response)["open"].rows) == 1


def test_the_page_shows_the_last_refresh_until_the_next_one(login, supervisor, township, now):
    register_dispute(township, now=now - dt.timedelta(days=2))
    stats_refresh(now=now - dt.timedelta(minutes=5))
    register_dispute(township, now=now)
    client = login(supervisor)

    stale = client.get(reverse("web:stats"), PERIOD)
    stats_refresh(now=now)
    fresh = client.get(reverse("web:stats"), PERIOD)

    assert "统计截至 2026-03-11 09:55" in stale.content.decode()
    assert sum(row[-1] for row in _tables(stale)["open"].rows) == 1
    assert "统计截至 2026-03-11 10:00" in fresh.content.decode()
    assert sum(row[-1] for row in _tables(fresh)["open"].rows) == 2


def test_a_township_supervisor_never_sees_another_townships_numbers(
    login, supervisor, township, now
):
    other = township_tree("大营")
    register_dispute(township, now=now - dt.timedelta(days=3))
    for _ in range(3):
        register_dispute(other, now=now - dt.timedelta(days=3))
    dispute_in_state("closed_resolved", township=other, now=now - dt.timedelta(days=1))
    stats_refresh(now=now)

    mine = login(supervisor).get(reverse("web:stats"), PERIOD)
    theirs = login(staff(other.centre, Role.SUPERVISOR)).get(reverse("web:stats"), PERIOD)
    county = login(staff(other.county_centre, Role.SUPERVISOR)).get(reverse("web:stats"), PERIOD)

    assert sum(r[-1] for r in _tables(mine)["open"].rows) == 1
    assert sum(r[-1] for r in _tables(mine)["category"].rows) == 1
    assert _tables(mine)["ontime"].rows == []
    assert sum(r[-1] for r in _tables(theirs)["open"].rows) == 3
    assert sum(r[-1] for r in _tables(theirs)["category"].rows) == 4
    assert sum(r[2] for r in _tables(theirs)["ontime"].rows) >= 1
    # Each test township hangs under its own county: the other county sees only its own.
    assert sum(r[-1] for r in _tables(county)["category"].rows) == 4


def test_every_csv_export_matches_its_table(login, supervisor, township, now):
    register_dispute(township, now=now - dt.timedelta(days=9))
    closed = dispute_in_state("closed_resolved", township=township, now=now - dt.timedelta(days=4))
    # A party's own rating (issue 14), for the satisfaction table.
    rating_submit(
        case_id=closed.pk,
        party_id=closed.case_parties.values_list("party_id", flat=True).first(),
        value="satisfied",
        comment="",
        now=now,
    )
    client = login(supervisor)
    page = client.get(reverse("web:stats"), PERIOD)

    for slug, table in _tables(page).items():
        response = client.get(reverse("web:stats_export", args=[slug]), PERIOD)
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert rows[0] == [str(h) for h in table.headers], slug
        assert rows[1:] == [[str(v) for v in row] for row in table.rows], slug
        assert len(rows) > 1, slug


def test_the_freshness_line_is_translated(login, supervisor, now):
    client = login(supervisor)
    client.post(reverse("set_language"), {"language": "en", "next": "/"})

    html = client.get(reverse("web:stats"), PERIOD).content.decode()

    assert "Statistics as of 2026-03-11 10:00 (updated every few minutes)." in html
