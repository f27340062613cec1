"""What /healthz checks: the database answers and every migration is applied."""

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

_migrations_seen_applied = False


def database_reachable() -> bool:
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        return False


def migrations_applied() -> bool:
    """True when no migration is pending. Once true, a process keeps the answer."""
    global _migrations_seen_applied
    if _migrations_seen_applied:
        return True
    try:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        targets = executor.loader.graph.leaf_nodes()
        pending = executor.migration_plan(targets)
    except Exception:
        return False
    _migrations_seen_applied = not pending
    return _migrations_seen_applied
