"""Acknowledgement clocks owe their duty to the referral's receiver (`Clock.agency`).

Live ones of pending referrals get the receiver; everything else stays null (= the holder).
One set-based UPDATE (PostgreSQL, and SQLite ≥ 3.33, both support UPDATE … FROM).
"""

from django.db import migrations

ACK_RULES = ("referral.police_ack", "dispute.assign_ack", "petition.notify", "petition.objection")

FORWARD = """
UPDATE deadlines_clock
SET agency_id = r.to_agency_id
FROM cases_referral r
WHERE r.case_id = deadlines_clock.case_id
  AND r.status = 'pending'
  AND deadlines_clock.status IN ('running', 'paused')
  AND deadlines_clock.agency_id IS NULL
  AND deadlines_clock.rule_code IN ({rules})
"""


def backfill(apps, schema_editor):
    rules = ", ".join(f"'{code}'" for code in ACK_RULES)
    schema_editor.execute(FORWARD.format(rules=rules))


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0008_event_kinds"),
        ("deadlines", "0004_clock_agency"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
