"""The records the law asks for (调解记录, 回访记录, 口头协议登记; issue 13 §3), the document
registry (§4: every document print-ready, with the case number, always in Chinese; the signed
original of the agreement only for users who may reveal ID numbers, logged) and the dossier PDF
(§5)."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import pypdf
import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from mediation.accounts.models import Role, User
from mediation.casefiles.models import FileAccess, FollowUpVisit, MediationSession
from mediation.cases.models import CaseParty
from mediation.cases.services import case_service_action, case_transition
from mediation.core.clock import SHANGHAI
from mediation.core.errors import Conflict, InvalidInput
from mediation.parties.models import IdNumberRevealLog
from mediation.web import documents
from tests.factories.accounts import staff
from tests.factories.agencies import township_tree
from tests.factories.cases import dispute_in_state, id_number, petition_in_state
from tests.integration.casefile.conftest import pdf_bytes, png_bytes

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("mediation.urls"),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "dossier"


def _reveal(user: User) -> User:
    user.user_permissions.add(Permission.objects.get(codename="reveal_id_number"))
    return User.objects.get(pk=user.pk)


def _session(case, actor, now, **kw):
    data = {
        "started_at": "2026-03-11T09:30",
        "place": "将官池镇人民调解委员会调解室",
        "mediators": "调解员甲、调解员乙",
        "parties_present": [cp.pk for cp in CaseParty.objects.filter(case=case)],
        "others_present": "村委会主任",
        "content": "申请人陈述：排水沟占用宅基地约两平方米。被申请人表示愿意改道。",
        **kw,
    }
    return case_service_action(
        case_id=case.pk, name="record_session", actor=actor, now=now, data=data
    )


def test_sessions_are_recorded_several_times_and_shown_on_the_timeline(now):
    t = township_tree()
    case = dispute_in_state("mediating", township=t, now=now)
    mediator = staff(t.committee, Role.MEDIATOR)

    _session(case, mediator, now)
    _session(case, mediator, now, started_at="2026-03-12T14:00", content="第二次调解：双方协商。")

    rows = list(MediationSession.objects.filter(case=case))
    assert [r.started_at.astimezone(SHANGHAI).strftime("%m-%d %H:%M") for r in rows] == [
        "03-11 09:30",
        "03-12 14:00",
    ]
    assert rows[0].parties_present.count() == 2
    web = Client()
    web.force_login(mediator)
    page = web.get(f"/cases/{case.pk}/").content.decode()
    timeline = page.split('id="timeline"')[1]
    assert timeline.count("调解记录") == 2
    assert "2026-03-12 14:00" in timeline
    assert "将官池镇人民调解委员会调解室" in page.split('id="sessions"')[1]


def test_a_session_outside_mediation_is_refused_and_bad_input_is_a_form_error(now):
    t = township_tree()
    registered = dispute_in_state("registered", township=t, now=now)
    mediating = dispute_in_state("mediating", township=t, now=now)
    mediator = staff(t.committee, Role.MEDIATOR)

    with pytest.raises(Conflict):
        _session(registered, staff(t.centre, Role.SUPERVISOR), now)
    with pytest.raises(InvalidInput) as exc:
        _session(mediating, mediator, now, started_at="not a time", content="")
    assert set(exc.value.details) == {"started_at", "content"}


def test_sessions_through_the_api(now):
    t = township_tree()
    case = dispute_in_state("mediating", township=t, now=now)
    api = APIClient()
    api.force_authenticate(staff(t.committee, Role.MEDIATOR))

    created = api.post(
        f"/api/cases/{case.pk}/actions/record_session/",
        {
            "started_at": "2026-03-11T09:30",
            "place": "调解室",
            "mediators": "调解员甲",
            "content": "双方到场，陈述各自意见。",
        },
        format="json",
    )
    listed = api.get(f"/api/cases/{case.pk}/sessions/")

    assert created.status_code == 201, created.content
    assert [s["place"] for s in listed.json()["results"]] == ["调解室"]
    events = api.get(f"/api/cases/{case.pk}/events/").json()["results"]
    assert events[-1]["transition"] == "record_session"


def test_interim_visits_are_separate_from_the_final_one_at_closing(now):
    t = township_tree()
    case = dispute_in_state("performance_monitoring", township=t, now=now)
    mediator = staff(t.committee, Role.MEDIATOR)
    party = CaseParty.objects.filter(case=case).first()

    case_service_action(
        case_id=case.pk,
        name="follow_up_visit",
        actor=mediator,
        now=now,
        data={
            "visited_party": party.pk,
            "reason": "协议履行期限过半",
            "performance": "partly",
            "satisfaction": "basic",
            "risk": "low",
            "measures": "督促被申请人按期付款",
        },
    )
    case_transition(
        case_id=case.pk,
        transition="close_resolved",
        actor=mediator,
        now=now,
        data={"performed": True, "satisfaction": "satisfied"},
    )

    visits = list(FollowUpVisit.objects.filter(case=case).order_by("pk"))
    assert [(v.final, v.performance, v.risk) for v in visits] == [
        (False, "partly", "low"),
        (True, "performed", "none"),
    ]
    assert visits[0].visited_party == party


def test_an_oral_agreement_is_registered_once(now):
    t = township_tree()
    case = dispute_in_state("mediating", township=t, now=now)
    mediator = staff(t.committee, Role.MEDIATOR)
    case_transition(
        case_id=case.pk,
        transition="record_agreement",
        actor=mediator,
        now=now,
        data={"form": "oral", "text": "被申请人当场赔偿申请人五百元，双方不再追究。"},
    )
    agreement = case.agreements.get()

    case_service_action(
        case_id=case.pk,
        name="register_oral_agreement",
        actor=mediator,
        now=now,
        data={
            "agreement": agreement.pk,
            "facts": "邻里因排水沟发生争执。",
            "content": agreement.text,
            "performance": "当场履行",
            "parties_confirmed": True,
        },
    )

    assert agreement.oral_record.performance == "当场履行"
    web = Client()
    web.force_login(mediator)
    assert "register_oral_agreement" not in web.get(f"/cases/{case.pk}/").content.decode()
    sheet = web.get(f"/cases/{case.pk}/print/oral_agreement/").content.decode()
    assert "口头协议登记表" in sheet
    assert case.number in sheet
    assert "当场履行" in sheet


@pytest.fixture
def full_case(now):
    """A dispute with sessions, a written agreement, a follow-up, and material."""
    t = township_tree("将官池")
    case = dispute_in_state("mediating", township=t, now=now)
    mediator = staff(t.committee, Role.MEDIATOR)
    _session(case, mediator, now)
    case_transition(
        case_id=case.pk,
        transition="record_agreement",
        actor=mediator,
        now=now,
        data={"form": "written", "text": "被申请人于协议生效后二十日内赔偿申请人损失三千元。"},
    )
    for name, data, doc_type in (
        ("身份证.png", png_bytes(), "identity"),
        ("证据.pdf", pdf_bytes(3, "Evidence attachment"), "evidence"),
        ("收据.png", png_bytes(colour="#33aa55"), "performance"),
    ):
        case_service_action(
            case_id=case.pk,
            name="upload_attachment",
            actor=mediator,
            now=now,
            data={"doc_type": doc_type},
            files={"file": SimpleUploadedFile(name, data)},
        )
    case_service_action(
        case_id=case.pk,
        name="follow_up_visit",
        actor=mediator,
        now=now,
        data={
            "reason": "回访履行情况",
            "performance": "partly",
            "satisfaction": "basic",
            "risk": "none",
        },
    )
    case.refresh_from_db()
    return t, case, mediator


def test_every_document_of_the_registry_prints_in_chinese_with_the_case_number(full_case, now):
    t, case, mediator = full_case
    petition = petition_in_state("closed", township=t, now=now)
    web = Client()
    web.force_login(mediator)
    web.post("/i18n/setlang/", {"language": "en", "next": "/"})
    officer = Client()
    officer.force_login(staff(t.petition_office, Role.PETITION_OFFICER))
    officer.post("/i18n/setlang/", {"language": "en", "next": "/"})

    printed = []
    for client, c in ((web, case), (officer, petition)):
        page = client.get(f"/cases/{c.pk}/")
        assert page.status_code == 200
        links = documents.documents_for(
            c, hidden=False, access=type("A", (), {"full": True, "court": False, "feedback": False})
        )
        assert links
        for link in links:
            response = client.get(link.url)
            body = response.content.decode()
            assert response.status_code == 200, link.url
            assert response["Content-Language"] == "zh-CN"
            assert c.number in body, link.url
            assert "编号" in body or "送达回证" in body or "告知书" in body
            printed.append(link.spec.slug)
    assert {"application", "rights_notice", "agreement", "follow_up", "service_receipt"} <= set(
        printed
    )
    assert {"acceptance_notice", "opinion"} <= set(printed)


def test_the_signed_original_shows_full_ids_only_to_those_who_may_reveal_them(full_case):
    t, case, mediator = full_case
    agreement = case.agreements.get()
    url = f"/cases/{case.pk}/print/agreement/{agreement.pk}/"
    plain, allowed = Client(), Client()
    plain.force_login(mediator)
    allowed.force_login(_reveal(staff(t.committee, Role.MEDIATOR, n=1)))

    masked = plain.get(url).content.decode()
    refused = plain.get(url + "?original=1")
    original = allowed.get(url + "?original=1").content.decode()

    assert id_number(1) not in masked
    assert id_number(1)[:3] + "*" * 11 + id_number(1)[-4:] in masked
    assert refused.status_code == 404
    assert id_number(1) in original
    assert id_number(2) in original
    assert "原件" in original
    logs = IdNumberRevealLog.objects.filter(context__startswith=f"case:{case.pk}:agreement")
    assert logs.count() == 2


def _pdf_text(data: bytes) -> tuple[pypdf.PdfReader, list[str]]:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return reader, [page.extract_text() or "" for page in reader.pages]


def test_the_dossier_is_one_pdf_in_the_order_of_the_file_index(full_case, now):
    _t, case, mediator = full_case
    web = Client()
    web.force_login(mediator)

    page = web.get(f"/cases/{case.pk}/").content.decode()
    response = web.get(f"/cases/{case.pk}/dossier.pdf")

    assert 'id="dossier-button"' in page
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    reader, pages = _pdf_text(response.content)
    text = "\n".join(pages)
    assert case.number in pages[0]
    for label in ("卷名", "卷号", "调解员", "调解日期", "立卷人", "立卷日期", "保管期限"):
        assert label in pages[0], label
    assert "卷内目录" in pages[1]
    # Every section title, in the order of DOMAIN.md §3.3, in the 目录 and in the body.
    titles = [
        "人民调解申请书（受理登记表）",
        "当事人权利义务告知书",
        "当事人身份证明",
        "证据材料",
        "人民调解记录",
        "人民调解协议书",
        "履行凭证",
        "回访记录",
        "封底",
    ]
    toc = pages[1]
    positions = [toc.index(title) for title in titles]
    assert positions == sorted(positions)
    # The 目录's page numbers point at the pages that hold each part.
    for title, number in re.findall(r"\d+ (人民调解协议书|回访记录|封底) (\d+)", toc):
        assert title in pages[int(number) - 1], title
    # Party names in full, ID numbers and phones masked.
    assert "张三" in text
    assert "李四" in text
    assert id_number(1) not in text
    assert "138****0001" in text
    # The evidence PDF's three pages are appended as they are; each image is a page.
    assert sum("Evidence attachment" in p for p in pages) == 3
    image_pages = [i for i, p in enumerate(pages) if "身份证.png" in p or "收据.png" in p]
    assert len(image_pages) == 2
    for i in image_pages:
        xobjects = reader.pages[i]["/Resources"]["/XObject"]
        assert any(x.get_object()["/Subtype"] == "/Image" for x in xobjects.values())
    assert FileAccess.objects.filter(case=case, kind="dossier", user=mediator).count() == 1
    # Look at it: two pages as PNG in the test artifacts.
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "dossier.pdf").write_bytes(response.content)
    if shutil.which("pdftoppm"):
        for number in (
            1,
            2,
            image_pages[0] + 1,
            pages.index(next(p for p in pages if "人民调解协议书" in p and "编号" in p)) + 1,
        ):
            subprocess.run(
                [
                    "pdftoppm",
                    "-png",
                    "-r",
                    "60",
                    "-f",
                    str(number),
                    "-l",
                    str(number),
                    "-singlefile",
                    str(ARTIFACTS / "dossier.pdf"),
                    str(ARTIFACTS / f"page-{number}"),
                ],
                check=True,
            )
        assert (ARTIFACTS / "page-1.png").stat().st_size > 1000


def test_the_dossier_follows_the_access_rule(full_case, now):
    t, case, _mediator = full_case
    outsider, feedback = Client(), Client()
    outsider.force_login(staff(township_tree("大营").committee, Role.MEDIATOR))
    feedback.force_login(staff(t.police_station, Role.POLICE_OFFICER))

    assert outsider.get(f"/cases/{case.pk}/dossier.pdf").status_code == 404
    assert FileAccess.objects.filter(kind="dossier").count() == 0
