"""PostgreSQL refuses UPDATE and DELETE on the ID-number reveal log (居民身份证法 Art 13, 19).

The model already refuses both through the ORM; the trigger also covers raw SQL and other
clients. TRUNCATE is left alone (test database flushes). SQLite (the demo) gets no trigger.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION parties_reveal_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'parties_idnumberreveallog is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER parties_idnumberreveallog_append_only
    BEFORE UPDATE OR DELETE ON parties_idnumberreveallog
    FOR EACH ROW EXECUTE FUNCTION parties_reveal_log_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS parties_idnumberreveallog_append_only ON parties_idnumberreveallog;
DROP FUNCTION IF EXISTS parties_reveal_log_append_only();
"""


def create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("parties", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create_trigger, drop_trigger, elidable=False),
    ]
