"""The database in a backup: SQLite's online backup API; PostgreSQL's pg_dump, pg_restore, psql.

Each engine takes a consistent snapshot with its row counts and applied migrations, tells how
many tables a restore target holds, checks a staged copy, restores it, and counts rows after.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ambula.core.backup.archive import COPY_BUFFER, DATABASE
from ambula.core.backup.errors import BackupError, DamagedBackupError, TargetNotEmptyError
from ambula.core.backup.keys import PASSPHRASE_VARIABLE


@dataclass
class DatabaseSnapshot:
    path: Path
    row_counts: dict[str, int]
    migrations: list[list[str]]
    details: dict


class _SQLiteDatabase:
    vendor = "sqlite"
    label = "SQLite"
    member = f"{DATABASE}/ambula.sqlite3"

    def __init__(self, settings: Mapping):
        name = str(settings["NAME"])
        if name == ":memory:" or name.startswith("file:"):
            raise BackupError("An in-memory SQLite database cannot be backed up or restored.")
        self.path = Path(name)

    @staticmethod
    def _tables(connection: sqlite3.Connection) -> list[str]:
        rows = connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
        return [name for (name,) in rows]

    @staticmethod
    def _count(connection: sqlite3.Connection, table: str) -> int:
        quoted = '"' + table.replace('"', '""') + '"'
        return connection.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0]  # noqa: S608

    def _connect_existing(self) -> sqlite3.Connection:
        # mode=rw: never create a database file by looking for one.
        return sqlite3.connect(f"{self.path.as_uri()}?mode=rw", uri=True, timeout=20)

    def snapshot(self, directory: Path) -> DatabaseSnapshot:
        if not self.path.is_file():
            raise BackupError(f"There is no database at {self.path}: run `ambula migrate` first.")
        snapshot_path = directory / "ambula.sqlite3"
        source = self._connect_existing()
        destination = sqlite3.connect(snapshot_path)
        try:
            # One step (pages=-1) under one read transaction: a consistent copy, and in WAL mode
            # the application's writers carry on meanwhile.
            source.backup(destination, pages=-1)
            destination.execute("PRAGMA journal_mode=DELETE")
            tables = self._tables(destination)
            migrations = (
                [
                    list(row)
                    for row in destination.execute(
                        "SELECT app, name FROM django_migrations ORDER BY id"
                    )
                ]
                if "django_migrations" in tables
                else []
            )
            counts = {table: self._count(destination, table) for table in tables}
            check = destination.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.Error as error:
            raise BackupError(f"Cannot copy the database {self.path}: {error}") from None
        finally:
            source.close()
            destination.close()
        details = {"sqlite_version": sqlite3.sqlite_version, "quick_check": check}
        return DatabaseSnapshot(snapshot_path, counts, migrations, details)

    def table_count(self) -> int:
        """Return how many tables the target holds (an unreadable file counts as holding some)."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return 0
        try:
            connection = self._connect_existing()
            try:
                return len(self._tables(connection))
            finally:
                connection.close()
        except sqlite3.DatabaseError as error:
            raise TargetNotEmptyError(
                f"{self.path} exists but is not a readable SQLite database ({error})."
            ) from None

    def check_staged(self, staged: Path) -> None:
        connection = sqlite3.connect(f"{staged.as_uri()}?mode=ro", uri=True)
        try:
            result = connection.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            connection.close()
        if result != "ok":
            raise DamagedBackupError(
                f"The database in the backup fails its integrity check: {result}"
            )

    def restore(self, staged: Path, *, force: bool) -> None:
        if force and self.path.exists() and not self._readable():
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        source = sqlite3.connect(f"{staged.as_uri()}?mode=ro", uri=True)
        destination = sqlite3.connect(self.path, timeout=20)
        try:
            # Through SQLite's own locking, so a stray open connection sees the new contents
            # instead of writing on into a replaced file.
            source.backup(destination, pages=-1)
            destination.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as error:
            raise BackupError(f"Cannot write the database {self.path}: {error}") from None
        finally:
            source.close()
            destination.close()

    def _readable(self) -> bool:
        try:
            self.table_count()
        except TargetNotEmptyError:
            return False
        return True

    def row_counts(self, tables: list[str]) -> dict[str, int | None]:
        connection = self._connect_existing()
        try:
            present = set(self._tables(connection))
            return {
                table: self._count(connection, table) if table in present else None
                for table in tables
            }
        finally:
            connection.close()


