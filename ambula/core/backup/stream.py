"""The encrypted stream: the file format, key derivation, and sealing and opening chunks.

File format, version 1 (integers big-endian)::

    header  "AMBULA-BACKUP\\0" | format u16 | key kind u8 | scrypt log2(n) u8 | r u8 | p u8
            | chunk size u32 | salt (16 bytes) | key check (16 bytes)
    chunk   final flag u8 | ciphertext length u32 | nonce (12 bytes) | AES-256-GCM ciphertext
            with the associated data: header | chunk index u64 | final flag u8
    ...     the last chunk, and only it, has the final flag; nothing follows it

The key comes from a passphrase through scrypt, or from a 32-byte key file; either way HKDF
with the archive's random salt turns it into this archive's own data key and a key check value,
so a wrong passphrase is told apart from a damaged file. Nothing is ever held whole in memory.
"""

from __future__ import annotations

import hmac
import os
import secrets
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ambula.core.backup.errors import (
    BackupError,
    DamagedBackupError,
    NotABackupError,
    WrongKeyError,
)
from ambula.core.backup.text import plural

if TYPE_CHECKING:
    from ambula.core.backup.keys import KeySource

MAGIC = b"AMBULA-BACKUP\x00"
FORMAT_VERSION = 1
HEADER = struct.Struct(">14sHBBBBI16s16s")
FRAME = struct.Struct(">BI")  # final flag, ciphertext length; the nonce follows
CHUNK_INDEX = struct.Struct(">QB")  # chunk index, final flag: the per-chunk associated data
NONCE_SIZE = 12
TAG_SIZE = 16
SALT_SIZE = 16
KEY_CHECK_SIZE = 16
KEY_SIZE = 32
CHUNK_SIZE = 1 << 20
MAX_CHUNK_SIZE = 64 << 20

KIND_PASSPHRASE = 1
KIND_KEY_FILE = 2
SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P = 15, 8, 1
# A header may ask for costlier scrypt parameters than ours, but not enough to exhaust memory.
SCRYPT_MAX_MEMORY = 1 << 30


@dataclass(frozen=True)
class Header:
    kind: int
    log2_n: int
    r: int
    p: int
    chunk_size: int
    salt: bytes
    key_check: bytes = bytes(KEY_CHECK_SIZE)

    def pack(self) -> bytes:
        return HEADER.pack(
            MAGIC,
            FORMAT_VERSION,
            self.kind,
            self.log2_n,
            self.r,
            self.p,
            self.chunk_size,
            self.salt,
            self.key_check,
        )

    @classmethod
    def read(cls, file: BinaryIO, name: str) -> Header:
        data = file.read(HEADER.size)
        if not data or not data.startswith(MAGIC[: len(data)]):
            raise NotABackupError(
                f"{name} is not an Ambula backup (it does not begin with the Ambula backup "
                "signature)."
            )
        if len(data) < len(MAGIC) + 2:
            raise DamagedBackupError(f"{name} is truncated: it ends inside its header.")
        (version,) = struct.unpack_from(">H", data, len(MAGIC))
        if version != FORMAT_VERSION:
            raise BackupError(
                f"{name} is in backup format {version}; this Ambula reads format "
                f"{FORMAT_VERSION}. Restore it with the Ambula version that made it, or newer."
            )
        if len(data) < HEADER.size:
            raise DamagedBackupError(f"{name} is truncated: it ends inside its header.")
        _, _, kind, log2_n, r, p, chunk_size, salt, key_check = HEADER.unpack(data)
        header = cls(kind, log2_n, r, p, chunk_size, salt, key_check)
        if not header._plausible():
            raise DamagedBackupError(f"The header of {name} is damaged.")
        return header

    def _plausible(self) -> bool:
        if not 0 < self.chunk_size <= MAX_CHUNK_SIZE:
            return False
        if self.kind == KIND_KEY_FILE:
            return True
        return (
            self.kind == KIND_PASSPHRASE
            and 10 <= self.log2_n <= 24
            and 1 <= self.r <= 32
            and 1 <= self.p <= 16
            and 128 * self.r * 2**self.log2_n <= SCRYPT_MAX_MEMORY
        )


def _derive(key_source: KeySource, header: Header) -> tuple[bytes, bytes]:
    """Return this archive's data key and key check value."""
    material = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_SIZE + KEY_CHECK_SIZE,
        salt=header.salt,
        info=b"ambula backup v1",
    ).derive(key_source.master_key(header))
    return material[:KEY_SIZE], material[KEY_SIZE:]


