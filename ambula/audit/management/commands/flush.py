"""Django's flush, which empties every table, lifting the audit table's triggers meanwhile.

Emptying a database is the one way audit events may go: it is what the test runner does
between tests, and an operator who runs it means to wipe everything. The triggers come down
only after the confirmation, and in the same transaction as the flush, so no other
connection ever sees the table unprotected (on PostgreSQL and SQLite, DDL is transactional).
"""

from django.core.management.base import CommandError
from django.core.management.commands.flush import Command as FlushCommand
from django.db import connections, transaction

from ambula.audit.triggers import create_triggers, drop_triggers


class Command(FlushCommand):
    def handle(self, **options):
        database = options["database"]
        if options["interactive"]:
            answer = input(
                f"This will delete ALL data in the database {database!r}, the audit trail "
                "included. Type 'yes' to continue: "
            )
            if answer != "yes":
                raise CommandError("Flush cancelled.")
        connection = connections[database]
        with transaction.atomic(using=database):
            drop_triggers(connection)
            super().handle(**{**options, "interactive": False})
            create_triggers(connection)
