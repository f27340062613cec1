"""Encryption at rest: AES-256-GCM under a rotating key ring, and keyed blind indexes.

A value encrypts to the token ``enc1:<key id>:<urlsafe base64 of nonce || ciphertext || tag>``
(no padding): plain ASCII that fits any text column. The caller's associated data (AAD) binds
the token to where it is stored (``table.column.pk`` for model fields), so a token copied to
another row or column fails to decrypt instead of revealing someone else's value.

The key ring holds numbered keys ("k1", "k2", ...): the active one encrypts, every one
decrypts. It comes from AMBULA_ENCRYPTION_KEYS when that is set, else from
``KEYS_DIR/encryption.json``, created 0600 with one random key on first use. Its blind-index
key is separate and never rotated: an index computed today must match the same value for as
long as the row lives.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import hmac
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ambula.config import read_or_create_private_file

TOKEN_VERSION = "enc1"  # noqa: S105  (a format tag, not a secret)
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96 bits, the size GCM is specified for
TAG_BYTES = 16
KEYS_VARIABLE = "AMBULA_ENCRYPTION_KEYS"
KEY_RING_FILE = "encryption.json"
# How often a process looks whether the key file changed under it (a rotation by
# `ambula keys rotate` in another process), so it starts encrypting with the new key.
KEY_RING_RECHECK_SECONDS = 30

KEY_ID_PATTERN = re.compile(r"k[1-9][0-9]{0,5}")
_TOKEN_HEAD = re.compile(r"enc1:(k[1-9][0-9]{0,5}):")
# The unpadded base64 of a nonce and a tag around an empty plaintext.
_SHORTEST_PAYLOAD = 38
_BLIND_INDEX_CONTEXT = b"ambula.blind-index\x00"


class DecryptionError(Exception):
    """A value could not be decrypted: malformed, under an unknown key, altered, or moved.

    The message never quotes the value: it may be ciphertext, or plaintext stored by mistake.
    """


class KeyRingError(Exception):
    """A change to the key ring was refused; the message says what to do instead."""


@dataclass(frozen=True)
class KeyRing:
    """Numbered AES-256 keys (the active one encrypts) and the blind-index key."""

    active_key_id: str
    keys: Mapping[str, bytes] = field(repr=False)
    index_key: bytes = field(repr=False)
    # The key file it was read from; None when it came from AMBULA_ENCRYPTION_KEYS.
    path: Path | None = None
    _ciphers: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _purpose_keys: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def key_ids(self) -> list[str]:
        return sorted(self.keys, key=_key_number)

    @property
    def source(self) -> str:
        return str(self.path) if self.path is not None else f"the {KEYS_VARIABLE} variable"

    def cipher(self, key_id: str) -> AESGCM:
        if key_id not in self.keys:
            raise DecryptionError(f"The value is under key {key_id}, which is not in the key ring.")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            cipher = self._ciphers[key_id] = AESGCM(self.keys[key_id])
        return cipher

    def purpose_key(self, purpose: str) -> bytes:
        # One derived key per purpose: equal SSN and member id values get unrelated indexes.
        key = self._purpose_keys.get(purpose)
        if key is None:
            message = _BLIND_INDEX_CONTEXT + purpose.encode()
            key = hmac.new(self.index_key, message, hashlib.sha256).digest()
            self._purpose_keys[purpose] = key
        return key

    def with_new_active_key(self) -> KeyRing:
        key_id = f"k{max(map(_key_number, self.keys)) + 1}"
        keys = {**self.keys, key_id: _random_bytes(KEY_BYTES)}
        return KeyRing(key_id, keys, self.index_key, self.path)

    def without_key(self, key_id: str) -> KeyRing:
        if key_id not in self.keys:
            raise KeyRingError(f"There is no key {key_id}; the keys are {', '.join(self.key_ids)}.")
        if key_id == self.active_key_id:
            raise KeyRingError(f"{key_id} is the active key; rotate to a new key first.")
        keys = {other: key for other, key in self.keys.items() if other != key_id}
        return KeyRing(self.active_key_id, keys, self.index_key, self.path)

    def to_json(self) -> str:
        document = {
            "active": self.active_key_id,
            "keys": {key_id: _b64encode_standard(self.keys[key_id]) for key_id in self.key_ids},
            "index_key": _b64encode_standard(self.index_key),
        }
        return json.dumps(document, indent=2) + "\n"


# Encrypting and decrypting values


def encrypt(plaintext: bytes, *, aad: bytes) -> str:
    """Encrypt under the active key, bound to `aad`; return an ASCII token."""
    ring = key_ring()
    nonce = _random_bytes(NONCE_BYTES)
    sealed = ring.cipher(ring.active_key_id).encrypt(nonce, plaintext, aad)
    return f"{TOKEN_VERSION}:{ring.active_key_id}:{_b64encode_url(nonce + sealed)}"


def decrypt(token: str, *, aad: bytes) -> bytes:
    """Decrypt a token made by `encrypt` with the same `aad`, or raise DecryptionError."""
    key_id, sealed = _parse_token(token)
    try:
        return cipher_for_key(key_id).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except InvalidTag:
        raise DecryptionError(
            "The value failed authentication: it was altered, or it belongs to another row "
            "or column."
        ) from None


def token_key_id(token: str) -> str:
    """Return the id of the key a token was made with, or raise DecryptionError."""
    return _parse_token(token)[0]


def is_token(value: object) -> bool:
    """Tell whether the value looks like a token (its authenticity is not checked)."""
    try:
        _parse_token(value)
    except DecryptionError:
        return False
    return True


def blind_index(value: str, *, purpose: str) -> str:
    """Return a keyed hash of `value` for equality lookups: 64 hex digits, keyed per purpose."""
    if not isinstance(value, str):
        raise TypeError("blind_index() takes a str value.")
    if not purpose:
        raise ValueError("blind_index() needs a purpose, such as 'patients.ssn'.")
    purpose_key = key_ring().purpose_key(purpose)
    return hmac.new(purpose_key, value.encode(), hashlib.sha256).hexdigest()


def cipher_for_key(key_id: str) -> AESGCM:
    """Return the cipher for a key id, reading the key file again if another process added it."""
    ring = key_ring()
    if key_id not in ring.keys and _key_file_changed():
        ring = reload_key_ring()
    return ring.cipher(key_id)


def active_cipher() -> tuple[str, AESGCM]:
    """Return the active key's id and cipher, for callers that frame their own ciphertext."""
    ring = key_ring()
    return ring.active_key_id, ring.cipher(ring.active_key_id)


