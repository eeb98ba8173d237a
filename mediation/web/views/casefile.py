"""The case file on the web: its actions (upload, withdraw, sessions, visits, oral agreements),
downloads through the case access rule, the documents of the registry and the dossier PDF."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from mediation.casefiles import content
from mediation.casefiles.selectors import attachment_get_for, file_rights
from mediation.casefiles.services import file_access_log
from mediation.cases import selectors as case_selectors
from mediation.cases import services, workflow
from mediation.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from mediation.web import documents
from mediation.web.documents import chinese_document
from mediation.web.views.cases import case_page_context, step_form
from mediation.web.views.common import RequestClock, visible_case_or_404


@never_cache
@login_required
@require_POST
def case_file_act(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    rc = RequestClock()
    case = visible_case_or_404(request, pk)
    act = workflow.action(case.kind, name)
    if act is None or act.transition or act.states is None:
        raise Http404
    try:
        services.case_service_action(
            case_id=case.pk,
            name=name,
            actor=request.user,
            now=rc.now,
            data=request.POST,
            files=request.FILES,
        )
    except InvalidInput as exc:
        form = step_form(case, request.user, name, rc, data=request.POST, files=request.FILES)
        form.is_valid()
        messages.error(request, exc.message)
        context = case_page_context(request, case, rc, bound=(name, form))
        return render(request, "web/cases/detail.html", context, status=400)
    except (Conflict, PermissionDenied, NotFound) as exc:
        messages.error(request, exc.message)
        return redirect("web:case_detail", pk=pk)
    messages.success(
        request, _("已完成：%(action)s") % {"action": services.transition_label(case, name)}
    )
    return redirect("web:case_detail", pk=pk)


@never_cache
@login_required
def attachment_download(request: HttpRequest, pk: int, attachment_pk: int) -> HttpResponse:
    """A file of the case file, only through the case access rule; every download logged."""
    rc = RequestClock()
    case = visible_case_or_404(request, pk)
    row = attachment_get_for(request.user, case, attachment_pk)
    if row is None:
        raise Http404
    handle = content.open_stored(row.stored_name)
    file_access_log(user=request.user, case=case, now=rc.now, attachment=row)
    response = FileResponse(
        handle, as_attachment=True, filename=row.original_name, content_type=row.content_type
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@never_cache
@login_required
@chinese_document
def print_document(request: HttpRequest, pk: int, slug: str) -> HttpResponse:
    """A document of the registry (`web.documents.SPECS`), print-ready on A4, in Chinese."""
    case = visible_case_or_404(request, pk)
    spec = documents.SPEC.get(slug)
    if spec is None or slug in ("agreement", "acceptance_notice"):
        raise Http404
    access = case_selectors.case_access(request.user, case)
    of = request.GET.get("of", "")
    check = of if slug == "service_receipt" else slug
    check_spec = documents.SPEC.get(check)
    if check_spec is None or (slug == "service_receipt" and not check_spec.served):
        raise Http404
    if not documents.may_print(check_spec, access) or not documents.may_print(spec, access):
        raise Http404
    if not documents.document_available(case, check):
        raise Http404
    hidden = case_selectors.identity_hidden_from(request.user, case)
    doc = documents.build_document(case, slug, hidden=hidden, of=of)
    return render(request, "web/docs/generic.html", {"doc": doc, "case": case})


@never_cache
@login_required
def dossier_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    """The whole case file as one PDF (卷宗, DOMAIN.md §3.3 order), through the access rule and
    logged like a download."""
    from mediation.web.dossier import render_dossier

    rc = RequestClock()
    case = visible_case_or_404(request, pk)
    if not file_rights(request.user, case).dossier:
        raise Http404
    pdf = render_dossier(case, user=request.user, now=rc.now)
    file_access_log(user=request.user, case=case, now=rc.now)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="dossier-{case.pk}.pdf"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
