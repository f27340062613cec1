"""Two-step sign-in: authenticator apps (TOTP, RFC 6238) and one-time recovery codes.

Invariants: a TOTP time step is accepted at most once per device (an observed code cannot be
replayed), a user has at most one confirmed authenticator, and recovery codes are stored only
as a keyed hash (HMAC-SHA256 under a key derived from SECRET_KEY), so a database dump alone
does not reveal a usable code. Every write runs in one transaction with its audit event.
"""

from __future__ import annotations

import base64
import re
import secrets
from typing import Final
from urllib.parse import quote, urlencode

import qrcode
import qrcode.image.svg
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.timezone import now as timezone_now
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_otp.oath import TOTP
from qrcode.compat.etree import ET

from ambula.accounts.emails import security_notice_send
from ambula.accounts.models import RecoveryCode, TOTPDevice, User
from ambula.accounts.policy import Capability, require
from ambula.accounts.sessions import sessions_end_for_user
from ambula.audit import services as audit

METHOD_TOTP: Final = "totp"
METHOD_RECOVERY_CODE: Final = "recovery_code"

TOTP_KEY_BYTES = 20  # RFC 4226 recommends 160 bits, the length of an HMAC-SHA1 output
TOTP_STEP_SECONDS = 30
TOTP_DIGITS = 6
# One step either side absorbs a phone clock that is a little off and a code typed just as it
# rolled over; more would widen the window an observed code stays useful.
TOTP_TOLERANCE_STEPS = 1

RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_LENGTH = 10
# No 0/o, 1/i/l: codes are read off paper and typed by hand, often years later.
RECOVERY_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_CODE_HASH_SALT = "ambula.accounts.recovery-code"

# Far longer than any code with generous spacing; anything longer is rejected before any work.
MAX_CODE_INPUT_LENGTH = 64

_SEPARATORS = re.compile(r"[\s\-]+")
_TOTP_CODE = re.compile(rf"[0-9]{{{TOTP_DIGITS}}}")  # ASCII only: str.isdigit accepts "١٢٣"

INVALID_CODE_MESSAGE = _("That code is not valid or has expired. Check your phone and try again.")
ALREADY_ENROLLED_MESSAGE = _("An authenticator is already set up for this account.")


# Enrolment


@transaction.atomic
def totp_enrolment_start(*, user: User) -> TOTPDevice:
    """Create a fresh unconfirmed authenticator for the user, discarding any earlier attempt."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    device = TOTPDevice(user=user, key=secrets.token_bytes(TOTP_KEY_BYTES).hex())
    device.full_clean()
    device.save()
    return device


def totp_provisioning_uri(*, device: TOTPDevice, issuer: str) -> str:
    """Return the otpauth:// URI an authenticator app reads from the QR code."""
    # Key URI format (Google Authenticator wiki): the label's colon separates issuer from
    # account, so it stays literal while each part is percent-encoded on its own.
    label = f"{quote(issuer, safe='')}:{quote(device.user.get_username(), safe='')}"
    parameters = {
        "secret": _base32_secret(device),
        "issuer": issuer,
        "algorithm": "SHA1",
        "digits": TOTP_DIGITS,
        "period": TOTP_STEP_SECONDS,
    }
    # quote, not quote_plus: some authenticator apps show a "+" from the issuer literally.
    return f"otpauth://totp/{label}?{urlencode(parameters, quote_via=quote)}"


def totp_secret_for_display(*, device: TOTPDevice) -> str:
    """Return the shared secret in groups of four, for typing into an app by hand."""
    secret = _base32_secret(device)
    return " ".join(secret[index : index + 4] for index in range(0, len(secret), 4))


