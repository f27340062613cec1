"""Backups: one encrypted, compressed file holding the database, documents and keys.

HIPAA 164.308(a)(7) asks for retrievable exact copies of ePHI and a way to restore them. An
archive holds everything an installation needs to come back on a new machine: a consistent
snapshot of the database (SQLite's online backup API, or ``pg_dump`` inside one exported
snapshot on PostgreSQL), the documents folder, the key ring in ``keys/``, the ``secret_key``
file, and ``manifest.json`` (versions, applied migrations, row counts, a SHA-256 per member).

The modules, outermost first:

    create      backup_create: write one archive of this installation
    restore     backup_restore: verify an archive in a staging directory, then restore it
    databases   SQLite's online backup API; PostgreSQL's pg_dump, pg_restore and psql
    archive     the gzip-compressed tar inside: members, manifest, checksums, extraction
    keys        what unlocks an archive: a passphrase, a key file, a new key file
    stream      the encrypted chunked file format: header, key derivation, chunks
    errors      the exceptions, whose messages say what to do
    text        progress reports, counts and sizes in words

This package re-exports the public API, which the ``backup`` and ``restore`` commands use.
"""

from ambula.core.backup.archive import ArchiveWriter, archive_extract
from ambula.core.backup.archive import _member_path as _member_path  # checked by the tests
from ambula.core.backup.create import BackupResult, backup_create
from ambula.core.backup.errors import (
    BackupError,
    DamagedBackupError,
    NotABackupError,
    TargetNotEmptyError,
    WrongKeyError,
)
from ambula.core.backup.keys import (
    PASSPHRASE_VARIABLE,
    KeySource,
    key_file_create,
    key_source_from_options,
)
from ambula.core.backup.restore import RestoreResult, backup_restore
from ambula.core.backup.stream import (
    FORMAT_VERSION,
    FRAME,
    HEADER,
    KIND_KEY_FILE,
    KIND_PASSPHRASE,
    MAGIC,
    NONCE_SIZE,
    Header,
    UnlockedArchive,
    archive_unlock,
)
from ambula.core.backup.text import human_size, plural

__all__ = [
    "FORMAT_VERSION",
    "FRAME",
    "HEADER",
    "KIND_KEY_FILE",
    "KIND_PASSPHRASE",
    "MAGIC",
    "NONCE_SIZE",
    "PASSPHRASE_VARIABLE",
    "ArchiveWriter",
    "BackupError",
    "BackupResult",
    "DamagedBackupError",
    "Header",
    "KeySource",
    "NotABackupError",
    "RestoreResult",
    "TargetNotEmptyError",
    "UnlockedArchive",
    "WrongKeyError",
    "archive_extract",
    "archive_unlock",
    "backup_create",
    "backup_restore",
    "human_size",
    "key_file_create",
    "key_source_from_options",
    "plural",
]
