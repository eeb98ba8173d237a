"""The dossier PDF's render time (issue 13 §5): a case file of about 40 pages, rendered by
`web.dossier.render_dossier` (WeasyPrint, then pypdf appending the PDF attachment).

The case (500,005, mediating, village 4 of the bench data) gets, through the services, 14
session records of about a page each, a 16-page PDF attachment and four photographs; then the
dossier is rendered `runs` times as the village mediator. Reported: pages, bytes, seconds.
"""

from __future__ import annotations

import datetime as dt
import io
import statistics
import time
from typing import Any

from bench.common import loadavg, log

CASE = 500_005
MEDIATOR = 10013  # b-v4-m1


def _pdf(pages: int) -> bytes:
    from weasyprint import HTML

    body = "".join(
        f'<h1 style="page-break-before: always">证据材料第{i + 1}页</h1><p>{"票据内容。" * 200}</p>'
        for i in range(pages)
    )
    return HTML(string=f"<html><body>{body}</body></html>").write_pdf()


def _png(colour: str) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (1600, 1200), colour).save(out, "PNG")
    return out.getvalue()


def prepare() -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from mediation.accounts.models import User
    from mediation.casefiles.models import Attachment, MediationSession
    from mediation.cases.services import case_service_action
    from mediation.core.clock import now as clock_now

    user = User.objects.get(pk=MEDIATOR)
    now = clock_now()
    if MediationSession.objects.filter(case_id=CASE).count() < 14:
        for i in range(14):
            case_service_action(
                case_id=CASE,
                name="record_session",
                actor=user,
                now=now,
                data={
                    "started_at": (now - dt.timedelta(days=14 - i)).strftime("%Y-%m-%dT%H:%M"),
                    "place": "村调委会调解室",
                    "mediators": "调解员甲、调解员乙",
                    "content": (
                        f"第{i + 1}次调解。申请人陈述：被申请人修建排水沟占用宅基地。"
                        "被申请人答辩：排水沟系按村规划修建。调解员释明相关法律规定。" * 12
                    ),
                },
            )
    if not Attachment.objects.filter(case_id=CASE).exists():
        files = [("证据.pdf", _pdf(16), "evidence")] + [
            (f"照片{i}.png", _png(c), "evidence")
            for i, c in enumerate(("#aa3333", "#33aa33", "#3333aa", "#aaaa33"))
        ]
        for name, data, doc_type in files:
            case_service_action(
                case_id=CASE,
                name="upload_attachment",
                actor=user,
                now=now,
                data={"doc_type": doc_type},
                files={"file": SimpleUploadedFile(name, data)},
            )


def run(*, scale: str, runs: int) -> dict[str, Any]:
    import pypdf

    from mediation.accounts.models import User
    from mediation.cases.models import Case
    from mediation.core.clock import now as clock_now
    from mediation.web.dossier import render_dossier

    prepare()
    user = User.objects.get(pk=MEDIATOR)
    case = Case.objects.get(pk=CASE).as_proxy()
    times, pages, size = [], 0, 0
    load = loadavg()
    for i in range(runs):
        t0 = time.perf_counter()
        pdf = render_dossier(case, user=user, now=clock_now())
        times.append(round(time.perf_counter() - t0, 2))
        pages = len(pypdf.PdfReader(io.BytesIO(pdf)).pages)
        size = len(pdf)
        log(f"dossier run {i + 1}/{runs}: {times[-1]} s, {pages} pages, {size} bytes")
    return {
        "scale": scale,
        "case": CASE,
        "pages": pages,
        "bytes": size,
        "seconds": times,
        "median_s": statistics.median(times),
        "load_before": load,
        "load_after": loadavg(),
    }
