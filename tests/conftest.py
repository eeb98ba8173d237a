"""Shared fixtures: a fixed `now` (no random dates that straddle a deadline)."""

from __future__ import annotations

import datetime as dt
import importlib

import pytest
from django.db.backends.postgresql.operations import DatabaseOperations

from mediation.core.clock import SHANGHAI


@pytest.fixture(scope="session", autouse=True)
def _flush_past_the_truncate_guards():
    """Transactional tests end with a flush (one TRUNCATE of every table), which the
    append-only tables' statement triggers refuse (cases.0010, parties.0004). The test role is
    a superuser: in `replica` mode ordinary triggers do not fire, for this transaction only.
    Production roles cannot do this (tests/integration/test_database_roles.py)."""
    original = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        sql = original(
            self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
        return ["SET LOCAL session_replication_role = replica", *sql] if sql else sql

    DatabaseOperations.sql_flush = sql_flush
    yield
    DatabaseOperations.sql_flush = original


@pytest.fixture
def now() -> dt.datetime:
    """Wednesday 2026-03-11 10:00 Asia/Shanghai: an ordinary working day."""
    return dt.datetime(2026, 3, 11, 10, 0, tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def _reference_data_in_transactional_tests(request: pytest.FixtureRequest) -> None:
    """Transactional tests start after a flush, which removes the categories and channels
    that migration 0003 seeds; put them back (idempotently) so every test sees the same data."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction"):
        return
    request.getfixturevalue("transactional_db")
    from django.apps import apps

    seed = importlib.import_module("mediation.cases.migrations.0003_seed_categories_channels")
    seed.seed(apps, None)
