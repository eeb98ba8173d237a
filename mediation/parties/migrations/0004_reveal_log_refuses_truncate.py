"""The reveal log is append-only every way in: TRUNCATE is refused too (a statement trigger),
and no role but the table's owner keeps UPDATE, DELETE, TRUNCATE or TRIGGER on it. The helper
functions come from cases.0010 (see its docstring); parties may not import cases, but a
migration dependency on the database objects is fine.
"""

from django.db import migrations

PG_UP = """
CREATE TRIGGER parties_idnumberreveallog_no_truncate
    BEFORE TRUNCATE ON parties_idnumberreveallog
    FOR EACH STATEMENT EXECUTE FUNCTION mediation_refuse_truncate();
SELECT mediation_revoke_rewrites('parties_idnumberreveallog'::regclass);
"""
PG_DOWN = """
DROP TRIGGER IF EXISTS parties_idnumberreveallog_no_truncate ON parties_idnumberreveallog;
"""


def up(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_UP, params=None)


def down(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_DOWN, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("parties", "0003_reveal_log_item"),
        ("cases", "0010_case_event_refuses_truncate"),
    ]
    operations = [migrations.RunPython(up, down, elidable=False)]
