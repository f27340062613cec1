"""No double booking, enforced by PostgreSQL itself.

One provider, and one resource, can never hold two active appointments whose held times
(start to end plus buffer) overlap. SQLite has no exclusion constraints: there the booking
service checks for overlap inside a transaction that SQLite serialises (BEGIN IMMEDIATE).
"""

from django.db import migrations

ACTIVE = "('scheduled', 'arrived', 'in_room', 'completed')"

CREATE = [
    "CREATE EXTENSION IF NOT EXISTS btree_gist",
    f"""
    ALTER TABLE scheduling_appointment ADD CONSTRAINT scheduling_appointment_no_overlap
    EXCLUDE USING gist (
        provider_id WITH =,
        tstzrange(starts_at, blocked_until, '[)') WITH &&
    ) WHERE (status IN {ACTIVE} AND NOT overbooked)
    """,
    """
    ALTER TABLE scheduling_resourcebooking ADD CONSTRAINT scheduling_resource_no_overlap
    EXCLUDE USING gist (
        resource_id WITH =,
        tstzrange(starts_at, blocked_until, '[)') WITH &&
    ) WHERE (active)
    """,
]
DROP = [
    "ALTER TABLE scheduling_resourcebooking DROP CONSTRAINT scheduling_resource_no_overlap",
    "ALTER TABLE scheduling_appointment DROP CONSTRAINT scheduling_appointment_no_overlap",
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in CREATE:
            schema_editor.execute(statement)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in DROP:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0002_providers_and_appointments")]

    operations = [migrations.RunPython(create, drop)]
