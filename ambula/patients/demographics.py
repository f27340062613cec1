"""The patient's details beyond registration, their contacts, and the restricted-record flag.

`patient_update` is the one way a patient's demographics change after registration: staff edit
pages, the portal and imports all call it. It checks every rule against the record as it will
be (not field by field), so a clerk sees all problems at once, and it records old and new values
of what changed, except the SSN, whose values never reach the audit trail.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils.timezone import localdate
from django.utils.translation import gettext_lazy as _

from ambula.accounts.models import User
from ambula.accounts.policy import Capability, can, require
from ambula.accounts.roles import Role
from ambula.audit.services import record
from ambula.core.errors import AccessDenied, Conflict
from ambula.patients.forms import US_PHONE
from ambula.patients.models import RACE_CATEGORIES, REGISTERED_FIELDS, Contact, Patient
from ambula.patients.services import _check_date_of_birth

CATEGORY = "demographics"
DECLINED_RACE = "ASKU"
PHONE_FIELDS = ("mobile_phone", "home_phone", "work_phone")
EDITABLE_FIELDS = frozenset(
    [
        *REGISTERED_FIELDS,
        "gender_identity",
        "home_phone",
        "work_phone",
        "preferred_language",
        "interpreter_needed",
        "race",
        "ethnicity",
        "marital_status",
        "reminder_channel",
        "marketing_opt_out",
        "primary_care_provider",
        "status",
        "deceased_date",
        "restricted",
    ]
)
# What the edit page may set; "merged" belongs to the merge tool alone.
SETTABLE_STATUSES = (Patient.Status.ACTIVE, Patient.Status.INACTIVE, Patient.Status.DECEASED)
# The fields each reminder channel depends on: its rule is checked when one of them changes,
# so an unrelated edit to a record registered with the default channel is not refused.
REMINDER_DEPENDENCIES = {
    Patient.ReminderChannel.SMS: {"reminder_channel", "mobile_phone", "sms_consent"},
    Patient.ReminderChannel.EMAIL: {"reminder_channel", "email"},
}
PHONE_MESSAGE = _("Enter a 10-digit phone number, like (217) 555-0140.")


class ChangedElsewhere(Conflict):
    default_message = _(
        "Someone else saved changes to this patient after you opened the page. Nothing was "
        "saved: reload the page to see their changes, then make yours again."
    )


def normalize_phone(text: str) -> str:
    """A US phone number as "(217) 555-0140", or "" for blank; ValidationError otherwise."""
    text = (text or "").strip()
    if not text:
        return ""
    match = US_PHONE.match(text)
    if not match:
        raise ValidationError(PHONE_MESSAGE, code="invalid_phone")
    return "({}) {}-{}".format(*match.groups())


def may_change_restriction(actor: User) -> bool:
    """Restricting a record hides it from colleagues: a clinical or practice-wide decision."""
    return can(actor, Capability.EDIT_CLINICAL_CHART) or can(actor, Capability.MANAGE_PRACTICE)


def active_physicians() -> QuerySet[User]:
    """The users who may be a patient's primary care provider."""
    return (
        User.objects.filter(is_active=True, role_assignments__role=Role.PHYSICIAN)
        .distinct()
        .order_by("full_name")
    )


def _audit_value(value: Any) -> Any:
    if isinstance(value, User):
        return str(value.pk)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def _cleaned(name: str, value: Any) -> Any:
    if name == "ssn":
        value = (value or "").strip()
        return value or None
    if name == "race":
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise TypeError("race takes a list of race category codes")
        # One order whatever the input's: the same answer never reads as a change.
        codes = set(value)
        return [code for code in RACE_CATEGORIES if code in codes] + sorted(
            codes - set(RACE_CATEGORIES)
        )
    if isinstance(value, str):
        return value.strip()
    return value


class _Errors(dict):
    def add(self, field: str, message) -> None:
        self.setdefault(field, []).append(message)


