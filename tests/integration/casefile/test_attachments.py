"""Attachments (issue 13 §2): uploaded from the case page and the API, checked by their real
content type and size, stored under a system-chosen name with the user's name kept for display,
served only through the case access rule, every download logged, never deleted (withdrawn)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from rest_framework.test import APIClient

from mediation.accounts.models import Role
from mediation.casefiles import content
from mediation.casefiles.models import Attachment, FileAccess
from mediation.cases.models import CaseEvent
from mediation.cases.services import case_service_action, case_transition
from mediation.core.errors import InvalidInput, PermissionDenied
from tests.factories.accounts import staff
from tests.factories.agencies import township_tree
from tests.factories.cases import dispute_in_state, register_dispute

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("mediation.urls"),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

NAME = "证据‮fdp.exe 照片/../一 二.png"


@pytest.fixture
def world(now):
    """A dispute the township police station registered and handed to the committee (警调对接):
    the station keeps feedback access; the committee holds it."""
    t = township_tree("将官池")
    police = staff(t.police_station, Role.POLICE_OFFICER)
    case = register_dispute(t, now=now, actor=police)
    case_transition(
        case_id=case.pk, transition="triage", actor=police, now=now, data={"risk_level": "low"}
    )
    case_transition(
        case_id=case.pk,
        transition="assign",
        actor=police,
        now=now,
        data={"to_agency": t.committee.pk, "referral_kind": "police_mediation"},
    )
    mediator = staff(t.committee, Role.MEDIATOR)
    case_transition(case_id=case.pk, transition="accept", actor=mediator, now=now)
    return t, case, mediator, police


def _close(response) -> None:
    """Close a streamed file (not the response: that would signal the request's end and close
    the test's database connection)."""
    handle = getattr(response, "file_to_stream", None)
    if handle is not None:
        handle.close()


def upload(case, actor, now, data: bytes, name: str = "a.pdf", doc_type: str = "evidence"):
    return case_service_action(
        case_id=case.pk,
        name="upload_attachment",
        actor=actor,
        now=now,
        data={"doc_type": doc_type, "description": "现场照片"},
        files={"file": SimpleUploadedFile(name, data, content_type="application/octet-stream")},
    )


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("pdf", "application/pdf"),
        ("png", "image/png"),
        ("jpeg", "image/jpeg"),
        ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ],
)
def test_accepted_files_are_stored_with_their_sniffed_type(world, now, files, kind, expected):
    _t, case, mediator, _police = world

    upload(case, mediator, now, files[kind], name="名字.txt")  # the extension is not trusted

    row = Attachment.objects.get(case=case)
    assert row.content_type == expected
    assert row.size == len(files[kind])
    assert content.read_stored(row.stored_name) == files[kind]
    assert row.stored_name.startswith(f"casefiles/{case.pk}/")
    assert "名字" not in row.stored_name
    event = CaseEvent.objects.filter(case=case).order_by("-version").first()
    assert event.transition == "upload_attachment"
    assert event.data["attachment"] == row.pk


@pytest.mark.parametrize("kind", ["exe", "html"])
def test_other_files_are_refused_whatever_their_name(world, now, files, kind):
    _t, case, mediator, _police = world
    case.refresh_from_db()
    version = case.version

    with pytest.raises(InvalidInput) as exc:
        upload(case, mediator, now, files[kind], name="证据.pdf")

    assert "只能上传 PDF、JPEG、PNG 图片或 Office 文档" in str(exc.value.details)
    assert not Attachment.objects.filter(case=case).exists()
    case.refresh_from_db()
    assert case.version == version


@override_settings(ATTACHMENT_MAX_BYTES=1000)
def test_a_file_over_the_size_limit_is_refused(world, now, files):
    _t, case, mediator, _police = world

    with pytest.raises(InvalidInput) as exc:
        upload(case, mediator, now, files["png"])

    assert "文件过大" in str(exc.value.details)


