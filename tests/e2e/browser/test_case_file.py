"""The case file in real headless Chromium (issue 13): the mediator finds a case with the
search box by a party's name and by a phone number, uploads evidence from the case page (and
sees a forged file refused), and downloads the whole file with the dossier button.

Screenshots go to test-artifacts/screenshots/ (11_… to 14_…)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from mediation.accounts.models import Role
from mediation.casefiles.models import Attachment
from tests.e2e.browser.test_workflow import (  # the project's browser harness
    DESKTOP,
    _login,
    _shot,
    _with_password,
    browser,  # noqa: F401  (fixture)
    clock_file,  # noqa: F401  (fixture)
    pytestmark,  # noqa: F401  (markers: e2e, live server, chromium)
)
from tests.factories.accounts import staff
from tests.factories.agencies import township_tree
from tests.factories.cases import dispute_in_state
from tests.integration.casefile.conftest import png_bytes

playwright_api = pytest.importorskip("playwright.sync_api")


def test_search_upload_and_the_dossier_button(browser, live_server, clock_file, now, tmp_path):  # noqa: F811
    import pypdf

    township = township_tree("将官池")
    case = dispute_in_state("mediating", township=township, now=now)
    mediator = _with_password(staff(township.committee, Role.MEDIATOR))
    base = live_server.url
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN", accept_downloads=True)
    page = context.new_page()
    _login(page, base, mediator)

    # The search box: a party's name, then the phone number.
    page.goto(f"{base}/cases/agency/")
    page.fill("#case-search input[name=q]", "张三")
    page.click("#case-search button[type=submit]")
    page.wait_for_load_state()
    assert case.number in page.content()
    assert "搜索结果" in page.content()
    _shot(page, "11_search_by_name")
    page.fill("#case-search input[name=q]", "13800000001")
    page.click("#case-search button[type=submit]")
    page.wait_for_load_state()
    assert case.number in page.content()
    page.fill("#case-search input[name=q]", "查无此人")
    page.click("#case-search button[type=submit]")
    page.wait_for_load_state()
    assert "没有找到符合条件的案件" in page.content()

    # Upload a photo as evidence from the case page.
    page.goto(f"{base}/cases/{case.pk}/")
    photo = tmp_path / "现场照片 一.png"
    photo.write_bytes(png_bytes())
    page.click("#action-upload_attachment > summary")
    page.select_option("#action-upload_attachment select[name=doc_type]", label="证据材料")
    page.fill("#action-upload_attachment input[name=description]", "排水沟现场")
    page.set_input_files("#action-upload_attachment input[type=file]", str(photo))
    _shot(page, "12_upload_form")
    page.click("#action-upload_attachment button[type=submit]")
    page.wait_for_load_state()
    assert "已完成：上传卷宗材料" in page.content()
    assert "现场照片 一.png" in page.locator("#attachments").inner_text()
    _shot(page, "13_attachment_listed")
    # A forged file (an executable named .pdf) is refused with the reason.
    forged = tmp_path / "证据.pdf"
    forged.write_bytes(b"MZ\x90\x00" + b"\x00" * 300)
    page.click("#action-upload_attachment > summary")
    page.select_option("#action-upload_attachment select[name=doc_type]", label="证据材料")
    page.set_input_files("#action-upload_attachment input[type=file]", str(forged))
    page.click("#action-upload_attachment button[type=submit]")
    page.wait_for_load_state()
    assert "只能上传 PDF、JPEG、PNG 图片或 Office 文档" in page.content()
    assert Attachment.objects.filter(case=case).count() == 1

    # The dossier button downloads the whole file as one PDF.
    page.goto(f"{base}/cases/{case.pk}/")
    with page.expect_download() as download_info:
        page.click("#dossier-button")
    path = download_info.value.path()
    data = Path(path).read_bytes()
    assert data[:5] == b"%PDF-"
    reader = pypdf.PdfReader(io.BytesIO(data))
    text = "".join(p.extract_text() or "" for p in reader.pages)
    assert case.number in text
    assert "卷内目录" in text
    assert "现场照片 一.png" in text
    _shot(page, "14_case_page_with_file")
    context.close()
