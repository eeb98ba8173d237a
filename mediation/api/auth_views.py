"""Token login and logout (django-rest-knox tokens; mediation/api/authentication.py).

    POST /api/auth/token/        {"username", "password"} → {"token", "expiry"}   (no auth)
    POST /api/auth/logout/       revokes the token sent with the request           (204)
    POST /api/auth/logout-all/   revokes every token of the user                   (204)

The login goes through `django.contrib.auth.authenticate` with the request, so django-axes
counts and locks out failures exactly as on the web login. Errors keep the API's shape
(mediation/api/errors.py).
"""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from knox.models import get_token_model
from knox.settings import knox_settings
from rest_framework import serializers, status
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mediation.api.authentication import TokenAuthentication
from mediation.api.parsers import StrictJSONParser
from mediation.api.serializers import ErrorSerializer
from mediation.api.strict import StrictTypesMixin
from mediation.api.tokens import tokens_revoke_for_user

# axes' access-attempt table keeps usernames in a varchar(255); longer ones are not usernames.
USERNAME_MAX_LENGTH = 150
PASSWORD_MAX_LENGTH = 4096


class LoginSerializer(StrictTypesMixin, AuthTokenSerializer):
    username = serializers.CharField(
        label=_("Username"), max_length=USERNAME_MAX_LENGTH, write_only=True
    )
    password = serializers.CharField(
        label=_("Password"),
        style={"input_type": "password"},
        trim_whitespace=False,
        max_length=PASSWORD_MAX_LENGTH,
        write_only=True,
    )
    token = serializers.CharField(read_only=True)


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="在请求头中发送：Authorization: Token <token>")
    expiry = serializers.DateTimeField(help_text="失效时间（默认签发后 8 小时）")


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(ErrorSerializer) for code in codes}


class TokenLoginView(APIView):
    authentication_classes: tuple = ()
    permission_classes = (AllowAny,)
    parser_classes = (StrictJSONParser, FormParser)
    serializer_class = LoginSerializer

    @extend_schema(
        operation_id="auth_token_create",
        summary="登录：以用户名和密码换取新的 API 令牌",
        request=LoginSerializer,
        responses={200: TokenResponseSerializer, **_errors(400, 403, 415, 429)},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        # The Django request, not DRF's wrapper: django-axes marks a lockout on the request it
        # is given, and its middleware looks for the mark on the Django request.
        body = LoginSerializer(data=request.data, context={"request": request._request})
        body.is_valid(raise_exception=True)
        user = body.validated_data["user"]
        # The user's expired tokens go now (authentication only checks the token it is given).
        get_token_model().objects.filter(user=user, expiry__lt=timezone.now()).delete()
        instance, token = get_token_model().objects.create(
            user=user, expiry=knox_settings.TOKEN_TTL
        )
        user_logged_in.send(sender=user.__class__, request=request._request, user=user)
        data = TokenResponseSerializer({"token": token, "expiry": instance.expiry}).data
        return Response(data)


class TokenLogoutView(APIView):
    authentication_classes = (TokenAuthentication,)
    permission_classes = (IsAuthenticated,)

    @extend_schema(
        operation_id="auth_logout",
        summary="注销本令牌",
        request=None,
        responses={204: None, **_errors(401)},
    )
    def post(self, request: Request) -> Response:
        request.auth.delete()
        user_logged_out.send(
            sender=request.user.__class__, request=request._request, user=request.user
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenLogoutAllView(APIView):
    authentication_classes = (TokenAuthentication,)
    permission_classes = (IsAuthenticated,)

    @extend_schema(
        operation_id="auth_logout_all",
        summary="注销本人的全部令牌（所有设备）",
        request=None,
        responses={204: None, **_errors(401)},
    )
    def post(self, request: Request) -> Response:
        tokens_revoke_for_user(user_id=request.user.pk, reason="logout everywhere")
        user_logged_out.send(
            sender=request.user.__class__, request=request._request, user=request.user
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
