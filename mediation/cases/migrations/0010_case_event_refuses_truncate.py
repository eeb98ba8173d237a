"""Case events are append-only every way in: TRUNCATE is refused too, and no role but the
table's owner keeps UPDATE, DELETE, TRUNCATE or TRIGGER on the table.

0002's row trigger refuses UPDATE and DELETE; a statement trigger now refuses TRUNCATE, which
fires no row trigger. Privileges: the application connects as a role that owns nothing
(README "Security", deploy/postgres/grants.psql), so it can neither ALTER TABLE … DISABLE
TRIGGER nor SET session_replication_role (superuser only). Test flushes, which TRUNCATE every
table, run as a superuser in `replica` mode (tests/conftest.py), where ordinary triggers do not
fire; the owner role in production cannot.
"""

from django.db import migrations

TABLE = "cases_caseevent"

PG_UP = """
CREATE OR REPLACE FUNCTION mediation_refuse_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only (TRUNCATE refused)', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION mediation_revoke_rewrites(target regclass) RETURNS void AS $$
DECLARE
    grantee_oid oid;
BEGIN
    FOR grantee_oid IN
        SELECT DISTINCT a.grantee
        FROM pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = target AND a.grantee <> c.relowner
          AND a.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE', 'TRIGGER', 'REFERENCES')
    LOOP
        EXECUTE format(
            'REVOKE UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES ON %s FROM %s',
            target,
            CASE WHEN grantee_oid = 0 THEN 'PUBLIC' ELSE grantee_oid::regrole::text END
        );
    END LOOP;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER cases_caseevent_no_truncate
    BEFORE TRUNCATE ON cases_caseevent
    FOR EACH STATEMENT EXECUTE FUNCTION mediation_refuse_truncate();
SELECT mediation_revoke_rewrites('cases_caseevent'::regclass);
"""
PG_DOWN = """
DROP TRIGGER IF EXISTS cases_caseevent_no_truncate ON cases_caseevent;
"""


def up(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_UP, params=None)


def down(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_DOWN, params=None)


class Migration(migrations.Migration):
    dependencies = [("cases", "0009_ack_clock_agency")]
    operations = [migrations.RunPython(up, down, elidable=False)]
