"""Encrypted document storage (ambula/core/storage.py)."""

import os
import re
import stat
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from ambula.core.encryption import KEYS_VARIABLE, DecryptionError, key_ring_add_key
from ambula.core.storage import (
    CHUNK_BYTES,
    FULL_RECORD_BYTES,
    NOT_ENCRYPTED,
    DecryptingReader,
    EncryptedFileSystemStorage,
)

HEADER_BYTES = len(b"AMBULA-DOC1\n") + 1 + len("k1")


@pytest.fixture(autouse=True)
def key_dir(settings, tmp_path, monkeypatch):
    monkeypatch.delenv(KEYS_VARIABLE, raising=False)
    settings.KEYS_DIR = tmp_path / "keys"
    return settings.KEYS_DIR


@pytest.fixture
def storage(tmp_path):
    return EncryptedFileSystemStorage(location=tmp_path / "documents")


def on_disk(storage, name) -> Path:
    return Path(storage.path(name))


def read_all(storage, name) -> bytes:
    with storage.open(name) as document:
        return document.read()


class Stream:
    """A file-like object of unknown length that can be read only once, like a request body."""

    def __init__(self, data: bytes):
        self._remaining = data

    def read(self, size=-1):
        size = len(self._remaining) if size is None or size < 0 else size
        piece, self._remaining = self._remaining[:size], self._remaining[size:]
        return piece


@pytest.mark.parametrize(
    "size",
    [0, 1, 1000, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 3 * CHUNK_BYTES, 200_000],
)
def test_a_document_round_trips_at_every_size(storage, size):
    data = os.urandom(size)

    name = storage.save("scan.pdf", ContentFile(data))

    assert read_all(storage, name) == data
    assert storage.size(name) == size
    with storage.open(name) as document:
        assert document.size == size
        assert b"".join(document.chunks(chunk_size=1000)) == data
    records = max(1, -(-size // CHUNK_BYTES))
    assert on_disk(storage, name).stat().st_size == HEADER_BYTES + size + records * 28


def test_a_document_is_read_as_a_stream(storage):
    data = os.urandom(5 * CHUNK_BYTES)
    name = storage.save("big.pdf", ContentFile(data))
    path = on_disk(storage, name)
    # Spoil the fourth record: the first ones still stream out before the error surfaces.
    with path.open("r+b") as stored:
        stored.seek(HEADER_BYTES + 3 * FULL_RECORD_BYTES + 100)
        byte = stored.read(1)
        stored.seek(-1, os.SEEK_CUR)
        stored.write(bytes([byte[0] ^ 0xFF]))

    with storage.open(name) as document:
        assert document.read(10) == data[:10]
        assert document.read(3 * CHUNK_BYTES - 10) == data[10 : 3 * CHUNK_BYTES]
        with pytest.raises(DecryptionError, match="chunk 3"):
            document.read(CHUNK_BYTES)


def test_text_content_is_stored_as_utf8(storage):
    name = storage.save("note.txt", ContentFile("Zoë — 患者"))

    assert read_all(storage, name) == "Zoë — 患者".encode()


def test_names_are_random_and_reveal_nothing(storage):
    first = storage.save("jane-doe-hiv-results.pdf", ContentFile(b"a"))
    second = storage.save("jane-doe-hiv-results.pdf", ContentFile(b"a"))

    assert first != second
    for name in (first, second):
        assert re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]{32}", name)
        assert name.startswith(name.split("/")[1][:2])


def test_files_are_private_to_the_owner(storage):
    name = storage.save("a.pdf", ContentFile(b"private"))

    path = on_disk(storage, name)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    # No draft left beside it.
    assert [entry.name for entry in path.parent.iterdir()] == [path.name]


def test_the_bytes_on_disk_hold_none_of_the_plaintext(storage):
    data = b"MARKER-Pangolin-3317 Jane Doe, DOB 1931-07-19, HIV positive. " * 3000

    name = storage.save("a.txt", ContentFile(data))

    on_disk_bytes = on_disk(storage, name).read_bytes()
    for marker in (b"Pangolin", b"Jane Doe", b"1931-07-19", data[:16]):
        assert marker not in on_disk_bytes


# Tampering


def tamper(path: Path, change) -> None:
    path.write_bytes(change(path.read_bytes()))


def flip_at(offset: int):
    def change(data: bytes) -> bytes:
        return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]

    return change


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(flip_at(0), id="magic"),
        pytest.param(flip_at(HEADER_BYTES - 1), id="key id"),
        pytest.param(flip_at(HEADER_BYTES + 3), id="first nonce"),
        pytest.param(flip_at(HEADER_BYTES + 12 + 500), id="first ciphertext"),
        pytest.param(flip_at(HEADER_BYTES + FULL_RECORD_BYTES - 1), id="first tag"),
        pytest.param(flip_at(-1), id="last tag"),
        pytest.param(lambda data: data[:-1], id="last byte cut"),
        pytest.param(lambda data: data[: HEADER_BYTES + FULL_RECORD_BYTES], id="last chunk cut"),
        pytest.param(lambda data: data[: HEADER_BYTES + 2 * FULL_RECORD_BYTES], id="cut at chunk"),
        pytest.param(lambda data: data[:HEADER_BYTES], id="only the header"),
        pytest.param(lambda data: b"", id="emptied"),
        pytest.param(
            lambda data: (
                data[:HEADER_BYTES]
                + data[HEADER_BYTES + FULL_RECORD_BYTES : HEADER_BYTES + 2 * FULL_RECORD_BYTES]
                + data[HEADER_BYTES : HEADER_BYTES + FULL_RECORD_BYTES]
                + data[HEADER_BYTES + 2 * FULL_RECORD_BYTES :]
            ),
            id="chunks swapped",
        ),
        pytest.param(
            lambda data: data + data[HEADER_BYTES : HEADER_BYTES + FULL_RECORD_BYTES],
            id="chunk appended",
        ),
    ],
)
def test_a_tampered_document_fails_to_read(storage, change):
    name = storage.save("a.pdf", ContentFile(os.urandom(2 * CHUNK_BYTES + 5000)))

    tamper(on_disk(storage, name), change)

    with pytest.raises(DecryptionError):
        read_all(storage, name)


