"""检举控告 (信访工作条例 Art 30 ¶3, Art 46(5)): the accused agency never learns who accused it.

An accusation against the township police station is filed at the station itself, registered
and passed on to the township 信访办, which accepts it, handles it and sends the civil dispute
inside it to the township mediation committee (访调对接). The station keeps following what it
handed on (反馈), so it sees the matter, and is told of it. Then every user of the accused
station requests every web page, API endpoint, admin page, CSV export, notification and print
that names the petition or the dispute spawned from it, and the petitioner's name, phone,
address and ID number appear in none of them.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from mediation.accounts.models import Role, User
from mediation.casefiles.models import Attachment
from mediation.cases.models import Case, CaseEvent, CasePartyRole, Category
from mediation.cases.selectors import open_cases_for_party
from mediation.cases.services import (
    PartyInput,
    case_service_action,
    case_transition,
    petition_refer_to_mediation,
)
from mediation.escalation.models import Escalation
from mediation.escalation.sweeps import sweep_run
from mediation.notifications.models import Notification
from mediation.reports.services import stats_refresh
from mediation.web import stats
from tests.factories.accounts import head_of, staff
from tests.factories.agencies import township_tree
from tests.factories.cases import id_number, receive_petition
from tests.integration.casefile.conftest import png_bytes

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("mediation.urls"),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

NAME = "欧阳明远"
PHONE = "13577770007"
ADDRESS = "秋湖村七组十九号"
ID = id_number(707)
SECRETS = (NAME, PHONE, ADDRESS, ID, ID[-8:], PHONE[-8:])


@pytest.fixture
def world(now):
    t = township_tree("将官池")
    station = t.police_station
    filer = staff(station, Role.POLICE_OFFICER, n=1)
    petition = receive_petition(
        t,
        now=now,
        actor=filer,
        parties=[
            PartyInput(
                name=NAME,
                role=CasePartyRole.PETITIONER,
                id_number=ID,
                phone=PHONE,
                address=ADDRESS,
            ),
            PartyInput(name="某民警", role=CasePartyRole.RESPONDENT),
        ],
        petition_type="accusation",
        title="检举派出所民警违规罚款",
        description=f"信访人{NAME}（电话{PHONE}）反映民警违规罚款。",
        accused_agency_id=station.pk,
    )
    steps = [
        (filer, "register", {"petition_type": "accusation", "note": f"来访人{NAME}"}),
        (filer, "forward", {"to_agency": t.petition_office.pk, "mode": "forward"}),
        (staff(t.petition_office, Role.PETITION_OFFICER), "accept_forwarded", {}),
        (staff(t.petition_office, Role.PETITION_OFFICER), "start_handling", {}),
    ]
    for actor, name, data in steps:
        case_transition(case_id=petition.pk, transition=name, actor=actor, now=now, data=data)
    dispute = petition_refer_to_mediation(
        petition_id=petition.pk,
        actor=staff(t.petition_office, Role.PETITION_OFFICER),
        now=now,
        data={
            "to_agency": t.committee.pk,
            "title": "信访人与某民警赔偿纠纷",
            "category": Category.objects.get(code="SHPC").pk,
        },
    )
    mediator = staff(t.committee, Role.MEDIATOR)
    case_transition(case_id=dispute.pk, transition="accept", actor=mediator, now=now)
    case_transition(case_id=dispute.pk, transition="start_mediation", actor=mediator, now=now)
    # The case file: material whose name and description name the petitioner, and a session
    # record that names them too, on both cases.
    officer = staff(t.petition_office, Role.PETITION_OFFICER)
    for case, actor in ((petition, officer), (dispute, mediator)):
        case_service_action(
            case_id=case.pk,
            name="upload_attachment",
            actor=actor,
            now=now,
            data={"doc_type": "evidence", "description": f"{NAME}提交的罚款收据"},
            files={"file": SimpleUploadedFile(f"{NAME}收据.png", png_bytes())},
        )
        case_service_action(
            case_id=case.pk,
            name="record_session",
            actor=actor,
            now=now,
            data={
                "started_at": "2026-03-11T09:00",
                "place": "调解室",
                "mediators": "调解员甲",
                "parties_present": [cp.pk for cp in case.case_parties.all()],
                "others_present": f"{NAME}的家属",
                "content": f"{NAME}（电话{PHONE}）陈述被罚款经过。",
            },
        )
    case_transition(
        case_id=dispute.pk,
        transition="record_agreement",
        actor=mediator,
        now=now,
        data={"form": "written", "text": f"某民警向{NAME}退还罚款二百元，双方不再追究。"},
    )
    # Overdue clocks and their escalations, so that 督办单 and notices exist.
    head_of(t.petition_office)
    head_of(t.committee)
    sweep_run(now=now.replace(year=2026, month=6), trigger="test")
    stats_refresh(now=now)
    # Every user of the accused agency: officers, its head (a supervisor, with the reveal
    # permission), all of them admin-site staff with the demo group's view permissions.
    head = head_of(station)
    people = [filer, staff(station, Role.POLICE_OFFICER), staff(station, Role.PETITION_OFFICER)]
    people.append(head)
    views = Permission.objects.filter(codename__startswith="view_")
    reveal = Permission.objects.get(codename="reveal_id_number")
    for user in people:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
        user.user_permissions.add(*views, reveal)
    users = list(User.objects.filter(agency=station))
    assert {u.pk for u in users} == {u.pk for u in people}
    return t, Case.objects.get(pk=petition.pk), Case.objects.get(pk=dispute.pk), users


def urls_for(petition: Case, dispute: Case) -> list[str]:
    r = reverse
    cases = (petition, dispute)
    out = [
        r("web:cases_mine"),
        r("web:cases_agency"),
        r("web:cases_agency") + "?closed=1",
        r("web:cases_agency") + "?q=" + NAME,
        r("web:referrals"),
        r("web:notifications"),
        r("web:supervision"),
        r("web:stats"),
        *(r("web:stats_export", args=[table]) for table in stats.TABLES),
        r("web:register", args=["petition"]),
        "/api/cases/",
        f"/api/cases/?q={NAME}",
        "/api/escalations/",
        "/api/notifications/",
        "/admin/",
        "/admin/cases/petition/",
        "/admin/cases/dispute/",
        f"/admin/cases/petition/?q={NAME}",
        "/admin/cases/caseevent/",
        f"/admin/cases/caseevent/?q={NAME}",
        "/admin/parties/party/",
        f"/admin/parties/party/?q={NAME}",
        "/admin/parties/idnumberreveallog/",
        "/admin/deadlines/clock/",
        "/admin/escalation/escalation/",
        "/admin/notifications/notification/",
        "/admin/notifications/delivery/",
        "/admin/casefiles/attachment/",
        "/admin/casefiles/fileaccess/",
    ]
    for case in cases:
        out += [
            r("web:case_detail", args=[case.pk]),
            r("web:print_acceptance_notice", args=[case.pk]),
            f"/api/cases/{case.pk}/",
            f"/api/cases/{case.pk}/events/",
            f"/api/cases/{case.pk}/clocks/",
            f"/api/cases/{case.pk}/transitions/",
            f"/api/cases/{case.pk}/attachments/",
            f"/api/cases/{case.pk}/sessions/",
            r("web:dossier", args=[case.pk]),
            *(
                r("web:print_document", args=[case.pk, slug])
                for slug in ("application", "rights_notice", "session_record", "closing_report")
            ),
            *(
                r("web:attachment_download", args=[case.pk, a.pk])
                for a in Attachment.objects.filter(case=case)
            ),
            *(
                f"/api/cases/{case.pk}/attachments/{a.pk}/download/"
                for a in Attachment.objects.filter(case=case)
            ),
            f"/admin/cases/{case.kind}/{case.pk}/change/",
            f"/admin/cases/caseevent/?case__id__exact={case.pk}",
        ]
        out += [
            f"/admin/cases/caseevent/{e.pk}/change/" for e in CaseEvent.objects.filter(case=case)
        ]
        out += [r("web:print_agreement", args=[case.pk, a.pk]) for a in case.agreements.all()]
        out += [f"/admin/parties/party/{cp.party_id}/change/" for cp in case.case_parties.all()]
    for e in Escalation.objects.filter(case__in=cases):
        out += [
            r("web:print_supervision_notice", args=[e.pk]),
            r("web:escalation_action", args=[e.pk, "handle"]),
            f"/api/escalations/{e.pk}/",
            f"/admin/escalation/escalation/{e.pk}/change/",
        ]
    for n in Notification.objects.filter(case__in=cases):
        out.append(f"/admin/notifications/notification/{n.pk}/change/")
    return out


def test_no_user_of_the_accused_agency_ever_sees_who_accused_it(world):
    t, petition, dispute, users = world
    assert Escalation.objects.filter(case__in=[petition, dispute]).exists()
    seen_petition = 0
    for user in users:
        web, api = Client(), APIClient()
        web.force_login(user)
        api.force_authenticate(user)
        for url in urls_for(petition, dispute):
            client = api if url.startswith("/api/") else web
            response = client.get(url)
            assert response.status_code < 500, url
            body = response.content.decode("utf-8", "replace")
            if f"q={NAME}" in url:
                # The search box shows back what the user typed; the results must not
                # show that the name found anything.
                body = body.replace(f'value="{NAME}"', 'value=""')
                assert petition.number not in body, url
            leaked = [s for s in SECRETS if s in body]
            assert leaked == [], f"{user} {url}: {leaked}"
            if url == reverse("web:case_detail", args=[petition.pk]):
                assert response.status_code == 200  # they do see the matter itself
                seen_petition += 1
        # The duplicate warning of the registration page knows nothing of the accusation.
        assert open_cases_for_party(user=user, id_number=ID, phone=PHONE) == ([], 0, [])
        # The petitioner's full ID number cannot be revealed, by page or API.
        party = petition.case_parties.get(role=CasePartyRole.PETITIONER).party_id
        assert (
            web.post(
                reverse("web:party_reveal", args=[petition.pk, party]), {"purpose": "核实"}
            ).status_code
            == 404
        )
        assert (
            api.post(
                f"/api/cases/{petition.pk}/parties/{party}/reveal/",
                {"purpose": "核实"},
                format="json",
            ).status_code
            == 403
        )
    assert seen_petition == len(users)
    # Typing the petitioner's phone and ID into the registration form: no warning at all, the
    # new case is simply registered (which it is, a new matter of the station's own).
    web = Client()
    web.force_login(users[0])
    response = web.post(
        reverse("web:register", args=["petition"]),
        {
            "title": "来访登记",
            "category": Category.objects.filter(applies_to="petition").first().pk,
            "channel": petition.channel_id,
            "received_on": "2026-03-11",
            "description": "来访",
            "petition_type": "complaint",
            "headcount": 1,
            "parties-TOTAL_FORMS": 1,
            "parties-INITIAL_FORMS": 0,
            "parties-MIN_NUM_FORMS": 1,
            "parties-MAX_NUM_FORMS": 50,
            "parties-0-name": "某甲",
            "parties-0-role": "petitioner",
            "parties-0-id_number": ID,
            "parties-0-phone": PHONE,
        },
    )
    assert response.status_code == 302
    # The station was told of the hand-over's progress (反馈), and those notices are clean.
    notices = Notification.objects.filter(recipient__agency=t.police_station, case=petition)
    assert notices.exists()
    for n in notices:
        assert not [s for s in SECRETS if s in n.subject + n.body]


def test_the_spawned_dispute_inherits_the_protection_and_stays_away_from_the_accused(world):
    t, _petition, dispute, users = world

    assert (dispute.involves_accusation, dispute.accused_agency_id) == (True, t.police_station.pk)
    supervisor = Client()
    supervisor.force_login(staff(t.centre, Role.SUPERVISOR))
    shown = supervisor.get(reverse("web:case_detail", args=[dispute.pk])).content.decode()
    assert NAME in shown  # outside the accused agency the parties are shown as usual
    for user in users:
        web = Client()
        web.force_login(user)
        assert web.get(reverse("web:case_detail", args=[dispute.pk])).status_code == 404
