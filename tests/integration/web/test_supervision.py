"""The supervisor's escalation queue, its actions, notifications and statistics."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.urls import reverse

from mediation.accounts.models import Role
from mediation.cases import labels
from mediation.cases.models import CaseEvent
from mediation.deadlines import policy
from mediation.escalation.models import Escalation
from mediation.escalation.sweeps import sweep_run
from mediation.notifications.models import Notification
from tests.factories.accounts import staff
from tests.factories.cases import dispute_in_state, register_dispute

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("tests.integration.web.urls"),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


@pytest.fixture
def overdue(township, now):
    """Two disputes registered a week ago, their triage overdue, escalated to level 1."""
    cases = [
        register_dispute(township, now=now - dt.timedelta(days=7), title=f"超期纠纷{i}")
        for i in range(2)
    ]
    sweep_run(now=now, trigger="test")
    return cases


def test_queue_lists_overdue_escalations_with_days_overdue(login, supervisor, overdue):
    response = login(supervisor).get(reverse("web:supervision"))

    html = response.content.decode()
    assert response.status_code == 200
    assert "超期督办" in html
    for case in overdue:
        assert case.number in html
    assert "6 日" in html
    assert "批量签收所选" in html
    assert 'data-poll-url="/supervision/queue/"' in html


def test_queue_partial_returns_the_table_for_polling(login, supervisor, overdue, township, now):
    late = register_dispute(township, now=now - dt.timedelta(days=9), title="新超期纠纷")
    sweep_run(now=now + dt.timedelta(minutes=1), trigger="test")

    response = login(supervisor).get(reverse("web:supervision_queue"))

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert late.number in html


def test_queue_filters_by_days_overdue(login, supervisor, overdue, township, now):
    recent = register_dispute(township, now=now - dt.timedelta(days=2), title="刚超期")
    sweep_run(now=now + dt.timedelta(minutes=1), trigger="test")

    response = login(supervisor).get(reverse("web:supervision"), {"min_days": 3})

    html = response.content.decode()
    assert overdue[0].number in html
    assert recent.number not in html


def test_acknowledge_in_one_click_records_it_on_the_case(login, supervisor, overdue):
    escalation = Escalation.objects.get(case=overdue[0])

    response = login(supervisor).post(
        reverse("web:escalation_action", args=[escalation.pk, "acknowledge"]), follow=True
    )

    escalation.refresh_from_db()
    assert escalation.status == "acknowledged"
    assert escalation.acknowledged_by_id == supervisor.pk
    assert "已签收督办" in response.content.decode()
    assert CaseEvent.objects.filter(case=overdue[0], transition="escalation_acknowledge").exists()


def test_bulk_acknowledge_signs_every_ticked_escalation(login, supervisor, overdue):
    ids = list(Escalation.objects.values_list("pk", flat=True))

    response = login(supervisor).post(
        reverse("web:supervision_bulk_ack"), {"escalation": ids}, follow=True
    )

    assert set(Escalation.objects.values_list("status", flat=True)) == {"acknowledged"}
    assert "已签收 2 条督办" in response.content.decode()


def test_approve_extension_and_issue_a_note_from_the_escalation_page(login, supervisor, overdue):
    escalation = Escalation.objects.get(case=overdue[0])
    client = login(supervisor)

    page = client.get(reverse("web:escalation_action", args=[escalation.pk, "handle"]))
    client.post(
        reverse("web:escalation_action", args=[escalation.pk, "note"]),
        {"text": "请于三日内完成研判分流。"},
    )
    client.post(
        reverse("web:escalation_action", args=[escalation.pk, "extend"]),
        {"extra_days": "10", "reason": "当事人外出务工"},
    )

    escalation.refresh_from_db()
    overdue[0].refresh_from_db()
    assert page.status_code == 200
    assert "下达督办意见" in page.content.decode()
    assert overdue[0].supervised is True
    assert escalation.status == "resolved"
    assert escalation.resolution == "extension_approved"


def test_reassign_from_the_escalation_page(login, supervisor, overdue, township):
    escalation = Escalation.objects.get(case=overdue[0])
    other = staff(township.centre, Role.JUDICIAL_OFFICER)

    response = login(supervisor).post(
        reverse("web:escalation_action", args=[escalation.pk, "reassign"]),
        {"to_user": other.pk, "reason": "原承办人休假"},
        follow=True,
    )

    overdue[0].refresh_from_db()
    assert overdue[0].assignee_id == other.pk
    assert "已改派" in response.content.decode()


def test_a_bad_action_shows_a_message_not_an_error(login, supervisor, overdue):
    escalation = Escalation.objects.get(case=overdue[0])

    response = login(supervisor).post(
        reverse("web:escalation_action", args=[escalation.pk, "extend"]),
        {"extra_days": "abc", "reason": ""},
        follow=True,
    )

    assert response.status_code == 200
    assert "延长天数须为整数" in response.content.decode()


def test_mediators_cannot_open_the_supervision_pages(login, mediator, overdue):
    escalation = Escalation.objects.get(case=overdue[0])
    client = login(mediator)

    assert client.get(reverse("web:supervision")).status_code == 403
    assert client.get(reverse("web:stats")).status_code == 403
    # Not theirs to act on (not the head, not a supervisor over it): as if it did not exist.
    assert (
        client.post(reverse("web:escalation_action", args=[escalation.pk, "acknowledge"]))
    ).status_code == 404


def test_supervisors_of_another_township_get_404_for_the_escalation(login, overdue):
    from tests.factories.agencies import township_tree

    stranger = staff(township_tree("大营").centre, Role.SUPERVISOR)
    escalation = Escalation.objects.get(case=overdue[0])

    response = login(stranger).post(
        reverse("web:escalation_action", args=[escalation.pk, "acknowledge"])
    )

    assert response.status_code == 404


# Notifications -------------------------------------------------------------------------------


def test_header_shows_the_unread_count_and_the_inbox_marks_read(login, supervisor, overdue):
    unread = Notification.objects.filter(recipient=supervisor, read_at__isnull=True).count()
    assert unread >= 1
    client = login(supervisor)

    page = client.get(reverse("web:notifications"))
    note = Notification.objects.filter(recipient=supervisor).first()
    client.post(reverse("web:notifications_read"), {"notification": [note.pk]})
    after = client.get(reverse("web:notifications"))

    html = page.content.decode()
    assert f"data-unread>{unread}<" in html
    assert note.subject in html
    note.refresh_from_db()
    assert note.read_at is not None
    assert f"data-unread>{unread - 1}<" in after.content.decode() or unread == 1


# Statistics ----------------------------------------------------------------------------------


def test_statistics_page_draws_every_table(login, supervisor, township, now, overdue):
    dispute_in_state("closed_resolved", township=township, now=now)

    response = login(supervisor).get(
        reverse("web:stats"), {"date_from": "2026-01-01", "date_to": "2026-03-31"}
    )

    html = response.content.decode()
    assert response.status_code == 200
    for title in ("在办案件", "按期办结率", "超期趋势", "按类型和来源", "各状态平均停留时间"):
        assert title in html
    assert html.count("<svg") >= 5
    tables = {t.slug: t for t in response.context["tables"]}
    assert sum(row[-1] for row in tables["open"].rows) == 2
    # Due in March: two overdue triage clocks; triage and acknowledgement of the closed case.
    assert ["2026-03", 4, 2] in tables["overdue"].rows
    assert any(row[0] == "矛盾纠纷" and row[1] == "研判分流" for row in tables["state_time"].rows)


def test_statistics_csv_export(login, supervisor, overdue):
    response = login(supervisor).get(
        reverse("web:stats_export", args=["open"]),
        {"date_from": "2026-01-01", "date_to": "2026-03-31"},
    )

    text = response.content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert response["Content-Type"].startswith("text/csv")
    assert rows[0] == ["承办机构", "类别", "状态", "件数"]
    assert rows[1][1:] == ["矛盾纠纷", "登记", "2"]


def test_every_rule_code_has_a_translatable_label():
    assert set(labels.RULE_LABELS) == set(policy.RULES)
    for code, rule in policy.RULES.items():
        assert str(labels.RULE_LABELS[code]) == rule.label
