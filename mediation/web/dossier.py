"""The 卷宗 as one PDF (issue 13 §5), in the order of DOMAIN.md §3.3.

Pipeline: one HTML document (cover, 目录, each document of the registry built from the case's
data, the attachments, back cover) rendered by WeasyPrint; the 目录's page numbers are CSS
`target-counter()`s, so they are whatever WeasyPrint laid out. An image attachment is placed
on a page of its own; a PDF attachment is laid out as that many placeholder pages (so the page
numbers after it are right), which pypdf then replaces by the attachment's own pages. Office
documents are listed (they are not converted). Fonts: Debian's fonts-wqy-zenhei (CJK), found
by fontconfig; WeasyPrint fetches nothing from the network (`_Fetcher`).
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.utils import translation

from mediation.accounts.models import User
from mediation.casefiles import content
from mediation.casefiles.models import DocumentType
from mediation.casefiles.selectors import attachments_for
from mediation.cases.models import Case, CaseKind
from mediation.cases.selectors import identity_hidden_from
from mediation.core.clock import local_date
from mediation.web import documents


@dataclass
class Section:
    anchor: str
    title: str
    body: str = ""  # rendered HTML of a generated document
    kind: str = "doc"  # doc | image | pdf | list
    attachment: Any = None
    pages: int = 0
    items: list[Any] = field(default_factory=list)

    @property
    def placeholder_pages(self) -> range:
        return range(self.pages)


# §3.3: the documents and attachment types of each index entry, in order.
DISPUTE_INDEX: list[tuple[str, list[str], list[str]]] = [
    ("人民调解申请书（受理登记表）", ["application"], [DocumentType.APPLICATION]),
    ("当事人权利义务告知书", ["rights_notice"], [DocumentType.RIGHTS_NOTICE]),
    ("当事人身份证明", [], [DocumentType.IDENTITY]),
    ("授权委托书", [], [DocumentType.POWER_OF_ATTORNEY]),
    ("调查记录", [], [DocumentType.INVESTIGATION]),
    ("证据材料", [], [DocumentType.EVIDENCE]),
    ("人民调解记录", ["session_record"], [DocumentType.SESSION_RECORD]),
    ("人民调解协议书", ["agreement", "oral_agreement"], [DocumentType.AGREEMENT]),
    ("履行凭证", [], [DocumentType.PERFORMANCE]),
    ("回访记录", ["follow_up"], [DocumentType.FOLLOW_UP]),
    ("司法确认材料", [], [DocumentType.CONFIRMATION]),
    (
        "卷宗情况说明",
        ["closing_report", "termination_notice"],
        [DocumentType.FILE_NOTES, DocumentType.OTHER],
    ),
]
# A petition's file (DOMAIN.md §3.4): registration, notices, records, opinions, material.
PETITION_INDEX: list[tuple[str, list[str], list[str]]] = [
    ("信访事项登记", [], [DocumentType.APPLICATION]),
    ("受理（不予受理）告知书", ["acceptance_notice", "not_accept_notice"], []),
    ("延长办理期限告知书", ["extension_notice"], []),
    (
        "调查、调解记录",
        ["session_record"],
        [DocumentType.INVESTIGATION, DocumentType.SESSION_RECORD],
    ),
    (
        "证据材料",
        [],
        [DocumentType.IDENTITY, DocumentType.POWER_OF_ATTORNEY, DocumentType.EVIDENCE],
    ),
    ("信访处理意见书", ["opinion"], [DocumentType.AGREEMENT]),
    ("复查意见书", ["review_opinion"], []),
    ("复核意见书", ["rereview_opinion"], []),
    (
        "其他材料",
        [],
        [
            DocumentType.PERFORMANCE,
            DocumentType.FOLLOW_UP,
            DocumentType.CONFIRMATION,
            DocumentType.FILE_NOTES,
            DocumentType.OTHER,
        ],
    ),
]


def _doc_bodies(case: Case, slug: str, *, hidden: bool) -> list[str]:
    if not documents.document_available(case, slug):
        return []
    if slug == "agreement":
        return [
            render_to_string(
                "web/docs/_agreement_body.html",
                documents.agreement_document(case, a, hidden=hidden),
            )
            for a in documents._written_agreements(case)
        ]
    if slug == "acceptance_notice":
        return [
            render_to_string(
                "web/docs/_acceptance_notice_body.html",
                documents.acceptance_notice(case, hidden=hidden),
            )
        ]
    doc = documents.build_document(case, slug, hidden=hidden)
    return [render_to_string("web/docs/_generic_body.html", {"doc": doc})]


def dossier_sections(case: Case, *, user: User) -> list[Section]:
    hidden = identity_hidden_from(user, case)
    files = attachments_for(user, case)
    index = DISPUTE_INDEX if case.kind == CaseKind.DISPUTE else PETITION_INDEX
    sections: list[Section] = []
    for title, slugs, types in index:
        bodies = [b for slug in slugs for b in _doc_bodies(case, slug, hidden=hidden)]
        mine = [a for a in files if a.doc_type in types and a.withdrawn_at is None]
        if not bodies and not mine:
            continue
        n = len(sections) + 1
        first = True
        for i, body in enumerate(bodies):
            sections.append(Section(anchor=f"s{n}-d{i}", title=title if first else "", body=body))
            first = False
        others = []
        for a in mine:
            label = f"{a.get_doc_type_display()}：{a.original_name}"
            if a.is_image:
                sections.append(
                    Section(f"s{n}-a{a.pk}", label if first else "", kind="image", attachment=a)
                )
            elif a.is_pdf:
                sections.append(
                    Section(
                        f"s{n}-a{a.pk}",
                        label if first else "",
                        kind="pdf",
                        attachment=a,
                        pages=a.pages or 1,
                    )
                )
            else:
                others.append(a)
                continue
            first = False
        if others:
            sections.append(
                Section(f"s{n}-list", title if first else "", kind="list", items=others)
            )
        # Every index entry appears in the 目录 once, under its own title.
        group = [x for x in sections if x.anchor.startswith(f"s{n}-")]
        for j, x in enumerate(group):
            x.title = title if j == 0 else ""
    return sections


def _mediation_dates(case: Case) -> tuple[str, str]:
    from mediation.casefiles.models import MediationSession

    sessions = list(MediationSession.objects.filter(case_id=case.pk).order_by("started_at"))
    start = local_date(sessions[0].started_at) if sessions else case.accepted_on
    end = (
        local_date(case.closed_at)
        if case.closed_at
        else (local_date(sessions[-1].started_at) if sessions else None)
    )
    return documents._d(start) or "—", documents._d(end) or "—"


def dossier_html(case: Case, *, user: User, now: dt.datetime) -> tuple[str, list[Section]]:
    sections = dossier_sections(case, user=user)
    start, end = _mediation_dates(case)
    context = {
        "case": case,
        "sections": sections,
        "toc": [s for s in sections if s.title],
        "mediator": str(case.assignee) if case.assignee_id else "—",
        "start": start,
        "end": end,
        "filer": str(user),
        "filed_on": documents._d(local_date(now)),
        "retention": settings.DOSSIER_RETENTION,
        "volume_title": (
            f"{case.holder_agency.name}人民调解卷宗"
            if case.kind == CaseKind.DISPUTE
            else f"{case.holder_agency.name}信访事项卷宗"
        ),
    }
    with translation.override(documents.DOCUMENT_LANGUAGE):
        html = render_to_string("web/docs/dossier.html", context)
    return html, sections


class _Fetcher:
    """WeasyPrint's resources: the project's static files and the case's attachments, nothing
    else (no network, no local file by path)."""

    def __init__(self, attachments: dict[int, Any]) -> None:
        self.attachments = attachments

    def fetch(self, url: str, headers: Any = None) -> Any:
        from weasyprint.urls import URLFetcherResponse

        if url.startswith("static:"):
            path = finders.find(url[len("static:") :])
            if not path:
                raise ValueError(f"no static file {url}")
            with open(path, "rb") as fh:
                body = fh.read()
            mime = "text/css" if url.endswith(".css") else "application/octet-stream"
            return URLFetcherResponse(url, body=body, headers={"Content-Type": mime})
        if url.startswith("casefile:"):
            row = self.attachments.get(int(url[len("casefile:") :]))
            if row is None:
                raise ValueError(f"not in this file: {url}")
            body = content.read_stored(row.stored_name)
            return URLFetcherResponse(url, body=body, headers={"Content-Type": row.content_type})
        raise ValueError(f"refused: {url}")

    __call__ = fetch


def render_dossier(case: Case, *, user: User, now: dt.datetime) -> bytes:
    """The dossier PDF of `case` as `user` may see it (`casefiles.selectors.file_rights`)."""
    import pypdf
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    html, sections = dossier_html(case, user=user, now=now)
    rows = {s.attachment.pk: s.attachment for s in sections if s.attachment is not None}

    class Fetcher(URLFetcher):
        def fetch(self, url: str, headers: Any = None) -> Any:
            return _Fetcher(rows).fetch(url, headers)

    document = HTML(string=html, base_url="static:", url_fetcher=Fetcher()).render()
    # Which laid-out pages stand for which page of which PDF attachment.
    replace: dict[int, tuple[int, int]] = {}
    for i, page in enumerate(document.pages):
        for anchor in page.anchors:
            if anchor.startswith("pdfpage-"):
                _, att, k = anchor.split("-")
                replace[i] = (int(att), int(k))
    laid_out = pypdf.PdfReader(io.BytesIO(document.write_pdf()))
    if not replace:
        out = io.BytesIO()
        writer = pypdf.PdfWriter(clone_from=laid_out)
        writer.write(out)
        return out.getvalue()
    readers = {
        att: pypdf.PdfReader(io.BytesIO(content.read_stored(rows[att].stored_name)))
        for att in {a for a, _k in replace.values()}
    }
    writer = pypdf.PdfWriter()
    for i, page in enumerate(laid_out.pages):
        if i in replace:
            att, k = replace[i]
            source = readers[att]
            if k < len(source.pages):
                writer.add_page(source.pages[k])
                continue
        writer.add_page(page)
    writer.add_metadata({"/Title": f"卷宗 {case.number}"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