def totp_qr_svg(*, device: TOTPDevice, issuer: str) -> str:
    """Return inline SVG markup of the QR code for the device's provisioning URI."""
    # The fill variant paints a white background: a transparent QR code on a dark page does
    # not scan.
    image = qrcode.make(
        totp_provisioning_uri(device=device, issuer=issuer),
        image_factory=qrcode.image.svg.SvgPathFillImage,
        border=4,  # the quiet zone scanners need
    )
    svg = image.get_image()
    # Millimetre sizes would fight the page's CSS; the viewBox alone keeps the aspect ratio.
    for attribute in ("width", "height"):
        svg.attrib.pop(attribute, None)
    svg.set("role", "img")
    svg.set("aria-label", gettext("QR code to scan with your authenticator app"))
    for path in svg.iter("path"):
        # Two codes on one page must not clash on an id.
        path.attrib.pop("id", None)
    # ElementTree escapes attribute values and the path holds only our own numbers, so the
    # markup is safe to mark_safe in a template.
    return ET.tostring(svg, encoding="unicode")


@transaction.atomic
def totp_enrolment_confirm(*, user: User, device: TOTPDevice, token: str) -> list[str]:
    """Confirm the new authenticator with a code from it; return fresh recovery codes."""
    _lock_user(user)
    locked_device = (
        TOTPDevice.objects.select_for_update()
        .filter(pk=device.pk, user=user, confirmed=False)
        .first()
    )
    code = _totp_code_normalise(token)
    step = None
    if locked_device is not None and code is not None:
        step = _totp_matching_step(device=locked_device, code=code)
    if step is None:
        raise ValidationError(INVALID_CODE_MESSAGE, code="invalid_code")
    # Checked under the user's lock, so the one-confirmed-per-user constraint never surfaces
    # as an IntegrityError; a plain (not per-field) error, so a form can attach it to a field.
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        raise ValidationError(ALREADY_ENROLLED_MESSAGE, code="already_enrolled")
    locked_device.confirmed = True
    # The code that confirmed enrolment must not also complete a sign-in.
    locked_device.last_used_step = step
    locked_device.save(update_fields=["confirmed", "last_used_step", "updated_at"])
    codes = _recovery_codes_replace(user=user)
    audit.record(
        actor=user, action="auth.mfa_enrolled", category="authentication", target=locked_device
    )
    security_notice_send(user=user, notice="mfa_enrolled")
    device.refresh_from_db()
    return codes


def mfa_is_enrolled(*, user: User) -> bool:
    """Tell whether the user has a confirmed authenticator."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


# Sign-in


@transaction.atomic
def mfa_verify(*, user: User, code: str) -> str | None:
    """Check a sign-in code; return METHOD_TOTP or METHOD_RECOVERY_CODE, or None if it fails."""
    if not isinstance(code, str) or len(code) > MAX_CODE_INPUT_LENGTH:
        return None
    totp_code = _totp_code_normalise(code)
    if totp_code is not None:
        return METHOD_TOTP if _totp_verify(user=user, code=totp_code) else None
    recovery_code = _recovery_code_normalise(code)
    if recovery_code is not None and _recovery_code_use(user=user, normalised=recovery_code):
        return METHOD_RECOVERY_CODE
    return None


def _totp_verify(*, user: User, code: str) -> bool:
    # The row lock makes a second submission of the same code wait for the first to commit,
    # then see its last_used_step and fail: a code is never accepted twice.
    device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
    if device is None:
        return False
    step = _totp_matching_step(device=device, code=code)
    if step is None:
        return False
    device.last_used_step = step
    device.save(update_fields=["last_used_step", "updated_at"])
    return True


def _recovery_code_use(*, user: User, normalised: str) -> bool:
    candidate = _recovery_code_hash(normalised)
    # Locking the unused codes makes a concurrent use of the same code wait, then miss it.
    unused = RecoveryCode.objects.select_for_update().filter(user=user, used_at__isnull=True)
    match = None
    for recovery_code in unused:
        if constant_time_compare(recovery_code.code_hash, candidate):
            match = recovery_code
    if match is None:
        return False
    match.used_at = timezone_now()
    match.save(update_fields=["used_at", "updated_at"])
    security_notice_send(user=user, notice="recovery_code_used")
    audit.record(
        actor=user,
        action="auth.mfa_recovery_code_used",
        category="authentication",
        target=match,
        changes={"remaining": recovery_codes_remaining(user=user)},
    )
    return True


# Recovery codes


@transaction.atomic
def recovery_codes_regenerate(*, user: User) -> list[str]:
    """Replace all of the user's recovery codes with new ones; return them to show once."""
    _lock_user(user)
    codes = _recovery_codes_replace(user=user)
    security_notice_send(user=user, notice="recovery_codes_regenerated")
    audit.record(
        actor=user,
        action="auth.mfa_recovery_codes_regenerated",
        category="authentication",
        target=user,
    )
    return codes


