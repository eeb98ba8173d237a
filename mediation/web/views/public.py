"""The people's own door (`/public/`): apply for mediation, follow progress with the 查询码,
rate the outcome. No login; the same CSP as the staff pages (no inline script); mobile-first
templates (`web/public/`).

A successful look-up is remembered in the session for `TRACK_SESSION_SECONDS` (the case page
and the rating form read it there); nothing else about the visitor is kept in it.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from mediation.core.client_ip import client_ip
from mediation.core.errors import Conflict, InvalidInput, NotFound
from mediation.public import selectors, services
from mediation.web.forms import PublicApplicationForm, PublicRatingForm, PublicTrackForm
from mediation.web.views.common import RequestClock

SESSION_KEY = "public_track"
TRACK_SESSION_SECONDS = 30 * 60


def _throttled(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "web/public/throttled.html", {"message": message}, status=429)


@never_cache
def public_home(request: HttpRequest) -> HttpResponse:
    return render(request, "web/public/home.html", {})


@never_cache
@require_http_methods(["GET", "POST"])
def public_apply(request: HttpRequest) -> HttpResponse:
    """申请调解: the privacy notice first (PIPL Arts 34–35), then the form."""
    rc = RequestClock()
    agencies = services.intake_agencies()
    if request.method == "GET" and request.GET.get("step") != "form":
        return render(
            request,
            "web/public/notice.html",
            {"version": settings.PUBLIC_PRIVACY_NOTICE_VERSION},
        )
    form = PublicApplicationForm(
        request.POST if request.method == "POST" else None, today=rc.today, agencies=agencies
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        applicant = data["applicant"]
        other = data.get("other")
        submission = services.ApplicationInput(
            applicant=services.PartyDetails(
                name=applicant["name"],
                phone=applicant["phone"],
                id_number=applicant["id_number"],
                address=applicant.get("address", ""),
            ),
            others=[
                services.PartyDetails(
                    name=other["name"],
                    phone=other.get("phone", ""),
                    id_number=other.get("id_number", ""),
                    address=other.get("address", ""),
                )
            ]
            if other
            else [],
            intake_agency_id=data["intake_agency"].pk,
            place=data["place"],
            category_id=data["category"].pk,
            summary=data["summary"],
            requests=data["requests"],
            sms_consent=bool(data.get("sms_consent")),
            privacy_accepted=bool(data.get("privacy")),
            privacy_version=settings.PUBLIC_PRIVACY_NOTICE_VERSION,
        )
        try:
            done = services.application_submit(
                data=submission, client_address=client_ip(request), now=rc.now
            )
        except services.Throttled as exc:
            return _throttled(request, exc.message)
        except (InvalidInput, Conflict) as exc:
            form.add_error(None, exc.message)
        else:
            return render(
                request,
                "web/public/applied.html",
                {
                    "number": done.case.number,
                    "code": done.lookup_code,
                    "sms": done.sms,
                    "agency": data["intake_agency"].name,
                },
            )
    return render(request, "web/public/apply.html", {"form": form})


@never_cache
@require_http_methods(["GET", "POST"])
def public_track(request: HttpRequest) -> HttpResponse:
    """查询: the 查询码 plus the last four digits of the phone given at registration."""
    rc = RequestClock()
    form = PublicTrackForm()
    failed = False
    if request.method == "POST":
        # The look-up runs (and is limited, timed and logged) even when the form is invalid:
        # a malformed code is one more wrong code, with the same answer.
        code = request.POST.get("code", "")[:64]
        last4 = request.POST.get("phone_last4", "")[:8]
        try:
            found = services.public_lookup(
                code=code, phone_last4=last4, client_address=client_ip(request), now=rc.now
            )
        except services.Throttled as exc:
            return _throttled(request, exc.message)
        if found is not None:
            request.session.cycle_key()
            request.session[SESSION_KEY] = {"case": found.case_id, "party": found.party_id}
            request.session.set_expiry(TRACK_SESSION_SECONDS)
            return redirect("web:public_case")
        failed = True  # one answer for a wrong code, a wrong phone and a malformed input
    return render(
        request,
        "web/public/track.html",
        {
            "form": form,
            "failed": failed,
            "message": _("查询码或手机号后四位不正确，请核对后重试。"),
        },
    )


def _tracked(request: HttpRequest) -> tuple[int, int] | None:
    value = request.session.get(SESSION_KEY)
    if not isinstance(value, dict):
        return None
    case_id, party_id = value.get("case"), value.get("party")
    if not isinstance(case_id, int) or not isinstance(party_id, int):
        return None
    if selectors.public_party_for(case_id=case_id, party_id=party_id) is None:
        return None
    return case_id, party_id


@never_cache
@require_http_methods(["GET", "POST"])
def public_case(request: HttpRequest) -> HttpResponse:
    """The public timeline of the case found by the look-up, and its rating form."""
    tracked = _tracked(request)
    if tracked is None:
        return redirect("web:public_track")
    rc = RequestClock()
    case_id, party_id = tracked
    form = PublicRatingForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.rating_submit(
                case_id=case_id,
                party_id=party_id,
                value=form.cleaned_data["value"],
                comment=form.cleaned_data.get("comment", ""),
                now=rc.now,
            )
        except (InvalidInput, Conflict, NotFound) as exc:
            form.add_error(None, exc.message)
        else:
            return redirect(f"{request.path}?rated=1")
    view = selectors.public_view(case_id=case_id, party_id=party_id, now=rc.now)
    if request.method == "GET" and view.rating is not None:
        form = PublicRatingForm(
            initial={"value": view.rating.value, "comment": view.rating.comment}
        )
    return render(
        request,
        "web/public/case.html",
        {"view": view, "form": form, "rated": request.GET.get("rated") == "1"},
    )


@never_cache
@require_http_methods(["POST"])
def public_track_end(request: HttpRequest) -> HttpResponse:
    request.session.pop(SESSION_KEY, None)
    return redirect("web:public_track")