def _check_race(codes: list[str], errors: _Errors) -> None:
    unknown = [code for code in codes if code not in RACE_CATEGORIES]
    if unknown:
        errors.add(
            "race",
            ValidationError(
                _("Unknown race code: %(codes)s."),
                code="unknown_race",
                params={"codes": ", ".join(unknown)},
            ),
        )
    if DECLINED_RACE in codes and len(codes) > 1:
        errors.add(
            "race",
            ValidationError(
                _("“Declined to answer” cannot be combined with a race."), code="race_declined"
            ),
        )


def _check_death(patient: Patient, errors: _Errors) -> None:
    died = patient.deceased_date
    if patient.status != Patient.Status.DECEASED:
        if died is not None:
            errors.add(
                "deceased_date",
                ValidationError(
                    _("Only a deceased patient has a date of death: clear it, or set the status."),
                    code="not_deceased",
                ),
            )
        return
    if died is None:
        errors.add(
            "deceased_date",
            ValidationError(_("Enter the date of death."), code="deceased_date_required"),
        )
    elif died > localdate():
        errors.add(
            "deceased_date",
            ValidationError(_("The date of death is in the future."), code="death_in_future"),
        )
    elif isinstance(patient.date_of_birth, date) and died < patient.date_of_birth:
        errors.add(
            "deceased_date",
            ValidationError(
                _("The date of death is before the date of birth."), code="death_before_birth"
            ),
        )


def _check_reminders(patient: Patient, changed: set[str], errors: _Errors) -> None:
    channel = patient.reminder_channel
    if not REMINDER_DEPENDENCIES.get(channel, set()) & changed:
        return
    if channel == Patient.ReminderChannel.SMS:
        if not patient.mobile_phone:
            errors.add(
                "reminder_channel",
                ValidationError(
                    _("Text reminders need a mobile phone number."), code="sms_needs_phone"
                ),
            )
        if not patient.sms_consent:
            errors.add(
                "reminder_channel",
                ValidationError(
                    _("Text reminders need the patient's consent to text messages."),
                    code="sms_needs_consent",
                ),
            )
    elif channel == Patient.ReminderChannel.EMAIL and not patient.email:
        errors.add(
            "reminder_channel",
            ValidationError(_("Email reminders need an email address."), code="email_needs_email"),
        )


def _check_primary_care_provider(provider: User | None, errors: _Errors) -> None:
    if provider is None:
        return
    if not isinstance(provider, User):
        raise TypeError("primary_care_provider takes a User or None")
    if not provider.is_active or Role.PHYSICIAN not in provider.roles:
        errors.add(
            "primary_care_provider",
            ValidationError(
                _("The primary care provider must be an active physician."),
                code="not_a_physician",
            ),
        )


def _normalize_phones(patient: Patient, names) -> _Errors:
    errors = _Errors()
    for name in PHONE_FIELDS:
        if name in names:
            try:
                setattr(patient, name, normalize_phone(getattr(patient, name)))
            except ValidationError as error:
                errors.add(name, error)
    return errors


def _check(patient: Patient, changed: set[str], errors: _Errors) -> None:
    """Raise one ValidationError listing every broken rule of the record as it will be."""
    if "date_of_birth" in changed and isinstance(patient.date_of_birth, date):
        try:
            _check_date_of_birth(patient.date_of_birth)
        except ValidationError as error:
            errors.update({field: list(messages) for field, messages in error.error_dict.items()})
    if "status" in changed and patient.status not in SETTABLE_STATUSES:
        errors.add(
            "status",
            ValidationError(_("Choose active, inactive or deceased."), code="bad_status"),
        )
    if "race" in changed:
        _check_race(patient.race, errors)
    if {"status", "deceased_date", "date_of_birth"} & changed:
        _check_death(patient, errors)
    _check_reminders(patient, changed, errors)
    if "primary_care_provider" in changed:
        _check_primary_care_provider(patient.primary_care_provider, errors)
    # The model's own checks (email, ZIP, lengths, choices) join ours, so every problem shows
    # at once; its constraints only once ours pass, or "date of death" would be said twice.
    try:
        patient.full_clean(validate_constraints=not errors)
    except ValidationError as error:
        for field, messages in error.error_dict.items():
            if field not in errors:
                errors[field] = list(messages)
    if errors:
        raise ValidationError(dict(errors))


