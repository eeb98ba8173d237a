"""Revoking API tokens (django-rest-knox rows): logout everywhere, the management command,
and automatically when a user's password changes or the user is deactivated.

The automatic part is a pair of model signals on the user: the password hash and the
`is_active` flag are compared with the stored row before every save, and the tokens are
deleted after it, in the same transaction. Any code path that saves the user is covered: the
admin, `changepassword`, `set_password()` + `save()`. A bulk `QuerySet.update()` sends no
signal; call `tokens_revoke_for_user` after one.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save, pre_save
from knox.models import get_token_model

logger = logging.getLogger(__name__)


def tokens_revoke_for_user(*, user_id: int, reason: str) -> int:
    """Delete every API token of the user; returns how many there were."""
    deleted, _by_model = get_token_model().objects.filter(user_id=user_id).delete()
    if deleted:
        logger.info("revoked %d API token(s) of user %s: %s", deleted, user_id, reason)
    return deleted


def _remember_credentials(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    instance._api_revoke_reason = None
    if raw or instance.pk is None:
        return
    stored = sender.objects.filter(pk=instance.pk).values_list("password", "is_active").first()
    if stored is None:
        return
    password, was_active = stored
    if password != instance.password:
        instance._api_revoke_reason = "password changed"
    elif was_active and not instance.is_active:
        instance._api_revoke_reason = "user deactivated"


def _revoke_after_change(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    reason = getattr(instance, "_api_revoke_reason", None)
    if reason and not raw:
        tokens_revoke_for_user(user_id=instance.pk, reason=reason)
        instance._api_revoke_reason = None


def connect_signals() -> None:
    user_model = get_user_model()
    pre_save.connect(_remember_credentials, sender=user_model, dispatch_uid="api.tokens.remember")
    post_save.connect(_revoke_after_change, sender=user_model, dispatch_uid="api.tokens.revoke")
