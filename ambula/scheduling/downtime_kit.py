"""The downtime kit's file: the gathered schedule and summaries, sealed, in one HTML page.

`downtime_kit_export` writes a self-contained HTML file holding what `downtime` gathers. The
data is never in clear in the file. It is JSON, gzip-compressed, then encrypted with
AES-256-GCM under a key derived from a passphrase by PBKDF2-HMAC-SHA256 (600,000 iterations,
OWASP's figure for it). PBKDF2 rather than the backups' scrypt because browsers' WebCrypto
offers PBKDF2 and not scrypt, and the file must open with nothing but a browser: its own
script derives the same key, decrypts and builds the page with `textContent`. The HTML around
the ciphertext holds no PHI (the practice's name, the dates covered, when it was made).

Every patient in the kit gets an audited read, with the export itself.
"""

from __future__ import annotations

import base64
import getpass
import gzip
import hashlib
import json
import os
import secrets
import tempfile
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from django.core.exceptions import ValidationError
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.timezone import now as timezone_now
from django.utils.translation import gettext as _

from ambula.accounts.models import User
from ambula.audit.services import batched, record
from ambula.core.selectors import practice_get
from ambula.scheduling.downtime import KitContents, downtime_kit_contents, location_named
from ambula.scheduling.models import Location

MINIMUM_PASSPHRASE_LENGTH = 12
PASSPHRASE_VARIABLE = "AMBULA_DOWNTIME_PASSPHRASE"  # noqa: S105  (a variable's name)
PBKDF2_ITERATIONS = 600_000
SALT_SIZE = 16
NONCE_SIZE = 12
KEY_SIZE = 32
# Bound into the ciphertext as associated data: a later format cannot be mistaken for this one.
FORMAT = "ambula-downtime-kit/1"
AUDIT_CATEGORY = "export"
STATIC = Path(__file__).parent / "static" / "scheduling"
KIT_SCRIPT = STATIC / "downtime-kit.js"
KIT_STYLE = STATIC / "downtime-kit.css"
# RFC 4648's base32 letters in lower case: no 0/1/8/9 to mistake for o/l/b/g, and a phone
# types them without the shift key.
PASSPHRASE_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # noqa: S105  (its letters)
PASSPHRASE_GROUPS, PASSPHRASE_GROUP_SIZE = 5, 4  # 20 characters of 5 bits: 100 bits


# --- The passphrase ------------------------------------------------------------------------------


def passphrase_generate() -> str:
    """A new random passphrase: five groups of four base32 characters (100 bits)."""
    return "-".join(
        "".join(secrets.choice(PASSPHRASE_ALPHABET) for _position in range(PASSPHRASE_GROUP_SIZE))
        for _group in range(PASSPHRASE_GROUPS)
    )


def passphrase_check(passphrase: str) -> None:
    """Refuse a passphrase too short to stand up to guessing once the file is out of hand."""
    if len(passphrase) < MINIMUM_PASSPHRASE_LENGTH:
        raise ValidationError(
            _(
                "The passphrase is too short: use at least %(minimum)d characters "
                "(a few random words make a good one)."
            ),
            code="passphrase_too_short",
            params={"minimum": MINIMUM_PASSPHRASE_LENGTH},
        )


def passphrase_from_options(
    *, passphrase_file: str | os.PathLike | None, environ: Mapping[str, str] | None = None
) -> str | None:
    """The passphrase from --passphrase-file (its first line) or the environment, else None."""
    environ = os.environ if environ is None else environ
    if passphrase_file:
        try:
            text = Path(passphrase_file).read_text()
        except (OSError, UnicodeDecodeError) as error:
            raise ValidationError(
                _("Cannot read the passphrase file %(path)s: %(error)s"),
                code="passphrase_file_unreadable",
                params={"path": passphrase_file, "error": getattr(error, "strerror", error)},
            ) from None
        # Only the line break an editor adds is dropped; other spaces may be part of it.
        passphrase = text.splitlines()[0] if text else ""
        if not passphrase:
            raise ValidationError(
                _("The passphrase file %(path)s is empty."),
                code="passphrase_file_empty",
                params={"path": passphrase_file},
            )
        return passphrase
    return environ.get(PASSPHRASE_VARIABLE) or None


# --- Encryption ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SealedData:
    """What the page needs to decrypt: everything but the passphrase."""

    salt: bytes
    nonce: bytes
    iterations: int
    ciphertext: bytes

    def as_envelope(self) -> dict:
        encode = lambda raw: base64.b64encode(raw).decode("ascii")  # noqa: E731
        return {
            "format": FORMAT,
            "kdf": "PBKDF2-SHA256",
            "cipher": "AES-256-GCM",
            "compression": "gzip",
            "iterations": self.iterations,
            "salt": encode(self.salt),
            "nonce": encode(self.nonce),
            "ciphertext": encode(self.ciphertext),
        }


def passphrase_key(passphrase: str, salt: bytes, iterations: int = PBKDF2_ITERATIONS) -> bytes:
    """The AES key for a passphrase; NFC first, as the page does, so accents type either way."""
    normalised = unicodedata.normalize("NFC", passphrase).encode()
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, iterations=iterations)
    return kdf.derive(normalised)