def _apply(patient: Patient, changes: dict) -> tuple[dict, set[str], _Errors]:
    """Set the changes on the instance; return the old values, what changed, phone errors."""
    before = {name: getattr(patient, name) for name in [*changes, "deceased_date"]}
    for name, value in changes.items():
        setattr(patient, name, _cleaned(name, value))
    errors = _normalize_phones(patient, changes)
    # Back from "deceased" and the date left as it was: the date goes with the status. A new
    # date with another status is a mistake, which _check_death reports.
    if (
        patient.status != Patient.Status.DECEASED
        and patient.deceased_date == before["deceased_date"]
    ):
        patient.deceased_date = None
    changed = {name for name in before if getattr(patient, name) != before[name]}
    return before, changed, errors


def patient_changes_check(*, patient: Patient, changes: dict) -> None:
    """Raise the ValidationError `patient_update` would raise, changing nothing (for forms)."""
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise TypeError(f"Unknown or read-only patient fields: {', '.join(sorted(unknown))}")
    draft = copy.copy(patient)
    _, changed, errors = _apply(draft, changes)
    if changed or errors:
        _check(draft, changed, errors)


@transaction.atomic
def patient_update(
    *,
    actor: User,
    patient: Patient,
    if_unchanged_since: datetime | None = None,
    **changes,
) -> Patient:
    """Change the patient's details; refuse them all if any is wrong. Returns the saved patient.

    `if_unchanged_since` is the record's `updated_at` when the editor loaded it: a record saved
    by someone else since raises ChangedElsewhere instead of silently undoing their change.
    """
    require(actor, Capability.EDIT_DEMOGRAPHICS)
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise TypeError(f"Unknown or read-only patient fields: {', '.join(sorted(unknown))}")
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    if patient.status == Patient.Status.MERGED:
        raise ValidationError(
            _("This record was merged into another one: edit the surviving record."),
            code="patient_merged",
        )
    if if_unchanged_since is not None and patient.updated_at != if_unchanged_since:
        raise ChangedElsewhere(code="changed_elsewhere")
    before, changed, errors = _apply(patient, changes)
    if "restricted" in changed and not may_change_restriction(actor):
        raise AccessDenied(
            _("Only clinicians and the practice administrator may restrict a record."),
            code="restriction_not_allowed",
        )
    if not changed and not errors:
        return patient
    _check(patient, changed, errors)
    patient.save()
    details = {
        name: {"old": _audit_value(before[name]), "new": _audit_value(getattr(patient, name))}
        for name in sorted(changed - {"ssn", "restricted"})
    }
    if "ssn" in changed:
        details["ssn"] = {"changed": True}  # never the numbers, old or new
    if details:
        record(
            actor=actor,
            action="patients.demographics_updated",
            category=CATEGORY,
            target=patient,
            patient=patient,
            changes=details,
        )
    if "restricted" in changed:
        _record_restriction(actor, patient, was=before["restricted"])
    return patient


def _record_restriction(actor: User, patient: Patient, *, was: bool) -> None:
    record(
        actor=actor,
        action="patients.restriction_changed",
        category=CATEGORY,
        target=patient,
        patient=patient,
        changes={"restricted": {"old": was, "new": patient.restricted}},
    )


@transaction.atomic
def patient_restriction_set(*, actor: User, patient: Patient, restricted: bool) -> Patient:
    """Mark the record restricted (opening it then needs a care relationship or a reason)."""
    if not may_change_restriction(actor):
        raise AccessDenied(
            _("Only clinicians and the practice administrator may restrict a record."),
            code="restriction_not_allowed",
        )
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    if patient.restricted == restricted:
        return patient
    patient.restricted = restricted
    patient.save(update_fields=["restricted", "updated_at"])
    _record_restriction(actor, patient, was=not restricted)
    return patient


