"""Database triggers that make the audit table append-only, for SQLite and PostgreSQL."""

TABLE = "audit_auditevent"
MESSAGE = "audit events are append-only"

SQLITE_CREATE = [
    f"CREATE TRIGGER IF NOT EXISTS audit_event_no_update BEFORE UPDATE ON {TABLE} "
    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
    f"CREATE TRIGGER IF NOT EXISTS audit_event_no_delete BEFORE DELETE ON {TABLE} "
    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS audit_event_no_update",
    "DROP TRIGGER IF EXISTS audit_event_no_delete",
]
POSTGRES_CREATE = [
    "CREATE OR REPLACE FUNCTION audit_event_refuse_change() RETURNS trigger "
    f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{MESSAGE}'; END $$",
    f"DROP TRIGGER IF EXISTS audit_event_no_change ON {TABLE}",
    f"CREATE TRIGGER audit_event_no_change BEFORE UPDATE OR DELETE ON {TABLE} "
    "FOR EACH ROW EXECUTE FUNCTION audit_event_refuse_change()",
    f"DROP TRIGGER IF EXISTS audit_event_no_truncate ON {TABLE}",
    f"CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON {TABLE} "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_event_refuse_change()",
]
POSTGRES_DROP = [
    f"DROP TRIGGER IF EXISTS audit_event_no_change ON {TABLE}",
    f"DROP TRIGGER IF EXISTS audit_event_no_truncate ON {TABLE}",
    "DROP FUNCTION IF EXISTS audit_event_refuse_change()",
]


def _run(connection, statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def create_triggers(connection) -> None:
    _run(connection, POSTGRES_CREATE if connection.vendor == "postgresql" else SQLITE_CREATE)


def drop_triggers(connection) -> None:
    _run(connection, POSTGRES_DROP if connection.vendor == "postgresql" else SQLITE_DROP)


def triggers_present(connection) -> bool:
    """Whether the database still refuses changes to audit events."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT count(*) FROM pg_trigger WHERE tgrelid = %s::regclass "
                "AND tgname IN ('audit_event_no_change', 'audit_event_no_truncate') "
                "AND tgenabled <> 'D'",
                [TABLE],
            )
            return cursor.fetchone()[0] == 2
        cursor.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' "
            "AND name IN ('audit_event_no_update', 'audit_event_no_delete')"
        )
        return cursor.fetchone()[0] == 2
