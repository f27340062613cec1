"""Restoring a backup: ``backup_restore`` verifies the whole archive, then writes it in place.

A restore decrypts and checks every chunk and every checksum into a staging directory before it
writes anything to the installation, and writes only into an empty one unless forced.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ambula.config import SECRET_KEY_FILE
from ambula.core.backup.archive import (
    COPY_BUFFER,
    DOCUMENTS,
    KEYS,
    _private_files,
    archive_extract,
)
from ambula.core.backup.databases import database_for
from ambula.core.backup.errors import BackupError, TargetNotEmptyError
from ambula.core.backup.keys import KeySource
from ambula.core.backup.stream import archive_unlock
from ambula.core.backup.text import Report, _quiet, human_size, plural


@dataclass
class RestoreResult:
    manifest: dict
    archive_size: int
    seconds: float
    verify_seconds: float
    documents: int
    key_files: int
    secret_key: bool
    expected: dict[str, int]
    actual: dict[str, int | None]

    @property
    def mismatches(self) -> list[tuple[str, int, int | None]]:
        return [
            (table, count, self.actual.get(table))
            for table, count in sorted(self.expected.items())
            if self.actual.get(table) != count
        ]


def _document_count(documents: Path) -> int:
    return sum(1 for _ in _private_files(documents, [])) if documents.is_dir() else 0


def _target_problems(engine, data_dir: Path) -> list[str]:
    problems = []
    tables = engine.table_count()
    if tables:
        where = engine.path if engine.vendor == "sqlite" else f"database {engine.name}"
        problems.append(f"the {engine.label} {where} has {plural(tables, 'table')}")
    documents = _document_count(data_dir / DOCUMENTS)
    if documents:
        problems.append(f"{data_dir / DOCUMENTS} holds {plural(documents, 'file')}")
    return problems


def _replace_file(source: Path, target: Path) -> None:
    """Copy `source` over `target` atomically, readable by its owner only."""
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, draft = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(descriptor, "wb") as out, source.open("rb") as data:
            shutil.copyfileobj(data, out, COPY_BUFFER)
            out.flush()
            os.fsync(out.fileno())
        os.replace(draft, target)
    except BaseException:
        Path(draft).unlink(missing_ok=True)
        raise


def _replace_documents(staged: Path, target: Path) -> None:
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=".documents-replaced-"))
        target.rename(old / DOCUMENTS)
    shutil.move(staged, target)
    target.chmod(0o700)
    if old is not None:
        shutil.rmtree(old)


def _staged_member(staging: Path, member: str) -> Path:
    """The staged file the manifest names, refused unless it is one that was extracted."""
    path = staging.joinpath(*PurePosixPath(member).parts).resolve()
    if not path.is_relative_to(staging.resolve()) or not path.is_file():
        raise BackupError("The backup's manifest names a database file it does not contain.")
    return path


def backup_restore(
    *,
    archive: Path,
    key_source: KeySource,
    data_dir: Path,
    database: Mapping,
    force: bool = False,
    staging_parent: Path | None = None,
    report: Report = _quiet,
) -> RestoreResult:
    """Verify the whole archive in a staging directory, then restore it into this installation.

    Refuses an installation that holds data unless `force`; refuses a backup of the other
    database engine. Nothing in the installation changes unless every check has passed.
    """
    started = time.monotonic()
    archive, data_dir = Path(archive).absolute(), Path(data_dir).absolute()
    engine = database_for(database)
    unlocked = archive_unlock(archive, key_source)
    problems = _target_problems(engine, data_dir)
    if problems and not force:
        raise TargetNotEmptyError(
            f"This installation is not empty ({'; '.join(problems)}). Restore into a new data "
            "directory and database, or pass --force to replace what is there."
        )
    if problems:
        report(f"--force: what is there will be replaced ({'; '.join(problems)}).")
    staging_parent = Path(staging_parent or data_dir.parent).absolute()
    try:
        staging = Path(tempfile.mkdtemp(prefix=".ambula-restore-", dir=staging_parent))
    except OSError as error:
        raise BackupError(
            f"Cannot make a staging directory in {staging_parent} ({error}); choose one with "
            "--staging-dir."
        ) from None
    try:
        report(f"Verifying {archive} ({human_size(unlocked.size)})...")
        manifest = archive_extract(unlocked, staging)
        vendor = manifest["database"]["vendor"]
        if vendor != engine.vendor:
            backup_label = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(vendor, vendor)
            raise BackupError(
                f"This backup holds a {backup_label} database but this installation uses "
                f"{engine.label}. Restoring across database engines is not supported: restore "
                f"into an installation configured for {backup_label}."
            )
        staged_database = _staged_member(staging, manifest["database"]["member"])
        engine.check_staged(staged_database)
        verify_seconds = time.monotonic() - started
        report(f"Archive verified in {verify_seconds:.1f} s; restoring into {data_dir}...")
        # Keys first: a database whose values need the backup's keys must never sit beside
        # the old ones because a later step failed.
        key_files = list(_private_files(staging / KEYS, []))
        for name, path in key_files:
            _replace_file(path, data_dir / KEYS / name)
        has_secret_key = (staging / SECRET_KEY_FILE).is_file()
        if has_secret_key:
            _replace_file(staging / SECRET_KEY_FILE, data_dir / SECRET_KEY_FILE)
        engine.restore(staged_database, force=force)
        staged_documents = staging / DOCUMENTS
        staged_documents.mkdir(mode=0o700, exist_ok=True)
        documents = _document_count(staged_documents)
        _replace_documents(staged_documents, data_dir / DOCUMENTS)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    expected = manifest["row_counts"]
    actual = engine.row_counts(sorted(expected))
    return RestoreResult(
        manifest=manifest,
        archive_size=unlocked.size,
        seconds=time.monotonic() - started,
        verify_seconds=verify_seconds,
        documents=documents,
        key_files=len(key_files),
        secret_key=has_secret_key,
        expected=expected,
        actual=actual,
    )
