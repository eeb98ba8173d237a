"""Database helpers shared by the set-based engine code (sweeps, outbox, delivery)."""

from __future__ import annotations

import functools
from typing import Any

from django.db import connection


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def bulk_cursor() -> Any:
    """A cursor on the default connection that binds parameters server-side (PostgreSQL).

    Django's psycopg cursors bind client-side: every element of a parameter array is quoted
    into the SQL text, which for the outbox statements (thousands of Chinese texts per batch)
    cost more client time than the server spent inserting (BENCHMARKS.md, sweep). With this
    cursor `%b` parameters travel in the binary protocol, unquoted. Statements are never
    prepared: a generic plan must not replace the planner's view of each batch. The cursor
    goes through Django's wrappers, so query capture and `execute_wrapper` still see it.
    """
    connection.ensure_connection()
    return connection._prepare_cursor(_unprepared_cursor_class()(connection.connection))


@functools.cache
def _unprepared_cursor_class() -> type:
    from django.db.backends.postgresql.base import ServerBindingCursor

    class UnpreparedCursor(ServerBindingCursor):
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            kwargs["prepare"] = False
            return super().execute(query, params, **kwargs)

    return UnpreparedCursor
