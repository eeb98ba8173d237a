"""The web queue's indexed look-up finds exactly the engine's escalation queue."""

from __future__ import annotations

import datetime as dt

import pytest

from mediation.accounts.models import Role
from mediation.escalation import selectors as engine
from mediation.escalation.sweeps import sweep_run
from mediation.web import selectors
from tests.factories.accounts import staff
from tests.factories.agencies import township_tree
from tests.factories.cases import register_dispute

pytestmark = pytest.mark.django_db


def test_the_queue_is_the_engines_queue_in_the_same_order(now):
    township = township_tree()
    for i in range(3):
        register_dispute(township, now=now - dt.timedelta(days=12, hours=i), title=f"超期{i}")
    sweep_run(now=now - dt.timedelta(days=4), trigger="test")
    sweep_run(now=now, trigger="test")  # level 1 climbs to level 2 at the 综治中心
    county = staff(township.county_centre, Role.SUPERVISOR)
    township.centre.head = county  # heads the holder agency from outside it
    township.centre.save(update_fields=["head"])
    people = [
        county,
        staff(township.centre, Role.SUPERVISOR),
        staff(township.committee, Role.SUPERVISOR),
        staff(township.village_committee, Role.SUPERVISOR),
    ]

    for user in people:
        for acknowledged in (True, False):
            want = engine.escalation_queue_for(supervisor=user, include_acknowledged=acknowledged)
            got = selectors.escalation_queue_for(supervisor=user, include_acknowledged=acknowledged)
            assert list(got.values_list("pk", flat=True)) == list(
                want.values_list("pk", flat=True)
            ), (user.agency, acknowledged)
    assert (
        engine.escalation_queue_for(supervisor=county, include_acknowledged=True)
        .filter(level=1)
        .exists()
    )
    assert engine.escalation_queue_for(supervisor=people[1], include_acknowledged=True).exists()


@pytest.mark.urls("tests.integration.web.urls")
@pytest.mark.filterwarnings("ignore:No directory at:UserWarning")
def test_the_agency_filter_offers_the_queues_holders_and_accepts_any_scope_agency(
    client, now, tmp_path, monkeypatch
):
    fake = tmp_path / "now.txt"
    fake.write_text(now.isoformat())
    monkeypatch.setenv("MEDIATION_FAKE_NOW_FILE", str(fake))
    township = township_tree()
    register_dispute(township, now=now - dt.timedelta(days=9))
    sweep_run(now=now, trigger="test")
    supervisor = staff(township.centre, Role.SUPERVISOR)
    client.force_login(supervisor)

    page = client.get("/supervision/")
    quiet = client.get("/supervision/", {"agency": township.police_station.pk})

    field = page.context["filter_form"]["agency"]
    assert [label for _pk, label in field.field.widget.choices][1:] == [township.centre.name]
    assert quiet.context["filter_form"].is_valid()
    assert quiet.context["rows"] == []
    offered = [pk for pk, _label in quiet.context["filter_form"]["agency"].field.widget.choices]
    assert township.police_station.pk in offered
