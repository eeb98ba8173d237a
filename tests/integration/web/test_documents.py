"""Printable documents: 受理告知书, 人民调解协议书 and 督办单."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from mediation.escalation.models import Escalation
from mediation.escalation.sweeps import sweep_run
from tests.factories.cases import dispute_in_state, petition_in_state, register_dispute

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("tests.integration.web.urls"),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


def test_acceptance_notice_prints_the_petitioner_the_matter_and_the_60_day_due_date(
    login, township, now, petition_officer
):
    petition = petition_in_state("handling", township=township, now=now)

    response = login(petition_officer).get(
        reverse("web:print_acceptance_notice", args=[petition.pk])
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "信访事项受理告知书" in html
    assert "王五" in html
    assert petition.title in html
    assert "2026年3月11日" in html  # accepted on
    assert "60日内办结" in html
    assert "2026年5月11日" in html  # 2026-03-11 + 60 = 05-10 (Sunday) → Monday 05-11
    assert "@page" not in html  # the print rules live in print.css
    assert "web/print.css" in html


def test_acceptance_notice_is_404_before_acceptance(login, township, now, petition_officer):
    petition = petition_in_state("registered", township=township, now=now)

    response = login(petition_officer).get(
        reverse("web:print_acceptance_notice", args=[petition.pk])
    )

    assert response.status_code == 404


def test_agreement_prints_parties_terms_performance_date_and_signature_lines(login, township, now):
    case = dispute_in_state("agreement_reached", township=township, now=now)
    agreement = case.agreements.get()

    response = login(case.assignee).get(
        reverse("web:print_agreement", args=[case.pk, agreement.pk])
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "人民调解协议书" in html
    assert "张三" in html
    assert "李四" in html
    assert agreement.text in html
    assert "2026年3月31日" in html  # performance due: today + 20 days
    assert "签名、盖章或按指印" in html
    assert "人民调解员（签名）" in html
    assert "人民调解委员会印章" in html
    assert "本协议一式3份" in html


def test_agreement_is_404_for_someone_out_of_scope(login, township, now, outsider):
    case = dispute_in_state("agreement_reached", township=township, now=now)
    agreement = case.agreements.get()

    response = login(outsider).get(reverse("web:print_agreement", args=[case.pk, agreement.pk]))

    assert response.status_code == 404


def test_supervision_notice_prints_from_the_escalation(login, township, now, supervisor):
    case = register_dispute(township, now=now - dt.timedelta(days=7))
    sweep_run(now=now, trigger="test")
    escalation = Escalation.objects.get(case=case)

    response = login(supervisor).get(reverse("web:print_supervision_notice", args=[escalation.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "督 办 单" in html
    assert case.number in html
    assert "矛盾纠纷研判分流期限" in html
    assert "2026年3月5日" in html  # due: 1 working day after Wednesday 03-04
    assert "超期6日" in html
    assert escalation.get_level_display() in html
