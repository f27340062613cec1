"""The database itself refuses UPDATE and DELETE on audit events (and TRUNCATE on PostgreSQL).

`ambula manage flush` (and the test runner's flush) lifts the triggers for the moment it
empties the tables; see ambula/audit/management/commands/flush.py.
"""

from django.db import migrations

from ambula.audit.triggers import create_triggers, drop_triggers


def forwards(apps, schema_editor):
    create_triggers(schema_editor.connection)


def backwards(apps, schema_editor):
    drop_triggers(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
