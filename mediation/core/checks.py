"""System check: in production the application does not connect as a superuser or as the
owner of its tables (README "Security", docs/DEPLOY.md "Two database roles").

As that role, `SET session_replication_role = replica`, `ALTER TABLE … DISABLE TRIGGER` and
`TRUNCATE` would rewrite or erase the append-only audit tables. The check reads the database,
so like Django's own database checks it runs with `manage.py check --database default`,
`migrate`, and when the web process starts (mediation/wsgi.py). It is on under the production
settings (DATABASE_ROLE_CHECK); the compose `migrate` job, which must run as the owner,
turns it off.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, register
from django.core.checks import Warning as CheckWarning
from django.db import DatabaseError, connections

APPEND_ONLY_TABLES = ("cases_caseevent", "parties_idnumberreveallog")
HINT = (
    "Connect web, workers and beat as the application role (DATABASE_URL) and run migrate "
    "as the owner role (DATABASE_OWNER_URL); deploy/postgres/grants.psql sets the privileges."
)


def database_role_problems(alias: str = "default") -> list[CheckMessage]:
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return []
    out: list[CheckMessage] = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
        user, superuser = cursor.fetchone()
        if superuser:
            out.append(
                CheckWarning(
                    f"应用以超级用户 {user} 连接数据库：可关闭触发器、清空审计表。"
                    f" / The application connects to PostgreSQL as superuser {user!r}: it could "
                    "disable triggers and erase the append-only audit tables.",
                    hint=HINT,
                    id="core.W001",
                )
            )
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tableowner = current_user AND tablename = ANY(%s)",
            [list(APPEND_ONLY_TABLES)],
        )
        owned = sorted(row[0] for row in cursor.fetchall())
        if owned:
            out.append(
                CheckWarning(
                    f"应用以数据表所有者 {user} 连接数据库（{', '.join(owned)}）。"
                    f" / The application connects as {user!r}, the owner of {', '.join(owned)}: "
                    "it could ALTER TABLE … DISABLE TRIGGER or TRUNCATE them.",
                    hint=HINT,
                    id="core.W002",
                )
            )
        elif not superuser:
            cursor.execute(
                "SELECT t FROM unnest(%s::text[]) AS t WHERE to_regclass(t) IS NOT NULL AND ("
                "has_table_privilege(t, 'UPDATE') OR has_table_privilege(t, 'DELETE') "
                "OR has_table_privilege(t, 'TRUNCATE'))",
                [list(APPEND_ONLY_TABLES)],
            )
            writable = sorted(row[0] for row in cursor.fetchall())
            if writable:
                out.append(
                    CheckWarning(
                        f"应用角色 {user} 对只追加的表仍有 UPDATE/DELETE/TRUNCATE 权限"
                        f"（{', '.join(writable)}）。 / Role {user!r} still holds UPDATE, "
                        f"DELETE or TRUNCATE on append-only tables: {', '.join(writable)}.",
                        hint=HINT,
                        id="core.W003",
                    )
                )
    return out


@register(Tags.database)
def check_database_role(
    app_configs: Sequence[Any] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    if not getattr(settings, "DATABASE_ROLE_CHECK", False):
        return []
    if not databases or "default" not in databases:
        return []
    try:
        return database_role_problems("default")
    except DatabaseError:
        return []  # an unreachable database is reported by everything else
