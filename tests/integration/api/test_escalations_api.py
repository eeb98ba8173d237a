"""Escalation queue and supervisor actions, and the notification inbox, through the API.

The escalation comes from the engine's own sweep (a village dispute's triage clock overdue);
the actions are the engine's services. The API adds scope (404 outside it), the error shape
and the language.
"""

from __future__ import annotations

import datetime as dt

import pytest

from mediation.accounts.models import Role
from mediation.cases.models import Case
from mediation.core import clock
from mediation.core.clock import SHANGHAI
from mediation.escalation.models import Escalation
from mediation.escalation.sweeps import sweep_run
from mediation.notifications.models import Notification
from tests.factories.accounts import head_of, staff
from tests.factories.cases import register_dispute
from tests.integration.api.conftest import client_for

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

JUST_AFTER = dt.datetime(2026, 3, 13, 0, 0, 5, tzinfo=SHANGHAI)  # triage due 03-12 has passed
LATER = dt.datetime(2026, 3, 13, 9, 30, tzinfo=SHANGHAI)


@pytest.fixture
def escalated(township, now, monkeypatch) -> Escalation:
    """A village dispute whose triage clock is overdue, escalated to level 1 (the head)."""
    mediator = staff(township.village_committee, Role.MEDIATOR)
    head_of(township.village_committee)
    case = register_dispute(township, now=now, actor=mediator)
    sweep_run(now=JUST_AFTER, trigger="test")
    monkeypatch.setattr(clock, "now", lambda: LATER)
    return Escalation.objects.get(case=case, level=1)


@pytest.fixture
def head(township):
    return head_of(township.village_committee)


def test_the_head_sees_the_escalation_in_their_queue(escalated, head, other_township):
    outsider = client_for(staff(other_township.county_centre, Role.SUPERVISOR))

    response = client_for(head).get("/api/escalations/")

    assert response.status_code == 200
    (row,) = response.json()["results"]
    assert (row["id"], row["level"], row["status"]) == (escalated.pk, 1, "open")
    assert row["case"]["id"] == escalated.case_id
    assert (row["clock"]["rule_code"], row["clock"]["due"]) == ("dispute.triage", "2026-03-12")
    assert row["ack_due_at"] == escalated.ack_due_at.astimezone(SHANGHAI).isoformat()
    assert row["data"]["case_number"] == Case.objects.get(pk=escalated.case_id).number
    assert outsider.get("/api/escalations/").json()["results"] == []


def test_acknowledging_twice_is_a_409(escalated, head):
    client = client_for(head)

    first = client.post(
        f"/api/escalations/{escalated.pk}/acknowledge/", {"note": "已签收"}, format="json"
    )
    second = client.post(f"/api/escalations/{escalated.pk}/acknowledge/", {}, format="json")

    assert first.status_code == 200
    assert (first.json()["status"], first.json()["acknowledged_by"]["id"]) == (
        "acknowledged",
        head.pk,
    )
    assert first.json()["acknowledged_at"] == LATER.isoformat()
    assert second.status_code == 409
    assert second.json()["code"] == "transition_not_allowed"
    assert client.get("/api/escalations/?open_only=true").json()["results"] == []


def test_an_escalation_outside_the_users_scope_is_404(escalated, other_township):
    outsider = client_for(staff(other_township.county_centre, Role.SUPERVISOR))

    detail = outsider.get(f"/api/escalations/{escalated.pk}/")
    action = outsider.post(f"/api/escalations/{escalated.pk}/resolve/", {}, format="json")

    assert (detail.status_code, detail.json()["code"]) == (404, "not_found")
    assert (action.status_code, action.json()["code"]) == (404, "not_found")
    assert Escalation.objects.get(pk=escalated.pk).status == "open"


def test_a_member_who_sees_the_case_but_is_no_supervisor_gets_403(escalated, township):
    mediator = client_for(staff(township.village_committee, Role.MEDIATOR))

    assert mediator.get(f"/api/escalations/{escalated.pk}/").status_code == 200
    response = mediator.post(f"/api/escalations/{escalated.pk}/acknowledge/", {}, format="json")

    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")


