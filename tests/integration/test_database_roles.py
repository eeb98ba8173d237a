"""The audit trail cannot be rewritten by the role production runs as (issue 11, part 1).

Real PostgreSQL roles on the test server (trust authentication; the test role is a
superuser that owns the test database's tables, as the owner role does in production). The
application role is created here and given exactly what deploy/postgres/grants.psql gives it
(the file itself, run with psql). Then, as that role:

- UPDATE, DELETE, TRUNCATE, ALTER TABLE … DISABLE TRIGGER and SET session_replication_role on
  both append-only tables all fail, also after a careless GRANT ALL;
- the normal flows work: a registration and a transition, an ID-number reveal, a sweep, the
  statistics refresh;
- the system check warns for the superuser and the owner, and is quiet for the app role.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.db import connection, connections
from django.test import override_settings

from mediation.accounts.models import Role
from mediation.cases.models import CaseEvent, CaseParty
from mediation.cases.services import case_transition
from mediation.core.checks import check_database_role
from mediation.escalation.models import Escalation
from mediation.escalation.sweeps import sweep_run
from mediation.parties.models import IdNumberRevealLog
from mediation.parties.services import party_reveal_id_number
from mediation.reports.services import stats_refresh
from tests.factories.accounts import staff
from tests.factories.agencies import township_tree
from tests.factories.cases import register_dispute
from tests.integration.api.conftest import grant_reveal

pytestmark = pytest.mark.django_db(transaction=True)

REPO_ROOT = Path(__file__).resolve().parents[2]
GRANTS = REPO_ROOT / "deploy" / "postgres" / "grants.psql"
TABLES = ("cases_caseevent", "parties_idnumberreveallog")


def _dsn(user: str | None = None) -> str:
    params = connection.get_connection_params()
    parts = {
        "host": params.get("host") or "127.0.0.1",
        "port": params.get("port") or 5432,
        "dbname": connection.settings_dict["NAME"],
        "user": user or params.get("user") or "root",
    }
    return " ".join(f"{k}={v}" for k, v in parts.items())


@pytest.fixture
def app_role() -> Iterator[str]:
    """A login role with grants.psql's privileges only, dropped afterwards."""
    name = f"{connection.settings_dict['NAME']}_app"[:60]
    owner = connection.settings_dict.get("USER") or "root"
    with psycopg.connect(_dsn(), autocommit=True) as admin:
        admin.execute(f'DROP OWNED BY "{name}"') if _role_exists(admin, name) else None
        admin.execute(f'DROP ROLE IF EXISTS "{name}"')
        admin.execute(f'CREATE ROLE "{name}" LOGIN NOSUPERUSER NOINHERIT')
    params = connection.get_connection_params()
    env = {
        **os.environ,
        "PGHOST": str(params.get("host") or "127.0.0.1"),
        "PGPORT": str(params.get("port") or 5432),
        "PGUSER": owner,
        "PGDATABASE": connection.settings_dict["NAME"],
    }
    subprocess.run(
        [
            *("psql", "-X", "-q", "-v", f"owner={owner}", "-v", f"app={name}"),
            *("-v", f"dbname={connection.settings_dict['NAME']}", "-f", str(GRANTS)),
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        yield name
    finally:
        connections.close_all()
        with psycopg.connect(_dsn(), autocommit=True) as admin:
            admin.execute(f'DROP OWNED BY "{name}"')
            admin.execute(f'DROP ROLE IF EXISTS "{name}"')


def _role_exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name]).fetchone() is not None


@contextlib.contextmanager
def django_connects_as(role: str) -> Iterator[None]:
    """Every Django connection (this thread's and the sweep's extra ones) as `role`."""
    connections.close_all()
    settings_dict = connection.settings_dict
    previous = settings_dict.get("USER")
    settings_dict["USER"] = role
    try:
        yield
    finally:
        connections.close_all()
        settings_dict["USER"] = previous


@pytest.fixture
def history(now) -> dict[str, int]:
    """A case with events and a party with an ID number, and one reveal logged."""
    township = township_tree()
    case = register_dispute(township, now=now)
    supervisor = grant_reveal(staff(township.centre, Role.SUPERVISOR))
    party = CaseParty.objects.filter(case=case).exclude(party__id_number_encrypted="").first()
    party_reveal_id_number(
        party_id=party.party_id, viewer=supervisor, purpose="核对", context="test", now=now
    )
    return {"case": case.pk, "party": party.party_id}


