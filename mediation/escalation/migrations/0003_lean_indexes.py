"""Fewer indexes for the sweep to write: drop the single-column foreign-key indexes that a
composite index already leads with (clock: escalation_one_per_level, case: escalation_case_idx,
agency: escalation_queue_idx), and make the user columns' indexes partial (null until someone
acknowledges or resolves). The foreign-key constraints stay as they are: the state operations
only record `db_index=False`, the database operations only drop and create indexes (Django's
own AlterField would drop and re-add, and so re-validate, every constraint)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

TABLE = "escalation_escalation"
DROPPED = {  # index name (Django's generated name for the FK index) -> column
    "escalation_escalation_acknowledged_by_id_5b8883e0": "acknowledged_by_id",
    "escalation_escalation_agency_id_4b8b03a2": "agency_id",
    "escalation_escalation_case_id_972a05c6": "case_id",
    "escalation_escalation_clock_id_2a131273": "clock_id",
    "escalation_escalation_resolved_by_id_d46bddb9": "resolved_by_id",
}


def _fk(to, **kwargs):
    return models.ForeignKey(
        db_index=False, on_delete=django.db.models.deletion.PROTECT, to=to, **kwargs
    )


class Migration(migrations.Migration):
    dependencies = [
        ("agencies", "0002_agency_prefix_unique"),
        ("cases", "0006_statistics_indexes"),
        ("deadlines", "0003_statistics_indexes"),
        ("escalation", "0002_engine_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="escalation",
                    name="acknowledged_by",
                    field=_fk(
                        settings.AUTH_USER_MODEL,
                        blank=True,
                        null=True,
                        related_name="+",
                        verbose_name="签收人",
                    ),
                ),
                migrations.AlterField(
                    model_name="escalation",
                    name="agency",
                    field=_fk(
                        "agencies.agency",
                        blank=True,
                        null=True,
                        related_name="escalations",
                        verbose_name="督办机构",
                    ),
                ),
                migrations.AlterField(
                    model_name="escalation",
                    name="case",
                    field=_fk("cases.case", related_name="escalations"),
                ),
                migrations.AlterField(
                    model_name="escalation",
                    name="clock",
                    field=_fk("deadlines.clock", related_name="escalations"),
                ),
                migrations.AlterField(
                    model_name="escalation",
                    name="resolved_by",
                    field=_fk(
                        settings.AUTH_USER_MODEL,
                        blank=True,
                        null=True,
                        related_name="+",
                        verbose_name="办结人",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=[f'DROP INDEX IF EXISTS "{name}"' for name in DROPPED],
                    reverse_sql=[
                        f'CREATE INDEX IF NOT EXISTS "{name}" ON "{TABLE}" ("{column}")'
                        for name, column in DROPPED.items()
                    ],
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="escalation",
            index=models.Index(
                condition=models.Q(("acknowledged_by__isnull", False)),
                fields=["acknowledged_by"],
                name="escalation_ack_by_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="escalation",
            index=models.Index(
                condition=models.Q(("resolved_by__isnull", False)),
                fields=["resolved_by"],
                name="escalation_resolved_by_idx",
            ),
        ),
    ]