def test_a_damaged_pdf_is_refused(world, now, files):
    _t, case, mediator, _police = world

    with pytest.raises(InvalidInput) as exc:
        upload(case, mediator, now, files["pdf"][:400])

    assert "PDF" in str(exc.value.details)


def test_any_unicode_name_is_kept_for_display_and_never_used_for_storage(world, now, files):
    _t, case, mediator, _police = world

    upload(case, mediator, now, files["png"], name=NAME)

    row = Attachment.objects.get(case=case)
    assert row.original_name == "一 二.png"  # no path, no bidi override
    assert "\u202e" not in row.original_name
    assert row.stored_name.endswith(".png")


def test_the_accused_cannot_upload_and_a_viewer_without_the_right_is_refused(world, now, files):
    _t, case, _mediator, police = world

    with pytest.raises(PermissionDenied):
        upload(case, police, now, files["png"])  # the station only follows the case now
    with pytest.raises(PermissionDenied):
        upload(case, staff(township_tree("大营").committee, Role.MEDIATOR), now, files["png"])


def test_downloads_go_through_the_access_rule_and_are_logged(world, now, files):
    t, case, mediator, police = world
    upload(case, mediator, now, files["pdf"], name="调解申请.pdf", doc_type="evidence")
    upload(case, mediator, now, files["png"], name="收据.png", doc_type="performance")
    evidence, receipt = Attachment.objects.filter(case=case).order_by("pk")
    case_transition(case_id=case.pk, transition="start_mediation", actor=mediator, now=now)
    case_transition(
        case_id=case.pk,
        transition="record_agreement",
        actor=mediator,
        now=now,
        data={"form": "written", "text": "被申请人于十日内赔偿申请人损失三千元整。"},
    )
    case_transition(
        case_id=case.pk,
        transition="apply_confirmation",
        actor=mediator,
        now=now,
        data={"court": t.court.pk},
    )
    clerk = staff(t.court, Role.COURT_CLERK)

    def get(user, row):
        web = Client()
        web.force_login(user)
        response = web.get(f"/cases/{case.pk}/attachments/{row.pk}/")
        response.body = b"".join(response.streaming_content) if response.streaming else b""
        _close(response)
        return response

    own = get(mediator, evidence)
    assert own.status_code == 200
    assert own.body == files["pdf"]
    assert own["Content-Type"] == "application/pdf"
    assert "attachment;" in own["Content-Disposition"]
    assert "filename*=utf-8''" in own["Content-Disposition"]
    assert own["X-Content-Type-Options"] == "nosniff"
    # The court sees the evidence it reviews, not the performance receipts; the station that
    # handed the case on (反馈) sees progress only; another township nothing.
    assert get(clerk, evidence).status_code == 200
    assert get(clerk, receipt).status_code == 404
    assert get(police, evidence).status_code == 404
    assert get(staff(township_tree("大营").committee, Role.MEDIATOR), evidence).status_code == 404
    log = list(FileAccess.objects.filter(case=case).order_by("pk"))
    assert [(a.user_id, a.attachment_id, a.kind) for a in log] == [
        (mediator.pk, evidence.pk, "attachment"),
        (clerk.pk, evidence.pk, "attachment"),
    ]


def test_withdrawing_hides_the_file_records_an_event_and_the_admin_still_sees_it(
    world, now, files, admin_user
):
    _t, case, mediator, _police = world
    upload(case, mediator, now, files["png"], name="错传的照片.png")
    row = Attachment.objects.get(case=case)

    case_service_action(
        case_id=case.pk,
        name="withdraw_attachment",
        actor=mediator,
        now=now + dt.timedelta(minutes=5),
        data={"attachment": row.pk, "reason": "上传错误"},
    )

    row.refresh_from_db()
    assert row.withdrawn_by == mediator
    assert content.read_stored(row.stored_name) == files["png"]  # nothing deleted
    web = Client()
    web.force_login(mediator)
    assert web.get(f"/cases/{case.pk}/attachments/{row.pk}/").status_code == 404
    assert (
        "错传的照片.png"
        not in web.get(f"/cases/{case.pk}/")
        .content.decode()
        .split('id="attachments"')[1]
        .split("</section>")[0]
    )
    assert CaseEvent.objects.filter(case=case, transition="withdraw_attachment").count() == 1
    admin = Client()
    admin.force_login(admin_user)
    listing = admin.get("/admin/casefiles/attachment/").content.decode()
    assert "错传的照片.png" in listing
    with pytest.raises(Exception, match="不可删除"):
        row.delete()


