"""The API's one exception handler: every error is `{"code": ..., "message": ..., "details": {}}`.

`code` is stable (clients branch on it); `message` is in the request's language (zh-hans by
default, English with `Accept-Language: en`, via LocaleMiddleware and gettext).

| status | code |
|---|---|
| 400 | invalid (bad field values, unknown filter values), parse_error (malformed JSON) |
| 401 | not_authenticated, authentication_failed |
| 403 | permission_denied (the case is visible but the role may not act) |
| 404 | not_found (also: a case outside the user's scope, so existence does not leak) |
| 405 | method_not_allowed |
| 406 | not_acceptable |
| 409 | transition_not_allowed, stale, concurrent, conflict |
| 415 | unsupported_media_type |
| 429 | throttled |

Anything else is not handled here: an unexpected exception is a 500 and a bug.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from mediation.core.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied

DOMAIN_STATUS: tuple[tuple[type[DomainError], int], ...] = (
    (InvalidInput, status.HTTP_400_BAD_REQUEST),
    (PermissionDenied, status.HTTP_403_FORBIDDEN),
    (NotFound, status.HTTP_404_NOT_FOUND),
    (Conflict, status.HTTP_409_CONFLICT),
)

# One generic message per code: used for framework errors, and for domain errors whose
# message has no translation into the requested language.
MESSAGES: dict[str, Any] = {
    "invalid": _("提交的信息有误。"),
    "parse_error": _("请求内容不是有效的 JSON。"),
    "not_authenticated": _("请先登录。"),
    "authentication_failed": _("身份认证失败。"),
    "permission_denied": _("您无权执行此操作。"),
    "not_found": _("未找到。"),
    "method_not_allowed": _("不支持该请求方法。"),
    "not_acceptable": _("无法提供所请求的响应格式。"),
    "unsupported_media_type": _("不支持的请求内容类型，请使用 application/json。"),
    "throttled": _("请求过于频繁，请稍后再试。"),
    "conflict": _("操作与案件当前状态冲突。"),
    "transition_not_allowed": _("案件当前状态不能执行该操作。"),
    "stale": _("案件已被他人更新，请刷新后重试。"),
    "concurrent": _("案件已被他人同时处理，请刷新后重试。"),
    "error": _("请求无法完成。"),
}

_CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef\u3000-\u303f]")


def _message_for(code: str, message: str | None = None) -> str:
    """The message in the active language; the code's generic one if `message` has none."""
    if message:
        translated = gettext(message)
        language = translation.get_language() or ""
        if language.startswith("zh") or not _CJK.search(translated):
            return translated
    return str(MESSAGES.get(code, MESSAGES["error"]))


def error_body(code: str, message: str | None = None, details: Any = None) -> dict[str, Any]:
    if details is None:
        details = {}
    elif not isinstance(details, dict):
        details = {"non_field_errors": details if isinstance(details, list) else [details]}
    return {"code": code, "message": _message_for(code, message), "details": details}


def _domain_status(exc: DomainError) -> int:
    for cls, code in DOMAIN_STATUS:
        if isinstance(exc, cls):
            return code
    return status.HTTP_400_BAD_REQUEST


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF `EXCEPTION_HANDLER`: DomainError, DRF and Django exceptions → one JSON shape."""
    if isinstance(exc, DomainError):
        set_rollback()
        return Response(error_body(exc.code, exc.message, exc.details), status=_domain_status(exc))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None

    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    code = exc.default_code
    details: Any = None
    if isinstance(exc, exceptions.ValidationError):
        code = "invalid"
        details = exc.detail
    elif isinstance(exc, exceptions.ParseError):
        details = {"body": [str(exc.detail)]}
    elif isinstance(exc, exceptions.PermissionDenied) and exc.detail != exc.default_detail:
        details = {"reason": [str(exc.detail)]}  # e.g. "CSRF Failed: ..." for sessions
    elif isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        headers["Retry-After"] = str(int(exc.wait))
        details = {"retry_after": int(exc.wait)}
    if code not in MESSAGES:
        code = "error"
    set_rollback()
    return Response(error_body(code, None, details), status=exc.status_code, headers=headers)


def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Catch-all for unknown paths under /api/: the same error shape as every other 404."""
    response = JsonResponse(
        error_body("not_found"),
        status=status.HTTP_404_NOT_FOUND,
        json_dumps_params={"ensure_ascii": False},
    )
    response["Cache-Control"] = "no-store"
    return response
