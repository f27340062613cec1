"""Django's flush, which empties every table, lifting the audit table's triggers meanwhile.

Emptying a database is the one way audit events may go: it is what the test runner does
between tests, and an operator who runs it means to wipe everything.
"""

from django.core.management.commands.flush import Command as FlushCommand
from django.db import connections

from ambula.audit.triggers import create_triggers, drop_triggers


class Command(FlushCommand):
    def handle(self, **options):
        connection = connections[options["database"]]
        drop_triggers(connection)
        try:
            return super().handle(**options)
        finally:
            create_triggers(connection)