def test_upload_from_the_case_page(world, files):
    _t, case, mediator, _police = world
    web = Client()
    web.force_login(mediator)

    page = web.get(f"/cases/{case.pk}/").content.decode()
    done = web.post(
        f"/cases/{case.pk}/file/upload_attachment/",
        {
            "doc_type": "identity",
            "description": "身份证复印件",
            "file": SimpleUploadedFile("身份证.jpg", files["jpeg"]),
        },
    )
    refused = web.post(
        f"/cases/{case.pk}/file/upload_attachment/",
        {"doc_type": "identity", "file": SimpleUploadedFile("x.pdf", files["exe"])},
    )

    assert 'enctype="multipart/form-data"' in page
    assert done.status_code == 302
    assert Attachment.objects.get(case=case).original_name == "身份证.jpg"
    assert refused.status_code == 400
    assert "只能上传 PDF、JPEG、PNG 图片或 Office 文档" in refused.content.decode()
    assert "身份证.jpg" in web.get(f"/cases/{case.pk}/").content.decode()


def test_upload_list_download_and_withdraw_through_the_api(world, files):
    _t, case, mediator, _police = world
    api = APIClient()
    api.force_authenticate(mediator)

    created = api.post(
        f"/api/cases/{case.pk}/actions/upload_attachment/",
        {"doc_type": "evidence", "file": SimpleUploadedFile("合同.pdf", files["pdf"])},
        format="multipart",
    )
    assert created.status_code == 201, created.content
    listed = api.get(f"/api/cases/{case.pk}/attachments/")
    assert listed.status_code == 200
    (row,) = listed.json()["results"]
    assert (row["original_name"], row["content_type"]) == ("合同.pdf", "application/pdf")
    download = api.get(f"/api/cases/{case.pk}/attachments/{row['id']}/download/")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == files["pdf"]
    _close(download)
    refused = api.post(
        f"/api/cases/{case.pk}/actions/upload_attachment/",
        {"doc_type": "evidence", "file": SimpleUploadedFile("a.pdf", files["html"])},
        format="multipart",
    )
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid"
    withdrawn = api.post(
        f"/api/cases/{case.pk}/actions/withdraw_attachment/",
        {"attachment": row["id"], "reason": "重复上传"},
        format="json",
    )
    assert withdrawn.status_code == 201, withdrawn.content
    assert api.get(f"/api/cases/{case.pk}/attachments/").json()["results"] == []
    assert FileAccess.objects.filter(case=case, user=mediator).count() == 1


def test_a_refused_upload_leaves_no_file_behind(world, now, files, tmp_path, settings):
    _t, case, mediator, _police = world
    storage = content.storage()
    before = set(storage.listdir("")[0]) if storage.exists("") else set()

    with pytest.raises(InvalidInput):
        upload(case, mediator, now, files["exe"])

    assert (set(storage.listdir("")[0]) if storage.exists("") else set()) == before


def test_dispute_in_other_states_still_takes_material(now, files):
    t = township_tree()
    case = dispute_in_state("closed_resolved", township=t, now=now)
    mediator = staff(t.committee, Role.MEDIATOR)

    upload(case, mediator, now, files["png"], doc_type="file_notes")

    assert Attachment.objects.filter(case=case).count() == 1