# libpq settings Django may carry in OPTIONS, and the environment variables that set them.
LIBPQ_OPTIONS = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslpassword": "PGSSLPASSWORD",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "options": "PGOPTIONS",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
}


def _postgresql_program(name: str) -> str:
    program = shutil.which(name)
    if program is None:
        raise BackupError(
            f"{name} is not installed; it comes with the PostgreSQL client tools "
            "(Debian/Ubuntu: apt install postgresql-client)."
        )
    return program


def _tail(file: BinaryIO, limit: int = 2000) -> str:
    file.seek(0)
    return file.read().decode(errors="replace").strip()[-limit:]


class _PostgreSQLDatabase:
    vendor = "postgresql"
    label = "PostgreSQL"
    member = f"{DATABASE}/ambula.pgdump"

    def __init__(self, settings: Mapping):
        self.settings = settings
        self.name = settings["NAME"]

    def connection_parameters(self) -> dict[str, str]:
        parameters = {
            "dbname": self.name,
            "user": self.settings.get("USER"),
            "password": self.settings.get("PASSWORD"),
            "host": self.settings.get("HOST"),
            "port": self.settings.get("PORT"),
        }
        options = self.settings.get("OPTIONS") or {}
        parameters |= {key: options[key] for key in LIBPQ_OPTIONS if key in options}
        return {key: str(value) for key, value in parameters.items() if value not in (None, "")}

    def environment(self) -> dict[str, str]:
        """The environment for pg_dump, pg_restore and psql (the password stays off argv)."""
        names = LIBPQ_OPTIONS | {
            "dbname": "PGDATABASE",
            "user": "PGUSER",
            "password": "PGPASSWORD",
            "host": "PGHOST",
            "port": "PGPORT",
        }
        environment = dict(os.environ)
        environment.pop(PASSPHRASE_VARIABLE, None)  # the tools have no use for it
        environment.update(
            {names[key]: value for key, value in self.connection_parameters().items()}
        )
        environment["PGAPPNAME"] = "ambula-backup"
        return environment

    def _connect(self):
        import psycopg

        try:
            return psycopg.connect(**self.connection_parameters())
        except psycopg.Error as error:
            raise BackupError(
                f"Cannot connect to the PostgreSQL database {self.name}: {error}"
            ) from None

    @staticmethod
    def _tables(cursor) -> list[str]:
        cursor.execute(
            "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = 'public' ORDER BY 1"
        )
        return [name for (name,) in cursor.fetchall()]

    @staticmethod
    def _count(cursor, table: str) -> int:
        from psycopg import sql

        cursor.execute(sql.SQL("SELECT count(*) FROM public.{}").format(sql.Identifier(table)))
        return cursor.fetchone()[0]

    def snapshot(self, directory: Path) -> DatabaseSnapshot:
        import psycopg

        pg_dump = _postgresql_program("pg_dump")
        dump_path = directory / "ambula.pgdump"
        with self._connect() as connection:
            connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            connection.read_only = True
            with connection.cursor() as cursor:
                # The counts and pg_dump share one exported snapshot: they describe one moment.
                cursor.execute(
                    "SELECT pg_catalog.pg_export_snapshot(), current_setting('server_version')"
                )
                snapshot_id, server_version = cursor.fetchone()
                tables = self._tables(cursor)
                counts = {table: self._count(cursor, table) for table in tables}
                migrations = []
                if "django_migrations" in tables:
                    cursor.execute("SELECT app, name FROM public.django_migrations ORDER BY id")
                    migrations = [list(row) for row in cursor.fetchall()]
                with tempfile.TemporaryFile() as errors:
                    result = subprocess.run(  # noqa: S603  (fixed arguments, no shell)
                        [pg_dump, "--format=custom", "--compress=0", "--no-password",
                         f"--snapshot={snapshot_id}", f"--file={dump_path}"],
                        env=self.environment(), stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL, stderr=errors, check=False,
                    )  # fmt: skip
                    if result.returncode != 0:
                        raise BackupError(f"pg_dump failed: {_tail(errors)}")
            connection.rollback()
        details = {"server_version": server_version}
        return DatabaseSnapshot(dump_path, counts, migrations, details)

    def table_count(self) -> int:
        with self._connect() as connection, connection.cursor() as cursor:
            return len(self._tables(cursor))

    def check_staged(self, staged: Path) -> None:
        pg_restore = _postgresql_program("pg_restore")
        result = subprocess.run(  # noqa: S603  (fixed arguments, no shell)
            [pg_restore, "--list", str(staged)], capture_output=True, check=False
        )
        if result.returncode != 0:
            detail = result.stderr.decode(errors="replace").strip()
            raise BackupError(f"pg_restore cannot read the database dump in the backup: {detail}")

    def restore(self, staged: Path, *, force: bool) -> None:
        """Run pg_restore's script through psql in one transaction, committed only if whole.

        With --force the public schema is dropped and recreated as PostgreSQL makes it, in the
        same transaction: a failed restore leaves the database as it was.
        """
        pg_restore = _postgresql_program("pg_restore")
        psql = _postgresql_program("psql")
        prologue = "BEGIN;\n"
        if force:
            prologue += (
                "DROP SCHEMA IF EXISTS public CASCADE;\n"
                "CREATE SCHEMA public AUTHORIZATION pg_database_owner;\n"
                "GRANT USAGE ON SCHEMA public TO PUBLIC;\n"
                "COMMENT ON SCHEMA public IS 'standard public schema';\n"
            )
        environment = self.environment()
        with tempfile.TemporaryFile() as restore_errors, tempfile.TemporaryFile() as psql_errors:
            applying = subprocess.Popen(  # noqa: S603  (fixed arguments, no shell)
                [psql, "--no-psqlrc", "--quiet", "--no-password", "--set=ON_ERROR_STOP=1",
                 "--file=-"],
                env=environment, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=psql_errors,
            )  # fmt: skip
            rendering = subprocess.Popen(  # noqa: S603  (fixed arguments, no shell)
                [pg_restore, "--no-owner", "--no-privileges", "--file=-", str(staged)],
                env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=restore_errors,
            )  # fmt: skip
            try:
                applying.stdin.write(prologue.encode())
                while block := rendering.stdout.read(COPY_BUFFER):
                    applying.stdin.write(block)
                # COMMIT only after pg_restore finished well: psql reaching the end of its
                # input without it ends the session, and PostgreSQL rolls everything back.
                if rendering.wait() == 0:
                    applying.stdin.write(b"COMMIT;\n")
            except BrokenPipeError:
                pass  # psql stopped at an error; its message is read below
            finally:
                if rendering.poll() is None:
                    rendering.kill()
                rendering.wait()
                rendering.stdout.close()
                with contextlib.suppress(BrokenPipeError):
                    applying.stdin.close()
                applying.wait()
            # psql first: when it stops at an error, pg_restore is killed for want of a reader.
            if applying.returncode != 0:
                raise BackupError(
                    f"Restoring into PostgreSQL failed and was rolled back: {_tail(psql_errors)}"
                )
            if rendering.returncode != 0:
                raise BackupError(
                    f"pg_restore failed; nothing was committed: {_tail(restore_errors)}"
                )

    def row_counts(self, tables: list[str]) -> dict[str, int | None]:
        with self._connect() as connection, connection.cursor() as cursor:
            present = set(self._tables(cursor))
            return {
                table: self._count(cursor, table) if table in present else None for table in tables
            }


def database_for(settings: Mapping) -> _SQLiteDatabase | _PostgreSQLDatabase:
    engine = settings.get("ENGINE", "")
    if engine.endswith("sqlite3"):
        return _SQLiteDatabase(settings)
    if "postgresql" in engine:
        return _PostgreSQLDatabase(settings)
    raise BackupError(f"Backups support SQLite and PostgreSQL, not {engine}.")