def test_approving_an_extension_moves_the_due_date_and_resolves(escalated, township):
    supervisor = client_for(staff(township.centre, Role.SUPERVISOR))

    refused = supervisor.post(
        f"/api/escalations/{escalated.pk}/approve-extension/",
        {"extra_days": 0, "reason": "x"},
        format="json",
    )
    approved = supervisor.post(
        f"/api/escalations/{escalated.pk}/approve-extension/",
        {"extra_days": 5, "reason": "当事人外出务工，延后研判"},
        format="json",
    )

    assert (refused.status_code, list(refused.json()["details"])) == (400, ["extra_days"])
    assert approved.status_code == 200
    assert (approved.json()["status"], approved.json()["resolution"]) == (
        "resolved",
        "extension_approved",
    )
    assert approved.json()["clock"]["due"] == "2026-03-17"


def test_reassigning_outside_the_actors_scope_is_refused_with_the_reason(escalated, township, head):
    response = client_for(head).post(
        f"/api/escalations/{escalated.pk}/reassign/",
        {"reason": "改由乡镇调委会办理", "to_agency": township.committee.pk},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["details"]["to_agency"] == [
        f"「{township.committee.name}」不在可选范围内：须为您督办范围内的机构。"
    ]
    assert Case.objects.get(pk=escalated.case_id).holder_agency_id == (
        township.village_committee.pk
    )


def test_a_supervisor_reassigns_within_their_scope_and_gets_the_result(escalated, township):
    supervisor = staff(township.centre, Role.SUPERVISOR)

    response = client_for(supervisor).post(
        f"/api/escalations/{escalated.pk}/reassign/",
        {"reason": "改由乡镇调委会办理", "to_agency": township.committee.pk},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["case"]["holder_agency"]["id"] == township.committee.pk
    assert response.json()["status"] == "acknowledged"


def test_a_supervision_note_reaches_the_assignees_inbox_and_can_be_marked_read(escalated, township):
    supervisor = client_for(staff(township.centre, Role.SUPERVISOR))
    assignee = Case.objects.get(pk=escalated.case_id).assignee
    inbox = client_for(assignee)

    noted = supervisor.post(
        f"/api/escalations/{escalated.pk}/notes/", {"text": "请于今日完成研判。"}, format="json"
    )
    listed = inbox.get("/api/notifications/?unread=true")
    count = inbox.get("/api/notifications/unread-count/")

    assert noted.status_code == 200
    assert noted.json()["data"]["notes"][-1]["text"] == "请于今日完成研判。"
    notes = [n for n in listed.json()["results"] if n["kind"] == "supervision_note"]
    assert len(notes) == 1
    assert notes[0]["case"]["id"] == escalated.case_id
    assert "请于今日完成研判。" in notes[0]["body"]
    assert count.json()["unread"] == listed.json()["count"]

    others = client_for(staff(township.centre, Role.SUPERVISOR)).post(
        "/api/notifications/mark-read/", {"ids": [notes[0]["id"]]}, format="json"
    )
    marked = inbox.post("/api/notifications/mark-read/", {"ids": [notes[0]["id"]]}, format="json")

    assert others.json()["marked"] == 0
    assert marked.json() == {"marked": 1, "unread": count.json()["unread"] - 1}
    assert Notification.objects.get(pk=notes[0]["id"]).read_at == LATER


def test_marking_all_read_empties_the_unread_list(escalated, township, head):
    client = client_for(head)
    assert client.get("/api/notifications/unread-count/").json()["unread"] >= 1

    response = client.post("/api/notifications/mark-read/", {"all": True}, format="json")

    assert response.status_code == 200
    assert response.json()["unread"] == 0
    assert client.get("/api/notifications/?unread=true").json()["results"] == []


def test_mark_read_needs_ids_or_all(head):
    response = client_for(head).post("/api/notifications/mark-read/", {}, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert list(response.json()["details"]) == ["ids"]
