"""What unlocks an archive: a passphrase or a key file, chosen from the command's options."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ambula.core.backup.errors import BackupError
from ambula.core.backup.stream import KEY_SIZE, KIND_KEY_FILE, KIND_PASSPHRASE, Header

MINIMUM_PASSPHRASE_LENGTH = 12
PASSPHRASE_VARIABLE = "AMBULA_BACKUP_PASSPHRASE"  # noqa: S105  (a variable's name)


class KeySource:
    """What unlocks an archive: a passphrase or a raw 32-byte key. Never shown in a repr."""

    def __init__(self, *, passphrase: str | None = None, key: bytes | None = None):
        if (passphrase is None) == (key is None):
            raise ValueError("Give exactly one of passphrase and key.")
        if passphrase is not None and len(passphrase) < MINIMUM_PASSPHRASE_LENGTH:
            raise BackupError(
                f"The backup passphrase is too short: use at least {MINIMUM_PASSPHRASE_LENGTH} "
                "characters (a few random words make a good one)."
            )
        if key is not None and len(key) != KEY_SIZE:
            raise BackupError(f"A backup key is {KEY_SIZE} bytes, not {len(key)}.")
        self._passphrase = passphrase
        self._key = key

    @property
    def kind(self) -> int:
        return KIND_PASSPHRASE if self._passphrase is not None else KIND_KEY_FILE

    @property
    def description(self) -> str:
        return "passphrase (scrypt)" if self.kind == KIND_PASSPHRASE else "key file"

    def __repr__(self) -> str:
        return f"KeySource({self.description})"

    def master_key(self, header: Header) -> bytes:
        if self._key is not None:
            return self._key
        return Scrypt(
            salt=header.salt, length=KEY_SIZE, n=2**header.log2_n, r=header.r, p=header.p
        ).derive(self._passphrase.encode())


def _read_private_text(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise BackupError(f"The {what} {path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BackupError(f"Cannot read the {what} {path}: {error}") from None


def key_source_from_options(
    *,
    passphrase_file: str | os.PathLike | None = None,
    key_file: str | os.PathLike | None = None,
    environ: Mapping[str, str] | None = None,
) -> KeySource:
    """Return what unlocks backups: --passphrase-file, --key-file, or AMBULA_BACKUP_PASSPHRASE."""
    environ = os.environ if environ is None else environ
    if passphrase_file and key_file:
        raise BackupError("Give either --passphrase-file or --key-file, not both.")
    if passphrase_file:
        # Only the line break an editor adds is dropped; other spaces may be part of it.
        passphrase = _read_private_text(Path(passphrase_file), "passphrase file").rstrip("\r\n")
        if not passphrase:
            raise BackupError(f"The passphrase file {passphrase_file} is empty.")
        return KeySource(passphrase=passphrase)
    if key_file:
        text = _read_private_text(Path(key_file), "key file").strip()
        try:
            key = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != KEY_SIZE:
            raise BackupError(
                f"{key_file} does not hold a backup key ({KEY_SIZE} random bytes in base64); "
                "make one with `ambula backup --new-key-file PATH`."
            )
        return KeySource(key=key)
    if environ.get(PASSPHRASE_VARIABLE):
        return KeySource(passphrase=environ[PASSPHRASE_VARIABLE])
    raise BackupError(
        "No passphrase or key given: use --passphrase-file PATH, the "
        f"{PASSPHRASE_VARIABLE} environment variable, or --key-file PATH."
    )


def key_file_create(path: Path) -> None:
    """Write a new random backup key (base64) to a new file readable by its owner only."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BackupError(
            f"{path} already exists; a key is never overwritten (backups made with it would "
            "become unreadable)."
        ) from None
    except OSError as error:
        raise BackupError(f"Cannot create the key file {path}: {error}") from None
    with os.fdopen(descriptor, "w") as key_file:
        key_file.write(base64.b64encode(secrets.token_bytes(KEY_SIZE)).decode() + "\n")