class _EncryptingWriter:
    """A write-only stream that seals what it is given into authenticated chunks."""

    def __init__(self, raw: BinaryIO, header: bytes, key: bytes, chunk_size: int):
        self._raw, self._header, self._chunk_size = raw, header, chunk_size
        self._aead = AESGCM(key)
        self._buffer = bytearray()
        self._index = 0
        self.closed = False

    def write(self, data) -> int:
        self._buffer += data
        # Strictly more than a chunk: what is left at close always makes the final chunk.
        while len(self._buffer) > self._chunk_size:
            self._seal(bytes(self._buffer[: self._chunk_size]), final=False)
            del self._buffer[: self._chunk_size]
        return len(data)

    def flush(self) -> None:
        self._raw.flush()

    def close(self) -> None:
        if not self.closed:
            self._seal(bytes(self._buffer), final=True)
            self._buffer.clear()
            self.closed = True

    def _seal(self, plaintext: bytes, *, final: bool) -> None:
        nonce = secrets.token_bytes(NONCE_SIZE)
        associated = self._header + CHUNK_INDEX.pack(self._index, final)
        ciphertext = self._aead.encrypt(nonce, plaintext, associated)
        self._raw.write(FRAME.pack(final, len(ciphertext)) + nonce)
        self._raw.write(ciphertext)
        self._index += 1


class _DecryptingReader:
    """A read-only stream that gives back only plaintext whose chunk has been authenticated."""

    def __init__(self, raw: BinaryIO, header: Header, key: bytes, name: str):
        self._raw, self._header, self._name = raw, header, name
        self._associated = header.pack()
        self._aead = AESGCM(key)
        self._buffer = bytearray()
        self._index = 0
        self.finished = False

    def read(self, size: int = -1) -> bytes:
        while not self.finished and (size < 0 or len(self._buffer) < size):
            self._buffer += self._open_next_chunk()
        if size < 0 or size >= len(self._buffer):
            data = bytes(self._buffer)
            self._buffer.clear()
        else:
            data = bytes(self._buffer[:size])
            del self._buffer[:size]
        return data

    def read_to_end(self) -> None:
        """Authenticate every chunk left, discarding its plaintext."""
        while not self.finished:
            self._open_next_chunk()
        self._buffer.clear()

    def _truncated(self) -> DamagedBackupError:
        return DamagedBackupError(
            f"{self._name} is truncated: it ends after {plural(self._index, 'complete chunk')}, "
            "before its final chunk. It is not a complete backup."
        )

    def _damaged(self, detail: str) -> DamagedBackupError:
        return DamagedBackupError(
            f"{self._name} is damaged: chunk {self._index + 1} {detail}. The file was changed "
            "or corrupted after it was written; use another copy of this backup."
        )

    def _open_next_chunk(self) -> bytes:
        frame = self._raw.read(FRAME.size + NONCE_SIZE)
        if len(frame) < FRAME.size + NONCE_SIZE:
            raise self._truncated()
        final, length = FRAME.unpack_from(frame)
        if final not in (0, 1) or not TAG_SIZE <= length <= self._header.chunk_size + TAG_SIZE:
            raise self._damaged("has a damaged frame")
        ciphertext = self._raw.read(length)
        if len(ciphertext) < length:
            raise self._truncated()
        associated = self._associated + CHUNK_INDEX.pack(self._index, final)
        try:
            plaintext = self._aead.decrypt(frame[FRAME.size :], ciphertext, associated)
        except InvalidTag:
            raise self._damaged("failed its integrity check") from None
        self._index += 1
        if final:
            self.finished = True
            if self._raw.read(1):
                raise DamagedBackupError(f"{self._name} is damaged: data follows its final chunk.")
        return plaintext


@dataclass(frozen=True)
class UnlockedArchive:
    """An archive whose header was read and whose key was checked."""

    path: Path
    header: Header
    data_key: bytes = field(repr=False)
    size: int


def archive_unlock(path: Path, key_source: KeySource) -> UnlockedArchive:
    """Read the archive's header and check that the passphrase or key opens it."""
    try:
        with path.open("rb") as archive:
            header = Header.read(archive, str(path))
            size = os.fstat(archive.fileno()).st_size
    except FileNotFoundError:
        raise BackupError(f"{path} does not exist.") from None
    except IsADirectoryError:
        raise NotABackupError(f"{path} is a directory, not an Ambula backup.") from None
    except OSError as error:
        raise BackupError(f"Cannot read {path}: {error}") from None
    if header.kind != key_source.kind:
        needed = (
            "a passphrase (--passphrase-file or AMBULA_BACKUP_PASSPHRASE)"
            if header.kind == KIND_PASSPHRASE
            else "its key file (--key-file)"
        )
        raise WrongKeyError(f"{path} was encrypted with {needed}; give that instead.")
    data_key, key_check = _derive(key_source, header)
    if not hmac.compare_digest(key_check, header.key_check):
        raise WrongKeyError(
            f"Wrong {'passphrase' if header.kind == KIND_PASSPHRASE else 'key'} for {path} "
            "(or its header is damaged): nothing was restored."
        )
    return UnlockedArchive(path=path, header=header, data_key=data_key, size=size)