def recovery_codes_remaining(*, user: User) -> int:
    """Count the user's unused recovery codes."""
    return RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()


# Administration


@transaction.atomic
def mfa_reset(*, actor: User, user: User) -> None:
    """Remove the user's authenticators and recovery codes, so they enrol again at sign-in.

    Their sessions end too: whoever holds one may be the reason for the reset.
    """
    require(actor, Capability.MANAGE_ACCOUNTS)
    _lock_user(user)
    devices_removed = TOTPDevice.objects.filter(user=user).delete()[0]
    codes_removed = RecoveryCode.objects.filter(user=user).delete()[0]
    sessions_ended = sessions_end_for_user(user=user)
    security_notice_send(user=user, notice="mfa_reset")
    audit.record(
        actor=actor,
        action="accounts.mfa_reset",
        category="accounts",
        target=user,
        changes={
            "devices_removed": devices_removed,
            "recovery_codes_removed": codes_removed,
            "sessions_ended": sessions_ended,
        },
    )


# Helpers


def _lock_user(user: User) -> None:
    # Serialises a user's enrolment, regeneration and reset, so two of them running at once
    # cannot leave two sets of recovery codes or two confirmed authenticators behind.
    list(User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))


def _base32_secret(device: TOTPDevice) -> str:
    return base64.b32encode(bytes.fromhex(device.key)).decode("ascii").rstrip("=")


def _current_step() -> int:
    return int(timezone_now().timestamp()) // TOTP_STEP_SECONDS


def _totp_matching_step(*, device: TOTPDevice, code: str) -> int | None:
    """Return the time step the code belongs to, if it is current and not used before."""
    totp = TOTP(bytes.fromhex(device.key), step=TOTP_STEP_SECONDS, digits=TOTP_DIGITS)
    totp.time = timezone_now().timestamp()
    current = totp.t()
    matched = None
    # Every candidate is compared, so the time taken does not tell which step matched.
    for step in range(current - TOTP_TOLERANCE_STEPS, current + TOTP_TOLERANCE_STEPS + 1):
        totp.drift = step - current
        expected = f"{totp.token():0{TOTP_DIGITS}d}"
        if constant_time_compare(expected, code) and step > device.last_used_step:
            matched = step
    return matched


def _totp_code_normalise(code: str) -> str | None:
    if not isinstance(code, str) or len(code) > MAX_CODE_INPUT_LENGTH:
        return None
    compact = _SEPARATORS.sub("", code)  # apps show "123 456"
    return compact if _TOTP_CODE.fullmatch(compact) else None


def _recovery_code_normalise(code: str) -> str | None:
    normalised = _SEPARATORS.sub("", code).lower()
    if len(normalised) != RECOVERY_CODE_LENGTH:
        return None
    if any(character not in RECOVERY_CODE_ALPHABET for character in normalised):
        return None
    return normalised


def _recovery_code_hash(normalised: str) -> str:
    return salted_hmac(RECOVERY_CODE_HASH_SALT, normalised, algorithm="sha256").hexdigest()


def _recovery_code_generate() -> str:
    code = "".join(
        secrets.choice(RECOVERY_CODE_ALPHABET) for _position in range(RECOVERY_CODE_LENGTH)
    )
    half = RECOVERY_CODE_LENGTH // 2
    return f"{code[:half]}-{code[half:]}"


def _recovery_codes_replace(*, user: User) -> list[str]:
    RecoveryCode.objects.filter(user=user).delete()
    codes: list[str] = []
    while len(codes) < RECOVERY_CODE_COUNT:
        code = _recovery_code_generate()
        if code not in codes:  # a repeat would break the (user, code_hash) constraint
            codes.append(code)
    RecoveryCode.objects.bulk_create(
        RecoveryCode(user=user, code_hash=_recovery_code_hash(_recovery_code_normalise(code)))
        for code in codes
    )
    return codes
