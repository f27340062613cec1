"""Making a backup: ``backup_create`` writes one archive of the database, documents and keys."""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

from django.utils.timezone import now as timezone_now

import ambula
from ambula.config import SECRET_KEY_FILE
from ambula.core.backup.archive import DOCUMENTS, KEYS, ArchiveWriter, _private_files
from ambula.core.backup.databases import database_for
from ambula.core.backup.errors import BackupError
from ambula.core.backup.keys import KeySource
from ambula.core.backup.stream import FORMAT_VERSION
from ambula.core.backup.text import Report, _quiet


@dataclass
class BackupResult:
    path: Path
    size: int
    seconds: float
    vendor: str
    database_size: int
    row_counts: dict[str, int]
    documents: int
    documents_size: int
    key_files: int
    secret_key: bool
    skipped: list[str]
    database_check: str
    key_description: str

    @property
    def rows(self) -> int:
        return sum(self.row_counts.values())


def backup_create(
    *,
    output: Path,
    key_source: KeySource,
    data_dir: Path,
    database: Mapping,
    report: Report = _quiet,
) -> BackupResult:
    """Write one encrypted archive of the database, documents, keys and secret key."""
    started = time.monotonic()
    output, data_dir = Path(output).absolute(), Path(data_dir).absolute()
    if output.resolve().is_relative_to(data_dir.resolve()):
        raise BackupError(
            f"Write the backup outside the data directory {data_dir}: a backup kept beside "
            "the data it protects is lost with it."
        )
    if not output.parent.is_dir():
        raise BackupError(f"The directory {output.parent} does not exist.")
    if output.is_dir():
        raise BackupError(f"{output} is a directory; name the backup file to write.")
    engine = database_for(database)
    skipped: list[str] = []
    # The database copy is plaintext PHI: it stays in the (0700) data directory until removed.
    with tempfile.TemporaryDirectory(prefix=".backup-", dir=data_dir) as scratch:
        report(f"Copying the {engine.label} database...")
        snapshot = engine.snapshot(Path(scratch))
        database_size = snapshot.path.stat().st_size
        report("Writing the encrypted archive...")
        with ArchiveWriter(output, key_source) as archive:
            secret_key_path = data_dir / SECRET_KEY_FILE
            has_secret_key = secret_key_path.is_file()
            if has_secret_key:
                archive.add_file(SECRET_KEY_FILE, secret_key_path)
            key_files = [
                archive.add_file(f"{KEYS}/{name}", path)
                for name, path in _private_files(data_dir / KEYS, skipped)
            ]
            archive.add_file(engine.member, snapshot.path)
            # After the database copy: a document added meanwhile is an unreferenced extra,
            # never a reference to a missing file.
            documents = [
                archive.add_file(f"{DOCUMENTS}/{name}", path)
                for name, path in _private_files(data_dir / DOCUMENTS, skipped)
            ]
            manifest = {
                "format_version": FORMAT_VERSION,
                "ambula_version": ambula.__version__,
                "created_at": timezone_now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "python_version": sys.version.split()[0],
                "database": {"vendor": engine.vendor, "member": engine.member, **snapshot.details},
                "migrations": snapshot.migrations,
                "row_counts": snapshot.row_counts,
            }
            size = archive.finish(manifest)
    return BackupResult(
        path=output,
        size=size,
        seconds=time.monotonic() - started,
        vendor=engine.vendor,
        database_size=database_size,
        row_counts=snapshot.row_counts,
        documents=len(documents),
        documents_size=sum(member.size for member in documents),
        key_files=len(key_files),
        secret_key=has_secret_key,
        skipped=skipped,
        database_check=snapshot.details.get("quick_check", "ok"),
        key_description=key_source.description,
    )