def patient_opened_for_edit(*, actor: User, patient: Patient) -> Patient:
    """The patient, for their edit page; opening the page (SSN's last digits shown) is audited."""
    require(actor, Capability.EDIT_DEMOGRAPHICS)
    record(
        actor=actor,
        action="patients.demographics_opened",
        category=CATEGORY,
        target=patient,
        patient=patient,
    )
    return patient


# --- Contacts ----------------------------------------------------------------------------------


def _contact_values(contact: Contact) -> dict:
    return {
        "kind": contact.kind,
        "name": contact.name,
        "relationship": contact.relationship,
        "phone": contact.phone,
        "email": contact.email,
        "address": contact.address,
    }


@transaction.atomic
def contact_add(
    *,
    actor: User,
    patient: Patient,
    kind: str,
    name: str,
    relationship: str,
    phone: str = "",
    email: str = "",
    address: str = "",
) -> Contact:
    """Add an emergency contact, or the guarantor (one at most)."""
    require(actor, Capability.EDIT_DEMOGRAPHICS)
    # The patient's row lock serialises additions, so two clerks cannot add two guarantors.
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    contact = Contact(
        patient=patient,
        kind=kind,
        name=name.strip(),
        relationship=relationship.strip(),
        email=email.strip(),
        address=address.strip(),
    )
    errors = _Errors()
    try:
        contact.phone = normalize_phone(phone)
    except ValidationError as error:
        errors.add("phone", error)
    if kind == Contact.Kind.EMERGENCY and not (phone.strip() or contact.email):
        errors.add(
            "phone",
            ValidationError(
                _("Give a phone number or an email, so someone can reach them."),
                code="contact_unreachable",
            ),
        )
    if kind == Contact.Kind.GUARANTOR:
        if contact.relationship.casefold() == "self":
            errors.add(
                "relationship",
                ValidationError(
                    _("The patient is their own guarantor when nobody else is listed."),
                    code="guarantor_self",
                ),
            )
        if patient.contacts.filter(kind=Contact.Kind.GUARANTOR).exists():
            errors.add(
                "kind",
                ValidationError(
                    _("The patient already has a guarantor: remove it first to name another."),
                    code="guarantor_exists",
                ),
            )
    if errors:
        raise ValidationError(errors)
    contact.full_clean()
    contact.save()
    record(
        actor=actor,
        action="patients.contact_added",
        category=CATEGORY,
        target=contact,
        patient=patient,
        changes=_contact_values(contact),
    )
    return contact


@transaction.atomic
def contact_remove(*, actor: User, contact: Contact) -> None:
    """Remove a contact; the audit event keeps what was removed."""
    require(actor, Capability.EDIT_DEMOGRAPHICS)
    contact = Contact.objects.select_for_update().select_related("patient").get(pk=contact.pk)
    record(
        actor=actor,
        action="patients.contact_removed",
        category=CATEGORY,
        target=contact,
        patient=contact.patient,
        changes=_contact_values(contact),
    )
    contact.delete()


@dataclass(frozen=True)
class PatientContacts:
    emergency: list[Contact]
    guarantor: Contact | None  # None: the patient is their own guarantor


def patient_contacts(*, actor: User, patient: Patient) -> PatientContacts:
    """The patient's emergency contacts and guarantor.

    Not audited on its own: it is read with the chart, whose opening is the demographics read.
    """
    require(actor, Capability.VIEW_DEMOGRAPHICS)
    contacts = list(patient.contacts.all())
    return PatientContacts(
        emergency=[contact for contact in contacts if contact.kind == Contact.Kind.EMERGENCY],
        guarantor=next(
            (contact for contact in contacts if contact.kind == Contact.Kind.GUARANTOR), None
        ),
    )
