"""Request and response rules that hold for every page, the admin and the API alike.

- `RejectControlCharactersMiddleware`: the ONE place where NUL and other control characters
  are refused (mediation/core/text.py), for the query string, the form fields and JSON bodies
  of every request: 400, in the API's error shape under /api/, a short page elsewhere.
  PostgreSQL cannot store NUL in text (a DataError, a 500), and views that read request.POST
  directly (escalation actions, 访调对接, `?q=`) never see one now.
- `SecurityHeadersMiddleware`: `Permissions-Policy` (PERMISSIONS_POLICY). The
  Content-Security-Policy is django-csp's middleware; Referrer-Policy is Django's
  SecurityMiddleware (SECURE_REFERRER_POLICY).
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from mediation.core.text import control_character_in, describe

JSON_TYPES = ("application/json",)


def _offending_field(request: HttpRequest) -> tuple[str, str] | None:
    for name, values in request.GET.lists():
        ch = control_character_in(values)
        if ch:
            return name, ch
    content_type = (request.content_type or "").lower()
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        form = content_type in ("application/x-www-form-urlencoded", "multipart/form-data")
        # Not under /api/: reading request.POST here would consume the body before DRF's
        # parsers (which refuse form bodies with 415, and check NUL in their own fields).
        if form and not request.path.startswith("/api/"):
            for name, values in request.POST.lists():
                ch = control_character_in(values)
                if ch:
                    return name, ch
        elif content_type in JSON_TYPES or content_type.endswith("+json"):
            try:
                data = json.loads(request.body or b"null")
            except (ValueError, UnicodeDecodeError, RecursionError):
                return None  # the parser answers 400 parse_error
            if isinstance(data, dict):
                for name, value in data.items():
                    ch = control_character_in(value)
                    if ch:
                        return str(name), ch
            else:
                ch = control_character_in(data)
                if ch:
                    return "non_field_errors", ch
    return None


class RejectControlCharactersMiddleware:
    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        # After CsrfViewMiddleware.process_view: a forged POST is refused as such first.
        found = _offending_field(request)
        if found is None:
            return None
        field, ch = found
        reason = _("不能包含控制字符（%(char)s）。") % {"char": describe(ch)}
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse(
                {"code": "invalid", "message": _("提交的信息有误。"), "details": {field: [reason]}},
                status=400,
                json_dumps_params={"ensure_ascii": False},
            )
            response["Cache-Control"] = "no-store"
            return response
        body = render_to_string("400.html", {"reason": reason}, request=request)
        return HttpResponse(body, status=400)


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = getattr(settings, "PERMISSIONS_POLICY", "")
        if policy and "Permissions-Policy" not in response:
            response["Permissions-Policy"] = policy
        return response