def test_swapping_two_documents_is_detected(storage):
    first = storage.save("a.pdf", ContentFile(b"first patient's results"))
    second = storage.save("b.pdf", ContentFile(b"other patient's results"))
    first_bytes = on_disk(storage, first).read_bytes()

    on_disk(storage, first).write_bytes(on_disk(storage, second).read_bytes())
    on_disk(storage, second).write_bytes(first_bytes)

    for name in (first, second):
        with pytest.raises(DecryptionError, match="swapped"):
            read_all(storage, name)


def test_an_empty_document_cannot_be_truncated_into_another(storage):
    name = storage.save("empty.txt", ContentFile(b""))
    assert read_all(storage, name) == b""

    tamper(on_disk(storage, name), lambda data: data[:HEADER_BYTES])

    with pytest.raises(DecryptionError, match="truncated"):
        read_all(storage, name)


def test_a_plain_file_is_not_taken_for_a_document(storage, tmp_path):
    path = tmp_path / "documents" / "ab" / ("ab" + "0" * 30)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"%PDF-1.7 plaintext")

    with pytest.raises(DecryptionError, match="Not an encrypted document"):
        read_all(storage, "ab/ab" + "0" * 30)
    assert storage.key_usage() == {NOT_ENCRYPTED: 1}


# Limits and misuse


def test_a_document_over_the_limit_is_refused_before_anything_is_written(tmp_path):
    storage = EncryptedFileSystemStorage(location=tmp_path / "documents", max_bytes=1000)

    with pytest.raises(ValidationError) as refused:
        storage.save("big.pdf", ContentFile(b"x" * 1001))

    assert refused.value.code == "file_too_large"
    assert "1000" in refused.value.messages[0]
    assert not (tmp_path / "documents").exists() or not any((tmp_path / "documents").rglob("*"))
    assert read_all(storage, storage.save("ok.pdf", ContentFile(b"x" * 1000))) == b"x" * 1000


def test_a_stream_of_unknown_length_over_the_limit_leaves_nothing_behind(tmp_path):
    storage = EncryptedFileSystemStorage(location=tmp_path / "documents", max_bytes=3 * CHUNK_BYTES)
    upload = File(Stream(os.urandom(3 * CHUNK_BYTES + 1)), name="upload.bin")
    with pytest.raises(AttributeError):
        upload.size  # noqa: B018  (the limit cannot be checked up front)

    with pytest.raises(ValidationError):
        storage.save("upload.bin", upload)

    assert [path for path in (tmp_path / "documents").rglob("*") if path.is_file()] == []


def test_the_limit_defaults_to_the_setting(settings, tmp_path):
    settings.DOCUMENT_MAX_BYTES = 10
    storage = EncryptedFileSystemStorage(location=tmp_path / "documents")

    with pytest.raises(ValidationError):
        storage.save("a.txt", ContentFile(b"x" * 11))


def test_the_default_limit_is_25_mib(settings):
    assert settings.DOCUMENT_MAX_BYTES == 25 * 1024 * 1024


def test_documents_have_no_url_and_open_read_only(storage):
    name = storage.save("a.pdf", ContentFile(b"a"))

    with pytest.raises(NotImplementedError, match="no public URL"):
        storage.url(name)
    with pytest.raises(ValueError, match="read-only"):
        storage.open(name, "wb")


def test_the_documents_storage_is_configured_encrypted(settings):
    documents = storages["documents"]

    assert isinstance(documents, EncryptedFileSystemStorage)
    assert Path(documents.location) == settings.DATA_DIR / "documents"


# Rotation


def test_documents_are_reencrypted_under_a_new_key_and_stay_readable(storage):
    data = os.urandom(CHUNK_BYTES + 10)
    name = storage.save("a.pdf", ContentFile(data))
    before = on_disk(storage, name).read_bytes()
    assert storage.key_usage() == {"k1": 1}

    key_ring_add_key()
    assert storage.reencrypt(name) is True
    assert storage.reencrypt(name) is False

    assert storage.key_usage() == {"k2": 1}
    assert on_disk(storage, name).read_bytes() != before
    assert stat.S_IMODE(on_disk(storage, name).stat().st_mode) == 0o600
    assert read_all(storage, name) == data


def test_a_document_under_an_unknown_key_is_refused(storage):
    name = storage.save("a.pdf", ContentFile(b"a"))

    tamper(on_disk(storage, name), lambda data: data.replace(b"k1", b"k9", 1))

    with pytest.raises(DecryptionError, match="k9, which is not in the key ring"):
        read_all(storage, name)


def test_the_reader_closes_the_file_when_the_header_is_bad(storage, tmp_path):
    path = tmp_path / "plain"
    path.write_bytes(b"not a document")
    raw = path.open("rb")

    with pytest.raises(DecryptionError):
        DecryptingReader(raw, "plain")
    assert raw.closed