def data_seal(data: dict, passphrase: str) -> SealedData:
    """Compress and encrypt the kit's data under a key derived from the passphrase."""
    salt, nonce = secrets.token_bytes(SALT_SIZE), secrets.token_bytes(NONCE_SIZE)
    key = passphrase_key(passphrase, salt)
    plaintext = gzip.compress(json.dumps(data, ensure_ascii=False).encode(), mtime=0)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, FORMAT.encode())
    return SealedData(salt, nonce, PBKDF2_ITERATIONS, ciphertext)


# --- The file ------------------------------------------------------------------------------------


def _sha256_base64(text: str) -> str:
    """The digest a Content-Security-Policy names an inline script or style by."""
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def kit_render(contents: KitContents, sealed: SealedData, *, location: Location | None) -> str:
    """The HTML page: the sealed data, its own script and style, and a CSP allowing only them."""
    script, style = KIT_SCRIPT.read_text(), KIT_STYLE.read_text()
    practice = practice_get()
    return render_to_string(
        "scheduling/downtime_kit.html",
        {
            "practice": practice.name if practice else "",
            "location": location,
            "first_day": contents.first_day,
            "last_day": contents.last_day,
            "generated": timezone.localtime(timezone_now()),
            "envelope": sealed.as_envelope(),
            "script": script,
            "style": style,
            "script_hash": _sha256_base64(script),
            "style_hash": _sha256_base64(style),
        },
    )


def _check_target(path: Path, *, force: bool) -> None:
    if path.is_dir():
        raise ValidationError(
            _("%(path)s is a directory: name the file to write."),
            code="target_is_directory",
            params={"path": path},
        )
    if not path.parent.is_dir():
        raise ValidationError(
            _("The directory %(path)s does not exist."),
            code="no_such_directory",
            params={"path": path.parent},
        )
    if path.exists() and not force:
        raise _exists(path)


def _write_temporary(directory: Path, content: bytes) -> Path:
    """Write a hidden file readable by its owner only (mkstemp's 0600) in `directory`."""
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".downtime-kit-")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return Path(temporary)


def _write_new(path: Path, content: bytes) -> None:
    """Write a file that must not exist yet, readable by its owner only."""
    try:
        # O_EXCL: a file that appeared since the check is refused, never overwritten.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise _exists(path) from None
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _exists(path: Path) -> ValidationError:
    return ValidationError(
        _("%(path)s already exists; give --force to replace it."),
        code="target_exists",
        params={"path": path},
    )


@dataclass(frozen=True)
class KitExport:
    path: Path
    appointment_count: int
    patient_count: int
    first_day: date
    last_day: date


def downtime_kit_export(
    *,
    actor: User | None,
    path: Path,
    days: int,
    passphrase: str,
    location_name: str = "",
    force: bool = False,
) -> KitExport:
    """Write the encrypted downtime kit to `path` (0600) and record the export and its reads."""
    passphrase_check(passphrase)
    path = Path(path).expanduser().absolute()
    _check_target(path, force=force)
    location = location_named(location_name) if location_name else None
    contents = downtime_kit_contents(actor=actor, days=days, location=location)
    sealed = data_seal(contents.data, passphrase)
    html = kit_render(contents, sealed, location=location)

    def record_export() -> None:
        with batched():
            _record_export(actor, contents, path=path, days=days, location=location)

    if force:
        _replace_recorded(path, html.encode(), record_export)
    else:
        _create_recorded(path, html.encode(), record_export)
    return KitExport(
        path=path,
        appointment_count=contents.appointment_count,
        patient_count=len(contents.patient_ids),
        first_day=contents.first_day,
        last_day=contents.last_day,
    )


def _create_recorded(path: Path, content: bytes, record_export: Callable[[], None]) -> None:
    """Write a new kit and its audit events together: if writing fails the events roll back,
    and if the events cannot be committed the file is removed."""
    written = False
    try:
        with transaction.atomic():
            record_export()
            _write_new(path, content)
            written = True
    except BaseException:
        if written:
            path.unlink(missing_ok=True)
        raise


def _replace_recorded(path: Path, content: bytes, record_export: Callable[[], None]) -> None:
    """Replace the old kit only once the new one is whole and its export is committed.

    The new kit is written beside the old, the audit events are committed, then the file is
    renamed over the old one (atomic within a directory). A failure at any step leaves the old
    kit as it was and removes the new one.
    """
    temporary = _write_temporary(path.parent, content)
    try:
        with transaction.atomic():
            record_export()
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _record_export(
    actor: User | None, contents: KitContents, *, path: Path, days: int, location: Location | None
) -> None:
    username = "system" if actor is None else ""
    for patient_id in contents.patient_ids:
        record(
            actor=actor,
            username=username,
            action="scheduling.downtime_kit_patient_included",
            category=AUDIT_CATEGORY,
            patient_id=patient_id,
            changes={"file": str(path)},
        )
    record(
        actor=actor,
        username=username,
        action="scheduling.downtime_kit_exported",
        category=AUDIT_CATEGORY,
        target=location,
        changes={
            "file": str(path),
            "days": days,
            "first_day": contents.first_day.isoformat(),
            "location": location.name if location else "all",
            "appointments": contents.appointment_count,
            "patients": len(contents.patient_ids),
            # The command runs with no signed-in user: the machine's account says who ran it.
            "system_user": _system_user(),
        },
    )


def _system_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return str(os.getuid())
