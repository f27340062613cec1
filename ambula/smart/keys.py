"""The OpenID Connect signing key: RSA, generated into the data directory on first use.

Like the encryption key ring it may instead come from a variable
(AMBULA_OIDC_RSA_PRIVATE_KEY, PEM), for installations that keep keys out of the data directory.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from django.conf import settings

KEY_FILE = "oidc-rsa.pem"
KEY_VARIABLE = "AMBULA_OIDC_RSA_PRIVATE_KEY"
_lock = threading.Lock()
_cached: dict[Path, str] = {}


def oidc_private_key() -> str:
    """The PEM of the signing key, creating the key file (0600) if there is none yet."""
    if os.environ.get(KEY_VARIABLE):
        return os.environ[KEY_VARIABLE]
    path = Path(settings.KEYS_DIR) / KEY_FILE
    with _lock:
        if path not in _cached:
            _cached[path] = _read_or_create(path)
        return _cached[path]


def _read_or_create(path: Path) -> str:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Another process may be creating it at the same moment: one writes, the other reads.
    lock = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return path.read_text()
        pem = _new_key_pem()
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as key_file:
            key_file.write(pem)
            key_file.flush()
            os.fsync(key_file.fileno())
        return pem
    finally:
        os.close(lock)


def _new_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
