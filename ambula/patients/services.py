from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.timezone import localdate
from django.utils.translation import gettext_lazy as _

from ambula.accounts.models import User
from ambula.accounts.policy import Capability, require
from ambula.audit.services import record
from ambula.patients.models import REGISTERED_FIELDS, MrnCounter, Patient
from ambula.patients.mrn import mrn_from_number
from ambula.patients.selectors import possible_duplicates

OLDEST_AGE_YEARS = 130


def _check_date_of_birth(born: date) -> None:
    today = localdate()
    if born > today:
        raise ValidationError({"date_of_birth": _("The date of birth is in the future.")})
    try:
        oldest = today.replace(year=today.year - OLDEST_AGE_YEARS)
    except ValueError:  # 29 February, in a year that has none
        oldest = today.replace(year=today.year - OLDEST_AGE_YEARS, day=28)
    if born < oldest:
        raise ValidationError({"date_of_birth": _("The date of birth is more than 130 years ago.")})


@transaction.atomic
def patient_register(*, actor: User, allow_duplicate: bool = False, **details) -> Patient:
    """Register a new patient with the next MRN, unless they look already registered."""
    require(actor, Capability.EDIT_DEMOGRAPHICS)
    unknown = set(details) - set(REGISTERED_FIELDS)
    if unknown:
        raise TypeError(f"Unknown patient fields: {', '.join(sorted(unknown))}")
    _check_date_of_birth(details["date_of_birth"])
    # The counter's row lock serialises registrations: two clerks registering the same person
    # at once are checked one after the other, so the second sees the first.
    MrnCounter.objects.get_or_create(pk=1)
    counter = MrnCounter.objects.select_for_update().get(pk=1)
    if not allow_duplicate:
        duplicates = possible_duplicates(**details)
        if duplicates:
            raise ValidationError(
                _("This patient may already be registered."),
                code="possible_duplicate",
                params={"candidates": [patient.pk for patient in duplicates]},
            )
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    patient = Patient(mrn=mrn_from_number(counter.last_number), **details)
    patient.full_clean()
    patient.save()
    record(
        actor=actor,
        action="patients.registered",
        category="demographics",
        target=patient,
        patient=patient,
        changes={"fields": sorted(name for name, value in details.items() if value)},
    )
    return patient
