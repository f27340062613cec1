"""What an attacker with write access to the database could do, for the tamper tests."""

from contextlib import contextmanager

from django.db import connection

from ambula.audit.triggers import create_triggers, drop_triggers

TABLE = "audit_auditevent"


@contextmanager
def triggers_lifted():
    drop_triggers(connection)
    try:
        yield
    finally:
        create_triggers(connection)


def execute(sql: str, params: list | None = None) -> None:
    with triggers_lifted(), connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def change_action(sequence: int, action: str) -> None:
    execute(f"UPDATE {TABLE} SET action = %s WHERE sequence = %s", [action, sequence])


def delete(sequence: int) -> None:
    execute(f"DELETE FROM {TABLE} WHERE sequence = %s", [sequence])


def renumber_after(sequence: int, by: int) -> None:
    """Shift the sequence of every later event, highest first (sequences are unique)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT sequence FROM {TABLE} WHERE sequence > %s ORDER BY sequence"
            + (" DESC" if by > 0 else ""),
            [sequence],
        )
        later = [row[0] for row in cursor.fetchall()]
    for number in later:
        execute(f"UPDATE {TABLE} SET sequence = %s WHERE sequence = %s", [number + by, number])


def swap(first: int, second: int) -> None:
    execute(f"UPDATE {TABLE} SET sequence = -1 WHERE sequence = %s", [first])
    execute(f"UPDATE {TABLE} SET sequence = %s WHERE sequence = %s", [first, second])
    execute(f"UPDATE {TABLE} SET sequence = %s WHERE sequence = -1", [second])


def copy_row_as(sequence: int, *, new_sequence: int, previous_mac: str, mac: str) -> None:
    """Insert a forged event: a copy of a real one with another place in the chain."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {TABLE} WHERE sequence = %s", [sequence])
        columns = [column[0] for column in cursor.description]
        row = dict(zip(columns, cursor.fetchone(), strict=True))
    import uuid

    row.update(
        id=uuid.uuid4().hex if connection.vendor == "sqlite" else uuid.uuid4(),
        sequence=new_sequence,
        previous_mac=previous_mac,
        mac=mac,
        action="auth.signed_in",
    )
    names = ", ".join(row)
    placeholders = ", ".join(["%s"] * len(row))
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {TABLE} ({names}) VALUES ({placeholders})", list(row.values()))