def _parse_token(token: str) -> tuple[str, bytes]:
    if not isinstance(token, str):
        raise DecryptionError("Not an encrypted value: expected a token string.")
    head = _TOKEN_HEAD.match(token)
    encoded = token[head.end() :] if head else ""
    if len(encoded) < _SHORTEST_PAYLOAD:
        raise DecryptionError("Not an encrypted value: the token is malformed.")
    try:
        sealed = base64.b64decode(encoded + "=" * (-len(encoded) % 4), b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise DecryptionError("Not an encrypted value: the token is malformed.") from None
    # One spelling per ciphertext: re-encoding rejects "+" and "/" (which the decoder lets
    # through) and stray trailing bits, either of which would let two strings decrypt alike.
    if _b64encode_url(sealed) != encoded:
        raise DecryptionError("Not an encrypted value: the token is malformed.")
    return head.group(1), sealed


# The key ring


@dataclass
class _CachedRing:
    source: tuple[str, object]
    ring: KeyRing
    file_signature: tuple | None
    checked_at: float


_cached: _CachedRing | None = None
_cache_lock = threading.Lock()


def key_ring() -> KeyRing:
    """Return this process's key ring, loading it on first use and after a rotation."""
    source = _current_source()
    cached = _cached
    if cached is not None and cached.source == source and not _cache_is_stale(cached):
        return cached.ring
    with _cache_lock:
        return _load(source).ring


def reload_key_ring() -> KeyRing:
    """Read the key ring again (after `ambula keys rotate` or a changed variable)."""
    with _cache_lock:
        return _load(_current_source()).ring


def key_ring_file_path() -> Path:
    return Path(settings.KEYS_DIR) / KEY_RING_FILE


def read_key_ring_file(path: Path) -> KeyRing:
    """Read the key file, first creating it (0600, one random key) if it is missing."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = read_or_create_private_file(path, generate_key_ring_json)
    return parse_key_ring(text, origin=str(path), path=path)


def generate_key_ring_json() -> str:
    """Return a new key ring document: one random key, k1, and a random blind-index key."""
    ring = KeyRing("k1", {"k1": _random_bytes(KEY_BYTES)}, _random_bytes(KEY_BYTES), None)
    return ring.to_json()


def parse_key_ring(text: str, *, origin: str, path: Path | None = None) -> KeyRing:
    """Check and decode a key ring document; raise ImproperlyConfigured naming the problem."""
    try:
        document = json.loads(text)
    except ValueError:
        raise ImproperlyConfigured(f"{origin} is not valid JSON.") from None
    if not isinstance(document, dict):
        raise ImproperlyConfigured(f"{origin} must be a JSON object.")
    encoded_keys = document.get("keys")
    if not isinstance(encoded_keys, dict) or not encoded_keys:
        raise ImproperlyConfigured(
            f'{origin} needs "keys", like {{"k1": "<base64 of 32 random bytes>"}}.'
        )
    keys = {}
    for key_id, encoded in encoded_keys.items():
        if not KEY_ID_PATTERN.fullmatch(key_id):
            raise ImproperlyConfigured(
                f"{origin}: key ids are k1, k2, k3 ..., not {key_id[:20]!r}."
            )
        keys[key_id] = _decode_key(encoded, f"{origin}: key {key_id}")
    active = document.get("active")
    if active not in keys:
        raise ImproperlyConfigured(
            f'{origin}: "active" must name one of its keys ({", ".join(sorted(keys))}).'
        )
    index_key = _decode_key(document.get("index_key"), f'{origin}: "index_key"')
    if index_key in keys.values():
        raise ImproperlyConfigured(f'{origin}: "index_key" must differ from every key.')
    return KeyRing(active, keys, index_key, path)


def key_ring_add_key() -> KeyRing:
    """Add a new random key to the key file and make it the active one."""
    path = _writable_key_file()
    with _key_file_locked(path):
        ring = read_key_ring_file(path).with_new_active_key()
        _replace_private_file(path, ring.to_json())
    return reload_key_ring()


def key_ring_remove_key(key_id: str) -> KeyRing:
    """Delete a key from the key file. Values still under it could never be read again."""
    path = _writable_key_file()
    with _key_file_locked(path):
        ring = read_key_ring_file(path).without_key(key_id)
        _replace_private_file(path, ring.to_json())
    return reload_key_ring()


def _current_source() -> tuple[str, object]:
    # Looked up on every use, so that a changed variable or KEYS_DIR takes effect; kept to a
    # dictionary lookup and a comparison, since every encrypt and decrypt pays for it.
    variable = os.environ.get(KEYS_VARIABLE)
    if variable:
        return ("variable", variable)
    return ("file", settings.KEYS_DIR)


def _load(source: tuple[str, object]) -> _CachedRing:
    global _cached
    kind, value = source
    if kind == "variable":
        ring = parse_key_ring(value, origin=KEYS_VARIABLE)
        signature = None
    else:
        path = Path(value) / KEY_RING_FILE
        ring = read_key_ring_file(path)
        signature = _file_signature(path)
    _cached = _CachedRing(source, ring, signature, time.monotonic())
    return _cached


def _cache_is_stale(cached: _CachedRing) -> bool:
    if cached.file_signature is None:
        return False
    if time.monotonic() - cached.checked_at < KEY_RING_RECHECK_SECONDS:
        return False
    if _file_signature(cached.ring.path) != cached.file_signature:
        return True
    cached.checked_at = time.monotonic()
    return False


def _key_file_changed() -> bool:
    cached = _cached
    return (
        cached is not None
        and cached.file_signature is not None
        and _file_signature(cached.ring.path) != cached.file_signature
    )


def _file_signature(path: Path) -> tuple | None:
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    # A rotation replaces the file, so the inode changes even within one mtime tick.
    return (status.st_ino, status.st_mtime_ns, status.st_size)


def _writable_key_file() -> Path:
    if os.environ.get(KEYS_VARIABLE):
        raise KeyRingError(
            f"The keys come from {KEYS_VARIABLE}, which Ambula cannot change. Edit the variable "
            "instead (add a key and make it active, or remove the retired key), restart Ambula, "
            "then run `ambula keys reencrypt`."
        )
    return key_ring_file_path()


@contextmanager
def _key_file_locked(path: Path) -> Iterator[None]:
    # Two rotations at once must not both create a "k2": the second waits, then adds "k3".
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _replace_private_file(path: Path, text: str) -> None:
    """Write the file whole (0600) and swap it into place: readers see the old or the new."""
    descriptor, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w") as draft_file:
            draft_file.write(text)
            draft_file.flush()
            os.fsync(draft_file.fileno())
        os.replace(draft, path)
    except BaseException:
        os.unlink(draft)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _decode_key(encoded: object, what: str) -> bytes:
    if not isinstance(encoded, str):
        raise ImproperlyConfigured(f"{what} must be a base64 string of {KEY_BYTES} random bytes.")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(f"{what} is not valid base64.") from None
    if len(key) != KEY_BYTES:
        raise ImproperlyConfigured(
            f"{what} is {len(key)} bytes; it must be {KEY_BYTES} "
            f"(make one with `openssl rand -base64 {KEY_BYTES}`)."
        )
    return key


def _random_bytes(count: int) -> bytes:
    # The kernel's CSPRNG directly (as `secrets` uses): a test patching secrets.token_bytes for
    # its own predictable values must not hand the cipher a nonce or key of the wrong size.
    return os.urandom(count)


def _key_number(key_id: str) -> int:
    return int(key_id[1:])


def _b64encode_url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64encode_standard(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
