"""Phone numbers on the case page: shown 138****1234, the full number after a logged reveal
(DOMAIN.md §5), like ID numbers but without a special permission (staff call parties)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from mediation.cases.models import CaseParty
from mediation.cases.selectors import identity_hidden_from
from mediation.core.errors import InvalidInput, NotFound, PermissionDenied
from mediation.parties.services import party_reveal_phone as reveal_service
from mediation.web.forms import PhoneRevealForm
from mediation.web.views.cases import case_page_context
from mediation.web.views.common import RequestClock, visible_case_or_404


@never_cache
@login_required
@require_POST
def party_reveal_phone(request: HttpRequest, pk: int, party_pk: int) -> HttpResponse:
    rc = RequestClock()
    case = visible_case_or_404(request, pk)
    if not CaseParty.objects.filter(case=case, party_id=party_pk).exists():
        raise Http404
    if identity_hidden_from(request.user, case):
        raise Http404
    form = PhoneRevealForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("查看完整电话号码须填写用途。"))
        return redirect("web:case_detail", pk=pk)
    try:
        phone = reveal_service(
            party_id=party_pk,
            viewer=request.user,
            purpose=form.cleaned_data["purpose"],
            context=f"case:{case.pk}",
            now=rc.now,
        )
    except (PermissionDenied, InvalidInput, NotFound) as exc:
        messages.error(request, exc.message)
        return redirect("web:case_detail", pk=pk)
    messages.info(request, _("已记录本次查看：用途“%(purpose)s”。") % form.cleaned_data)
    context = case_page_context(request, case, rc, revealed_phones={party_pk: phone})
    return render(request, "web/cases/detail.html", context)
