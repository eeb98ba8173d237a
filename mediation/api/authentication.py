"""API tokens: django-rest-knox (hashed at rest, one per login, with a lifetime), and the
authentication class that reads them.

Knox stores only a SHA-512 digest of each token; the plain token is shown once, in the login
response. Every login issues a new token valid for `REST_KNOX["TOKEN_TTL"]` (API_TOKEN_TTL_HOURS,
8 h by default, the session's length); logout deletes it, logout-everywhere and
`manage.py revoke_tokens` delete all of a user's tokens, and so do a password change and a
deactivation (`mediation.api.tokens`).

Every case request asks for the user's scope (`scope_agency_ids`), which needs the agency, so
the token's user is read with the agency in the same query. A header that is not text (bytes
that are not UTF-8) is an authentication failure, not a server error.
"""

from __future__ import annotations

from hmac import compare_digest
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox import auth as knox_auth
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS
from knox.signals import token_expired
from rest_framework import exceptions


class TokenAuthentication(knox_auth.TokenAuthentication):
    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        try:
            return super().authenticate(request)
        except UnicodeError:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None

    def authenticate_credentials(self, token: bytes) -> tuple[Any, Any]:
        """knox's look-up (by the first characters, then a constant-time digest comparison;
        an expired token is deleted on the way), reading the user's agency in the same query."""
        text = token.decode("utf-8")
        if not text.isascii() or not text.isalnum() or len(text) > 200:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        digest = hash_token(text)
        candidates = (
            get_token_model()
            .objects.filter(token_key=text[: CONSTANTS.TOKEN_KEY_LENGTH])
            .select_related("user", "user__agency")
        )
        for auth_token in candidates:
            if self._cleanup_token(auth_token):
                continue
            if compare_digest(digest, auth_token.digest):
                return self.validate_user(auth_token)
        raise exceptions.AuthenticationFailed(_("Invalid token."))

    def _cleanup_token(self, auth_token: Any) -> bool:
        """Whether this token has expired (then deleted). knox's own version also reads every
        other token of the user on every request to delete the expired ones: one more query
        per API call. Those are deleted at login instead (`TokenLoginView`), and an expired
        token cannot authenticate in any case (this check)."""
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            username = auth_token.user.get_username()
            auth_token.delete()
            token_expired.send(sender=self.__class__, username=username, source="auth_token")
            return True
        return False


class TokenScheme(OpenApiAuthenticationExtension):
    """The API's security scheme in the OpenAPI schema (and the Swagger UI's Authorize box)."""

    target_class = "mediation.api.authentication.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                'POST /api/auth/token/ with {"username", "password"} returns '
                '{"token", "expiry"}; send it as `Authorization: Token <token>`. '
                "A token lasts 8 hours by default (API_TOKEN_TTL_HOURS); POST "
                "/api/auth/logout/ revokes it, /api/auth/logout-all/ revokes every token of "
                "the user. 在 Swagger UI 中点击 Authorize，填入 `Token <token>`。"
            ),
        }