REWRITES = [
    "UPDATE {table} SET id = id",
    "DELETE FROM {table}",
    "TRUNCATE {table}",
    "ALTER TABLE {table} DISABLE TRIGGER ALL",
    "ALTER TABLE {table} DISABLE TRIGGER USER",
]


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("statement", REWRITES)
def test_the_app_role_cannot_rewrite_the_audit_tables(app_role, history, table, statement):
    with psycopg.connect(_dsn(app_role), autocommit=True) as app:
        before = app.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        assert before > 0

        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(statement.format(table=table))

        assert app.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == before


@pytest.mark.parametrize("scope", ["SET", "SET LOCAL", "SET SESSION"])
def test_the_app_role_cannot_switch_triggers_off(app_role, history, scope):
    with psycopg.connect(_dsn(app_role)) as app:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(f"{scope} session_replication_role = replica")
        app.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("SELECT set_config('session_replication_role', 'replica', true)")


@pytest.mark.parametrize("table", TABLES)
def test_even_a_careless_grant_all_leaves_the_tables_append_only(app_role, history, table):
    with psycopg.connect(_dsn(), autocommit=True) as admin:
        admin.execute(f'GRANT ALL ON {table} TO "{app_role}"')

    with psycopg.connect(_dsn(app_role), autocommit=True) as app:
        for statement in REWRITES[:3]:
            # The triggers' own errors (0002's reveal-log trigger raises a plain exception).
            with pytest.raises(
                (psycopg.errors.InsufficientPrivilege, psycopg.errors.RaiseException)
            ) as refused:
                app.execute(statement.format(table=table))
            assert "append-only" in str(refused.value)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # still not the owner
            app.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")


@pytest.mark.parametrize("table", TABLES)
def test_truncate_is_refused_even_for_the_owner(history, table):
    with psycopg.connect(_dsn(), autocommit=True) as owner:
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
            owner.execute(f"TRUNCATE {table} CASCADE")

        assert "append-only (TRUNCATE refused)" in str(refused.value)


def test_the_normal_flows_work_as_the_app_role(app_role, history, now):
    township = township_tree()
    later = now + dt.timedelta(days=40)

    with django_connects_as(app_role):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == app_role
        # registration and a transition (events appended, clocks reconciled)
        case = register_dispute(township, now=now)
        supervisor = staff(township.centre, Role.SUPERVISOR)
        case = case_transition(
            case_id=case.pk,
            transition="triage",
            actor=supervisor,
            now=now,
            data={"risk_level": "low"},
            expected_version=case.version,
        )
        # an ID-number reveal (a row in the append-only log)
        revealer = grant_reveal(staff(township.centre, Role.SUPERVISOR, n=1))
        party = CaseParty.objects.filter(case=case).exclude(party__id_number_encrypted="").first()
        number = party_reveal_id_number(
            party_id=party.party_id, viewer=revealer, purpose="核对", context="x", now=now
        )
        # a sweep long after the due dates: escalations, notifications, deliveries
        swept = sweep_run(now=later, trigger="test")
        # the statistics refresh (DELETE + INSERT … SELECT on the rollups)
        stats_refresh(now=later)
        events = CaseEvent.objects.filter(case_id=case.pk).count()
        escalated = Escalation.objects.count()
        reveals = IdNumberRevealLog.objects.filter(party_id=party.party_id).count()

    assert events == 2
    assert len(number) == 18
    assert reveals == 1
    assert swept.counts.escalated >= 1
    assert escalated == swept.counts.escalated
    assert swept.counts.notifications_queued >= 1


def test_the_check_warns_for_a_superuser_and_the_owner(history):
    with override_settings(DATABASE_ROLE_CHECK=True):
        found = {m.id for m in check_database_role(databases=["default"])}

    assert found == {"core.W001", "core.W002"}


def test_the_check_is_quiet_for_the_app_role(app_role, history):
    with override_settings(DATABASE_ROLE_CHECK=True), django_connects_as(app_role):
        found = check_database_role(databases=["default"])

    assert found == []


def test_the_check_warns_when_the_app_role_was_granted_too_much(app_role, history):
    with psycopg.connect(_dsn(), autocommit=True) as admin:
        admin.execute(f'GRANT UPDATE, DELETE ON cases_caseevent TO "{app_role}"')

    with override_settings(DATABASE_ROLE_CHECK=True), django_connects_as(app_role):
        found = {m.id for m in check_database_role(databases=["default"])}

    assert found == {"core.W003"}


def test_the_check_is_off_outside_production(history):
    assert check_database_role(databases=["default"]) == []
