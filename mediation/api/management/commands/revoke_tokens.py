"""`manage.py revoke_tokens USERNAME [USERNAME ...]`: delete every API token of these users.

For a lost laptop or a leaked token: the user signs in again to get a new one. Exit status 0
when every name was found (also when a user had no token), 2 with a message on stderr for an
unknown username (nothing is revoked then) or no username at all.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from mediation.api.tokens import tokens_revoke_for_user


class Command(BaseCommand):
    help = "注销指定用户的全部 API 令牌 / revoke every API token of the given users"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("usernames", nargs="+", metavar="USERNAME")

    def handle(self, *args: Any, usernames: list[str], **options: Any) -> None:
        model = get_user_model()
        users = {u.get_username(): u for u in model.objects.filter(**{"username__in": usernames})}
        unknown = [name for name in usernames if name not in users]
        if unknown:
            raise CommandError(f"用户不存在 / no such user: {', '.join(unknown)}", returncode=2)
        with transaction.atomic():
            for name in usernames:
                count = tokens_revoke_for_user(user_id=users[name].pk, reason="revoke_tokens")
                self.stdout.write(f"{name}: 已注销 {count} 个令牌 / {count} token(s) revoked")
