"""Document storage that keeps every file encrypted on disk, in authenticated chunks.

A stored file is a header, then one record per 64 KiB of plaintext::

    header   b"AMBULA-DOC1\\n", the key id's length (1 byte), the key id ("k3")
    record   nonce (12 bytes) || AES-256-GCM ciphertext || tag (16 bytes)

Each record's associated data is the header, the file's storage name, the record's index and
whether it is the last record. A record moved within the file, to another file, or cut off
(so that an earlier record ends the file) fails authentication; an empty file is one empty
last record, so even emptiness is authenticated. Reading decrypts one record at a time and
never holds a whole file in memory.

Names are random (``ab/ab12...``): nothing on disk reveals what a patient uploaded.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation, ValidationError
from django.core.files import File
from django.core.files.storage import FileSystemStorage, storages
from django.template.defaultfilters import filesizeformat
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from ambula.core.encryption import (
    NONCE_BYTES,
    TAG_BYTES,
    DecryptionError,
    active_cipher,
    cipher_for_key,
)

MAGIC = b"AMBULA-DOC1\n"
CHUNK_BYTES = 64 * 1024
RECORD_OVERHEAD = NONCE_BYTES + TAG_BYTES
FULL_RECORD_BYTES = CHUNK_BYTES + RECORD_OVERHEAD
DEFAULT_MAX_BYTES = 25 * 1024 * 1024
NOT_ENCRYPTED = "not encrypted"
_DRAFT_PREFIX = ".draft-"
_RANDOM_NAME_BYTES = 16


class EncryptedFileSystemStorage(FileSystemStorage):
    """A FileSystemStorage whose files are encrypted at rest, private (0600) and randomly named.

    Files larger than ``max_bytes`` (default: the DOCUMENT_MAX_BYTES setting) are refused with
    a ValidationError. Documents have no URL: views serve them through the permission policy.
    """

    def __init__(self, location=None, base_url=None, max_bytes: int | None = None, **options):
        options.setdefault("directory_permissions_mode", 0o700)
        super().__init__(location=location, base_url=base_url, **options)
        self._max_bytes = max_bytes

    @property
    def max_bytes(self) -> int:
        if self._max_bytes is not None:
            return self._max_bytes
        return getattr(settings, "DOCUMENT_MAX_BYTES", DEFAULT_MAX_BYTES)

    def get_available_name(self, name, max_length=None):
        # The name asked for (often the uploaded file's own) is dropped entirely.
        random_part = os.urandom(_RANDOM_NAME_BYTES).hex()
        available = f"{random_part[:2]}/{random_part}"
        if max_length is not None and len(available) > max_length:
            raise SuspiciousFileOperation(
                f"Stored document names are {len(available)} characters; the field allows "
                f"{max_length}."
            )
        return available

    def _save(self, name, content):
        try:
            size = content.size
        except (AttributeError, OSError, ValueError):
            size = None  # a stream of unknown length: checked while it is written
        if size is not None and size > self.max_bytes:
            raise _too_large_error(self.max_bytes)
        full_path = Path(self.path(name))
        full_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        pieces = (piece.encode() if isinstance(piece, str) else piece for piece in content.chunks())
        self._write(full_path, name, pieces, max_bytes=self.max_bytes, replace=False)
        return name

    def _open(self, name, mode="rb"):
        if mode != "rb":
            raise ValueError("Encrypted documents are read-only once stored; open them with 'rb'.")
        return File(DecryptingReader(open(self.path(name), "rb"), name), name=name)

    def size(self, name) -> int:
        with open(self.path(name), "rb") as stored:
            header, _key_id = _read_header(stored)
        return _plaintext_size(os.path.getsize(self.path(name)), len(header))

    def url(self, name):
        raise NotImplementedError(
            "Encrypted documents have no public URL; serve them from a view that checks access."
        )

    # Key rotation

    def names(self) -> Iterator[str]:
        """Yield the storage name of every stored file."""
        for directory, _subdirectories, files in os.walk(self.location):
            for file_name in files:
                if not file_name.startswith("."):
                    path = os.path.join(directory, file_name)
                    yield os.path.relpath(path, self.location).replace(os.sep, "/")

    def key_id_of(self, name: str) -> str:
        """Return the id of the key a file is encrypted with (NOT_ENCRYPTED if it is not)."""
        with open(self.path(name), "rb") as stored:
            try:
                return _read_header(stored)[1]
            except DecryptionError:
                return NOT_ENCRYPTED

    def key_usage(self) -> Counter:
        """Count stored files by the key they are encrypted with."""
        return Counter(self.key_id_of(name) for name in self.names())

    def reencrypt(self, name: str) -> bool:
        """Re-encrypt a file under the active key unless it already is; tell whether it was."""
        active_key_id, _cipher = active_cipher()
        if self.key_id_of(name) in {active_key_id, NOT_ENCRYPTED}:
            return False
        with self.open(name) as decrypted:
            pieces = iter(lambda: decrypted.read(CHUNK_BYTES), b"")
            # No size limit here: a document accepted under a larger limit stays readable.
            self._write(Path(self.path(name)), name, pieces, max_bytes=None, replace=True)
        return True

    def _write(
        self,
        full_path: Path,
        name: str,
        pieces: Iterable[bytes],
        *,
        max_bytes: int | None,
        replace: bool,
    ) -> None:
        # Written whole to a private draft (mkstemp: 0600) beside the target, then put in place,
        # so a reader never meets half a file; a refused upload leaves nothing behind.
        descriptor, draft = tempfile.mkstemp(dir=full_path.parent, prefix=_DRAFT_PREFIX)
        try:
            with os.fdopen(descriptor, "wb") as output:
                for block in _encrypted_blocks(name, pieces, max_bytes=max_bytes):
                    output.write(block)
                output.flush()
                os.fsync(output.fileno())
            if replace:
                os.replace(draft, full_path)
            else:
                os.link(draft, full_path)  # never overwrites another document
        finally:
            if os.path.exists(draft):
                os.unlink(draft)


def encrypted_storages() -> list[EncryptedFileSystemStorage]:
    """Return the configured storages that encrypt, one per location."""
    found = {}
    for alias, configuration in settings.STORAGES.items():
        if issubclass(import_string(configuration["BACKEND"]), EncryptedFileSystemStorage):
            storage = storages[alias]
            found.setdefault(os.path.realpath(storage.location), storage)
    return list(found.values())


class DecryptingReader(io.RawIOBase):
    """A read-only stream of a stored file's plaintext, decrypted one record at a time.

    Raises DecryptionError where the file was altered, truncated, reordered or swapped.
    """

    def __init__(self, raw: io.BufferedReader, name: str):
        super().__init__()
        self._raw = raw
        self._name = name
        try:
            self._header, key_id = _read_header(raw)
            self._cipher = cipher_for_key(key_id)
        except BaseException:
            raw.close()
            raise
        self.size = _plaintext_size(os.fstat(raw.fileno()).st_size, len(self._header))
        self._index = 0
        self._plaintext = b""
        self._offset = 0
        self._finished = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        # Whole reads as a file's read() gives, not one record at a time as raw streams may.
        if size is None or size < 0:
            return self.readall()
        pieces = []
        while size > 0 and (piece := super().read(size)):
            pieces.append(piece)
            size -= len(piece)
        return b"".join(pieces)

    def readinto(self, buffer) -> int:
        while self._offset >= len(self._plaintext):
            if self._finished:
                return 0
            self._read_record()
        count = min(len(buffer), len(self._plaintext) - self._offset)
        buffer[:count] = self._plaintext[self._offset : self._offset + count]
        self._offset += count
        return count

    def close(self) -> None:
        self._raw.close()
        super().close()

    def _read_record(self) -> None:
        record = self._raw.read(FULL_RECORD_BYTES)
        if len(record) < RECORD_OVERHEAD:
            raise DecryptionError(f"Document {self._name} is truncated.")
        # A full record is the last one only if nothing follows it.
        last = len(record) < FULL_RECORD_BYTES or not self._raw.peek(1)
        associated_data = _record_aad(self._header, self._name, self._index, last=last)
        try:
            self._plaintext = self._cipher.decrypt(
                record[:NONCE_BYTES], record[NONCE_BYTES:], associated_data
            )
        except InvalidTag:
            raise DecryptionError(
                f"Document {self._name} failed authentication at chunk {self._index}: it was "
                "altered, truncated, reordered or swapped with another file."
            ) from None
        self._offset = 0
        self._index += 1
        self._finished = last


def _encrypted_blocks(
    name: str, pieces: Iterable[bytes], *, max_bytes: int | None
) -> Iterator[bytes]:
    key_id, cipher = active_cipher()
    encoded_key_id = key_id.encode("ascii")
    header = MAGIC + bytes([len(encoded_key_id)]) + encoded_key_id
    yield header

    def seal(chunk: bytes, index: int, *, last: bool) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        aad = _record_aad(header, name, index, last=last)
        return nonce + cipher.encrypt(nonce, chunk, aad)

    buffer = bytearray()
    index = total = 0
    for piece in pieces:
        total += len(piece)
        if max_bytes is not None and total > max_bytes:
            raise _too_large_error(max_bytes)
        buffer += piece
        start = 0
        # Strictly more than a chunk: only then is this chunk known not to be the last.
        while len(buffer) - start > CHUNK_BYTES:
            yield seal(bytes(buffer[start : start + CHUNK_BYTES]), index, last=False)
            start += CHUNK_BYTES
            index += 1
        del buffer[:start]
    yield seal(bytes(buffer), index, last=True)


def _record_aad(header: bytes, name: str, index: int, *, last: bool) -> bytes:
    return b"".join(
        [header, name.encode(), b"\x00", index.to_bytes(8, "big"), b"\x01" if last else b"\x00"]
    )


def _read_header(stored) -> tuple[bytes, str]:
    magic = stored.read(len(MAGIC) + 1)
    if len(magic) != len(MAGIC) + 1 or not magic.startswith(MAGIC):
        raise DecryptionError("Not an encrypted document.")
    key_id_bytes = stored.read(magic[-1])
    if len(key_id_bytes) != magic[-1]:
        raise DecryptionError("Not an encrypted document: the header is truncated.")
    try:
        key_id = key_id_bytes.decode("ascii")
    except UnicodeDecodeError:
        raise DecryptionError("Not an encrypted document: the key id is garbled.") from None
    return magic + key_id_bytes, key_id


def _plaintext_size(file_size: int, header_size: int) -> int:
    body = file_size - header_size
    records = max(1, -(-body // FULL_RECORD_BYTES))
    return max(0, body - records * RECORD_OVERHEAD)


def _too_large_error(max_bytes: int) -> ValidationError:
    return ValidationError(
        _("Documents can be at most %(limit)s."),
        code="file_too_large",
        params={"limit": filesizeformat(max_bytes)},
    )
