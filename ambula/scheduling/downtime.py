"""The downtime kit: the next days' schedule and each booked patient's summary, in one file.

When Ambula is down (a power cut, a failed server, a ransomware scare) the practice still has
to know who is coming and who they are. `downtime_kit_export` writes a self-contained HTML
file holding the active appointments from today for a few days and, for each booked patient,
a summary: demographics, coverage, allergies, problems and medications.

The data is never in clear in the file. It is JSON, gzip-compressed, then encrypted with
AES-256-GCM under a key derived from a passphrase by PBKDF2-HMAC-SHA256 (600,000 iterations,
OWASP's figure for it). PBKDF2 rather than the backups' scrypt because browsers' WebCrypto
offers PBKDF2 and not scrypt, and the file must open with nothing but a browser: its own
script derives the same key, decrypts and builds the page with `textContent`. The HTML around
the ciphertext holds no PHI (the practice's name, the dates covered, when it was made).

Restricted records are included: the kit is the practice's own copy for its own staff in an
outage, when emergency access cannot be asked for. Every patient in it gets an audited read.
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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from uuid import UUID

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.db.models.functions import Lower
from django.template.loader import render_to_string
from django.utils import formats, timezone
from django.utils.timezone import now as timezone_now
from django.utils.translation import gettext as _

from ambula.accounts.models import User
from ambula.accounts.policy import Capability, require, visible
from ambula.audit.services import batched, record
from ambula.core.selectors import practice_get
from ambula.patients.models import Allergy, Contact, Coverage, Medication, Patient, Problem
from ambula.scheduling.availability import practice_zone, wall_clock
from ambula.scheduling.models import ACTIVE_STATUSES, Appointment, Location

MIN_DAYS, MAX_DAYS = 1, 14
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


# --- What goes in: the schedule and the summaries ------------------------------------------------


@dataclass(frozen=True)
class KitContents:
    data: dict  # what the page shows, ready for JSON
    patient_ids: list[UUID]
    appointment_count: int
    first_day: date
    last_day: date


def _checked_days(days: int) -> int:
    if not isinstance(days, int) or not MIN_DAYS <= days <= MAX_DAYS:
        raise ValidationError(
            _("A downtime kit covers %(min)d to %(max)d days."),
            code="days_out_of_range",
            params={"min": MIN_DAYS, "max": MAX_DAYS},
        )
    return days


def location_named(name: str) -> Location:
    """The active location with this name (any case), or a ValidationError naming the choices."""
    try:
        return Location.objects.get(name__iexact=name.strip(), is_active=True)
    except Location.DoesNotExist:
        names = ", ".join(Location.objects.filter(is_active=True).values_list("name", flat=True))
        raise ValidationError(
            _("There is no active location named %(name)s. The locations: %(names)s."),
            code="unknown_location",
            params={"name": name, "names": names or _("none yet")},
        ) from None


def _appointments(
    actor: User | None, start: datetime, end: datetime, location: Location | None
) -> list[Appointment]:
    visits = Appointment.objects.filter(
        status__in=ACTIVE_STATUSES, starts_at__gte=start, starts_at__lt=end
    ).select_related("appointment_type", "provider__user", "location")
    if actor is not None:
        visits = visible(actor, Capability.VIEW_SCHEDULE, visits)
    if location is not None:
        visits = visits.filter(location=location)
    return list(visits.order_by("starts_at", "location__name", "provider__user__full_name"))


def _patients(patient_ids: set[UUID]) -> QuerySet[Patient]:
    """The booked patients with what their summaries show, in six queries whatever the number."""
    active = {"status": "active"}
    return (
        Patient.objects.filter(pk__in=patient_ids)
        .order_by("family_name", "given_name", "date_of_birth")
        .prefetch_related(
            Prefetch("allergies", Allergy.objects.filter(**active).order_by(Lower("substance"))),
            Prefetch("problems", Problem.objects.filter(**active).order_by("code")),
            Prefetch("medications", Medication.objects.filter(**active).order_by(Lower("name"))),
            Prefetch(
                "coverages",
                Coverage.objects.filter(**active).select_related("payer").order_by("priority"),
            ),
            Prefetch("contacts", Contact.objects.filter(kind=Contact.Kind.EMERGENCY)),
        )
    )


def _date(value: date | None) -> str:
    return formats.date_format(value, "Y-m-d") if value else ""


def _age_on(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _allergies(patient: Patient) -> dict:
    entries = [
        {
            "substance": allergy.substance,
            "reaction": allergy.reaction,
            "severity": allergy.get_severity_display(),
        }
        for allergy in patient.allergies.all()
    ]
    if entries:
        state = "listed"
    elif patient.no_known_allergies:
        state = "none_known"
    else:
        state = "not_recorded"  # never asked: not the same as none
    return {"state": state, "entries": entries}


def _coverage(plan: Coverage) -> dict:
    subscriber = ""
    if plan.relationship != Coverage.Relationship.SELF:
        name = f"{plan.subscriber_given_name} {plan.subscriber_family_name}".strip()
        subscriber = f"{name} ({plan.get_relationship_display()})" if name else ""
    return {
        "priority": plan.get_priority_display(),
        "payer": plan.payer.name,
        "payer_id": plan.payer.payer_id,
        "payer_phone": plan.payer.phone,
        "plan": plan.plan_name,
        "member_id": plan.member_id,  # decrypted by its field: the card's number, in full
        "group": plan.group_number,
        "subscriber": subscriber,
        "copay": f"{plan.copay:.2f}" if plan.copay is not None else "",
    }


def _summary(patient: Patient, today: date) -> dict:
    phones = [
        {"label": label, "number": number}
        for label, number in (
            (_("Mobile"), patient.mobile_phone),
            (_("Home"), patient.home_phone),
            (_("Work"), patient.work_phone),
        )
        if number
    ]
    place = " ".join(part for part in (patient.state, patient.postal_code) if part)
    address = ", ".join(part for part in (patient.address_line, patient.city, place) if part)
    name = " ".join(part for part in (patient.given_name, patient.middle_name) if part)
    return {
        "name": f"{patient.family_name}, {name}" + (f" {patient.suffix}" if patient.suffix else ""),
        "preferred_name": patient.preferred_name,
        "mrn": patient.mrn,
        "date_of_birth": _date(patient.date_of_birth),
        "age": _age_on(patient.date_of_birth, today),
        "sex": patient.get_administrative_sex_display(),
        "pronouns": patient.pronouns,
        "phones": phones,
        "email": patient.email,
        "address": address,
        "language": patient.preferred_language,
        "interpreter": patient.interpreter_needed,
        "restricted": patient.restricted,
        "deceased": patient.status == Patient.Status.DECEASED,
        "emergency_contacts": [
            {"name": contact.name, "relationship": contact.relationship, "phone": contact.phone}
            for contact in patient.contacts.all()
        ],
        "coverage": [_coverage(plan) for plan in patient.coverages.all()],
        "allergies": _allergies(patient),
        "problems": [
            {"code": problem.code, "description": problem.description}
            for problem in patient.problems.all()
        ],
        "medications": [
            {
                "name": medication.name,
                "dose": medication.dose,
                "route": medication.get_route_display(),
                "frequency": medication.frequency,
            }
            for medication in patient.medications.all()
        ],
    }


def _schedule(visits: list[Appointment], keys: dict[UUID, str], days: list[date]) -> list[dict]:
    """Days, each with its locations, each with its providers and their visits in time order."""
    zone = practice_zone()
    grouped: dict[date, dict[str, dict[str, list]]] = {day: {} for day in days}
    locations: dict[str, Location] = {}
    for visit in visits:
        starts, ends = visit.starts_at.astimezone(zone), visit.ends_at.astimezone(zone)
        locations[visit.location.name] = visit.location
        providers = grouped[starts.date()].setdefault(visit.location.name, {})
        providers.setdefault(str(visit.provider), []).append(
            {
                "starts": starts.strftime("%H:%M"),
                "ends": ends.strftime("%H:%M"),
                "patient": keys[visit.patient_id],
                "type": visit.appointment_type.name,
                "status": visit.get_status_display(),
                "overbooked": visit.overbooked,
            }
        )
    return [
        {
            "date": day.isoformat(),
            "label": formats.date_format(day, "l j F Y"),
            "locations": [
                {
                    "name": name,
                    "address": _location_address(locations[name]),
                    "phone": locations[name].phone,
                    "providers": [
                        {"name": provider, "appointments": appointments}
                        for provider, appointments in sorted(providers.items())
                    ],
                }
                for name, providers in sorted(grouped[day].items())
            ],
        }
        for day in days
    ]


def _location_address(location: Location) -> str:
    return f"{location.address_line}, {location.city}, {location.state} {location.postal_code}"


def _labels() -> dict[str, str]:
    """The page's words, translated here: the page's script holds no text of its own."""
    return {
        "schedule": _("Schedule"),
        "summaries": _("Patient summaries"),
        "nothing_booked_day": _("Nothing booked this day."),
        "nothing_booked": _("No appointments are booked in the days this kit covers."),
        "time": _("Time"),
        "patient": _("Patient"),
        "date_of_birth": _("Date of birth"),
        "visit": _("Visit"),
        "status": _("Status"),
        "overbooked": _("overbooked"),
        "mrn": _("MRN"),
        "age": _("age"),
        "sex": _("Sex"),
        "preferred_name": _("Goes by"),
        "pronouns": _("Pronouns"),
        "phones": _("Phone"),
        "email": _("Email"),
        "address": _("Address"),
        "language": _("Preferred language"),
        "interpreter": _("Needs an interpreter"),
        "restricted": _("Restricted record"),
        "deceased": _("Deceased"),
        "emergency_contacts": _("Emergency contact"),
        "none_recorded": _("None recorded"),
        "coverage": _("Coverage"),
        "no_coverage": _("No active coverage (self-pay?)"),
        "member_id": _("Member ID"),
        "group": _("Group"),
        "plan": _("Plan"),
        "payer_id": _("Payer ID"),
        "subscriber": _("Subscriber"),
        "copay": _("Copay"),
        "allergies": _("Allergies"),
        "no_known_allergies": _("No known allergies"),
        "allergies_not_recorded": _("Allergies not recorded: ask"),
        "problems": _("Active problems"),
        "medications": _("Active medications"),
        "visits": _("Visits in this kit"),
        "back_to_schedule": _("Back to the schedule"),
    }


def downtime_kit_contents(
    *, actor: User | None, days: int, location: Location | None = None
) -> KitContents:
    """Gather the active visits from today for `days` days and each booked patient's summary.

    `actor` is None for system work (the command); a user must see the schedule and the
    clinical chart. Nothing is audited here: `downtime_kit_export` records what left.
    """
    if actor is not None:
        for capability in (
            Capability.VIEW_SCHEDULE,
            Capability.VIEW_DEMOGRAPHICS,
            Capability.VIEW_CLINICAL_CHART,
        ):
            require(actor, capability)
    _checked_days(days)
    today = timezone.localdate()
    covered = [today + timedelta(days=offset) for offset in range(days)]
    zone = practice_zone()
    start = wall_clock(today, time(0), zone)
    end = wall_clock(today + timedelta(days=days), time(0), zone)
    visits = _appointments(actor, start, end, location)
    patients = list(_patients({visit.patient_id for visit in visits}))
    keys = {patient.pk: f"p{number}" for number, patient in enumerate(patients, start=1)}
    summaries = {keys[patient.pk]: _summary(patient, today) for patient in patients}
    for visit in visits:
        starts = visit.starts_at.astimezone(zone)
        summaries[keys[visit.patient_id]].setdefault("visits", []).append(
            f"{formats.date_format(starts.date(), 'D j M')} {starts:%H:%M} · "
            f"{visit.location.name} · {visit.provider}"
        )
    practice = practice_get()
    data = {
        "practice": practice.name if practice else "",
        "location": location.name if location else "",
        "generated": formats.date_format(timezone.localtime(timezone_now()), "Y-m-d H:i"),
        "days": _schedule(visits, keys, covered),
        "patients": [
            {"key": keys[patient.pk], **summaries[keys[patient.pk]]} for patient in patients
        ],
        "labels": _labels(),
    }
    return KitContents(
        data=data,
        patient_ids=[patient.pk for patient in patients],
        appointment_count=len(visits),
        first_day=covered[0],
        last_day=covered[-1],
    )


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


def _write_private(path: Path, content: bytes, *, force: bool) -> None:
    """Write the file readable by its owner only; replace an old one only when forced."""
    if force:
        # Written beside it and renamed over it: the old kit stays whole until the new one is.
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".downtime-kit-")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(content)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return
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
    written = False
    try:
        # The audit events and the file go together: if writing fails the events roll back,
        # and if the events cannot be committed the file is removed.
        with transaction.atomic():
            with batched():
                _record_export(actor, contents, path=path, days=days, location=location)
            _write_private(path, html.encode(), force=force)
            written = True
    except BaseException:
        if written:
            path.unlink(missing_ok=True)
        raise
    return KitExport(
        path=path,
        appointment_count=contents.appointment_count,
        patient_count=len(contents.patient_ids),
        first_day=contents.first_day,
        last_day=contents.last_day,
    )


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
