"""The archive inside the encrypted stream: a gzip-compressed tar of named members.

Members live under a few top-level names (the database, documents, keys, the secret key); the
last member is ``manifest.json``, listing every other member with its size and SHA-256.
``ArchiveWriter`` writes an archive; ``archive_extract`` unpacks one into a staging directory
and checks every member against the manifest.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import secrets
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ambula.config import SECRET_KEY_FILE
from ambula.core.backup.errors import BackupError, DamagedBackupError
from ambula.core.backup.keys import KeySource
from ambula.core.backup.stream import (
    CHUNK_SIZE,
    FORMAT_VERSION,
    HEADER,
    KIND_PASSPHRASE,
    SALT_SIZE,
    SCRYPT_LOG2_N,
    SCRYPT_P,
    SCRYPT_R,
    Header,
    UnlockedArchive,
    _DecryptingReader,
    _derive,
    _EncryptingWriter,
)

COPY_BUFFER = 1 << 20
# gzip level 3: about twice level 6's speed for a few percent more size on a nightly backup.
COMPRESS_LEVEL = 3

MANIFEST = "manifest.json"
KEYS = "keys"
DOCUMENTS = "documents"
DATABASE = "database"
TOP_LEVEL_NAMES = frozenset({MANIFEST, SECRET_KEY_FILE, KEYS, DOCUMENTS, DATABASE})


@dataclass(frozen=True)
class Member:
    name: str
    size: int
    sha256: str


class _HashingReader:
    def __init__(self, file: BinaryIO):
        self._file = file
        self.digest = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self.digest.update(data)
        self.count += len(data)
        return data


class ArchiveWriter:
    """Write an archive to a private temporary file; `finish` renames it into place.

    Use as a context manager: an archive left unfinished (an error) is deleted.
    """

    def __init__(self, output: Path, key_source: KeySource, *, chunk_size: int = CHUNK_SIZE):
        self.output, self.key_source, self.chunk_size = output, key_source, chunk_size
        self.members: list[Member] = []
        self.size = 0

    def __enter__(self) -> ArchiveWriter:
        salt = secrets.token_bytes(SALT_SIZE)
        passphrase = self.key_source.kind == KIND_PASSPHRASE
        header = Header(
            kind=self.key_source.kind,
            log2_n=SCRYPT_LOG2_N if passphrase else 0,
            r=SCRYPT_R if passphrase else 0,
            p=SCRYPT_P if passphrase else 0,
            chunk_size=self.chunk_size,
            salt=salt,
        )
        data_key, key_check = _derive(self.key_source, header)
        header_bytes = replace(header, key_check=key_check).pack()
        # mkstemp makes the file 0600; it is renamed over the output only once complete.
        descriptor, draft = tempfile.mkstemp(
            dir=self.output.parent, prefix=f".{self.output.name}.", suffix=".partial"
        )
        self._draft = Path(draft)
        self._raw = os.fdopen(descriptor, "wb", buffering=COPY_BUFFER)
        self._raw.write(header_bytes)
        self._encrypted = _EncryptingWriter(self._raw, header_bytes, data_key, self.chunk_size)
        self._compressed = gzip.GzipFile(
            fileobj=self._encrypted, mode="wb", compresslevel=COMPRESS_LEVEL, mtime=0
        )
        self._tar = tarfile.open(
            fileobj=self._compressed,
            mode="w|",
            format=tarfile.PAX_FORMAT,
            bufsize=COPY_BUFFER,
            copybufsize=COPY_BUFFER,
        )
        self._finished = False
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if not self._finished:
            self._raw.close()
            self._draft.unlink(missing_ok=True)

    def _tarinfo(self, name: str, size: int, mtime: float) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = size, int(mtime), 0o600
        return info

    def add_file(self, name: str, path: Path) -> Member:
        """Add a file by streaming it, hashing what is actually written."""
        with path.open("rb") as source:
            status = os.fstat(source.fileno())
            reader = _HashingReader(source)
            try:
                self._tar.addfile(self._tarinfo(name, status.st_size, status.st_mtime), reader)
            except OSError:
                if reader.count < status.st_size:
                    raise BackupError(
                        f"{path} shrank while it was being backed up; run the backup again."
                    ) from None
                raise
        member = Member(name, status.st_size, reader.digest.hexdigest())
        self.members.append(member)
        return member

    def add_bytes(self, name: str, data: bytes) -> Member:
        member = Member(name, len(data), hashlib.sha256(data).hexdigest())
        self.members.append(member)
        self._tar.addfile(self._tarinfo(name, len(data), time.time()), io.BytesIO(data))
        return member

    def finish(self, manifest: dict) -> int:
        """Add the manifest (with every member's checksum), seal, and move into place."""
        manifest = {**manifest, "members": [asdict(member) for member in self.members]}
        data = json.dumps(manifest, indent=1, sort_keys=True).encode()
        self._tar.addfile(self._tarinfo(MANIFEST, len(data), time.time()), io.BytesIO(data))
        self._tar.close()
        self._compressed.close()
        self._encrypted.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self.size = os.fstat(self._raw.fileno()).st_size
        self._raw.close()
        os.replace(self._draft, self.output)
        _fsync_directory(self.output.parent)
        self._finished = True
        return self.size


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _member_path(name: str, archive: Path) -> PurePosixPath:
    path = PurePosixPath(name)
    if (
        str(path) != name
        or path.is_absolute()
        or any(part in {"", ".", ".."} for part in path.parts)
        or path.parts[0] not in TOP_LEVEL_NAMES
        or "\\" in name
    ):
        raise DamagedBackupError(f"{archive} holds an unexpected member {name!r}.")
    return path


def _extract_members(tar: tarfile.TarFile, staging: Path, archive: Path) -> dict[str, Member]:
    extracted: dict[str, Member] = {}
    for info in tar:
        if not info.isfile():
            raise DamagedBackupError(f"{archive} holds an unexpected member {info.name!r}.")
        relative = _member_path(info.name, archive)
        if info.name in extracted:
            raise DamagedBackupError(f"{archive} holds {info.name!r} twice.")
        target = staging.joinpath(*relative.parts)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        source = tar.extractfile(info)
        with os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            while block := source.read(COPY_BUFFER):
                digest.update(block)
                size += len(block)
                out.write(block)
        os.utime(target, (info.mtime, info.mtime))
        extracted[info.name] = Member(info.name, size, digest.hexdigest())
    return extracted


def archive_extract(unlocked: UnlockedArchive, staging: Path) -> dict:
    """Decrypt the whole archive into `staging`, check every member, and return the manifest."""
    path = unlocked.path
    with path.open("rb") as raw:
        raw.seek(HEADER.size)
        decrypted = _DecryptingReader(raw, unlocked.header, unlocked.data_key, str(path))
        try:
            with gzip.GzipFile(fileobj=decrypted, mode="rb") as decompressed:
                with tarfile.open(fileobj=decompressed, mode="r|", bufsize=COPY_BUFFER) as tar:
                    extracted = _extract_members(tar, staging, path)
                while decompressed.read(COPY_BUFFER):
                    pass
            decrypted.read_to_end()
        except (tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error) as error:
            # Authenticated yet malformed: made by something other than `ambula backup`.
            raise DamagedBackupError(
                f"{path} decrypted, but its contents are not a valid backup ({error})."
            ) from None
        except OSError as error:
            raise BackupError(f"Cannot unpack {path} into {staging}: {error}") from None
    return _checked_manifest(staging, extracted, path)


def _checked_manifest(staging: Path, extracted: dict[str, Member], archive: Path) -> dict:
    if MANIFEST not in extracted:
        raise DamagedBackupError(f"{archive} has no manifest.")
    try:
        manifest = json.loads((staging / MANIFEST).read_text())
        listed = {entry["name"]: Member(**entry) for entry in manifest["members"]}
    except (ValueError, KeyError, TypeError):
        raise DamagedBackupError(f"The manifest in {archive} is not valid.") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"{archive} has a manifest of format {manifest.get('format_version')}; this Ambula "
            f"reads format {FORMAT_VERSION}."
        )
    del extracted[MANIFEST]
    missing = sorted(set(listed) - set(extracted))
    unlisted = sorted(set(extracted) - set(listed))
    changed = sorted(
        name for name in listed.keys() & extracted.keys() if listed[name] != extracted[name]
    )
    if missing or unlisted or changed:
        problems = [
            *(f"missing {name}" for name in missing[:5]),
            *(f"not in the manifest: {name}" for name in unlisted[:5]),
            *(f"checksum mismatch: {name}" for name in changed[:5]),
        ]
        raise DamagedBackupError(f"{archive} does not match its manifest: {'; '.join(problems)}.")
    return manifest


def _private_files(directory: Path, skipped: list[str]) -> Iterator[tuple[str, Path]]:
    """Yield (relative posix name, path) for every regular file below `directory`, sorted."""
    if not directory.is_dir():
        return
    for root, directories, files in os.walk(directory):
        directories.sort()
        for name in sorted(files):
            path = Path(root) / name
            if path.is_symlink() or not path.is_file():
                skipped.append(str(path))
                continue
            yield path.relative_to(directory).as_posix(), path
