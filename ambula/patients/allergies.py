"""The allergy list: add, resolve or strike an allergy, or record that there are none."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from ambula.accounts.models import User
from ambula.accounts.policy import Capability, require
from ambula.audit.services import record
from ambula.patients.models import Allergy, Patient

CATEGORY = "allergy list"


@transaction.atomic
def allergy_add(
    *, actor: User, patient: Patient, substance: str, reaction: str = "", severity: str
) -> Allergy:
    """Add an active allergy; the patient no longer counts as having none."""
    require(actor, Capability.EDIT_CLINICAL_CHART)
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    allergy = Allergy(
        patient=patient, substance=substance.strip(), reaction=reaction.strip(), severity=severity
    )
    allergy.full_clean()
    allergy.save()
    if patient.no_known_allergies:
        patient.no_known_allergies = False
        patient.save(update_fields=["no_known_allergies", "updated_at"])
    record(
        actor=actor,
        action="patients.allergy_added",
        category=CATEGORY,
        target=allergy,
        patient=patient,
        changes={"substance": allergy.substance, "severity": severity},
    )
    return allergy


@transaction.atomic
def allergy_status_change(*, actor: User, allergy: Allergy, status: str) -> Allergy:
    """Mark an allergy resolved, or entered in error; it leaves the active list."""
    require(actor, Capability.EDIT_CLINICAL_CHART)
    allergy = Allergy.objects.select_for_update().get(pk=allergy.pk)
    if status not in {Allergy.Status.RESOLVED, Allergy.Status.ENTERED_IN_ERROR}:
        raise ValidationError(_("An allergy can be resolved or struck out."), code="bad_status")
    before = allergy.status
    allergy.status = status
    allergy.save(update_fields=["status", "updated_at"])
    record(
        actor=actor,
        action="patients.allergy_updated",
        category=CATEGORY,
        target=allergy,
        patient=allergy.patient,
        changes={"status": {"old": before, "new": status}},
    )
    return allergy


@transaction.atomic
def allergies_none_known(*, actor: User, patient: Patient) -> Patient:
    """Record that the patient was asked and has no known allergies."""
    require(actor, Capability.EDIT_CLINICAL_CHART)
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    if patient.allergies.filter(status=Allergy.Status.ACTIVE).exists():
        raise ValidationError(
            _("Resolve or strike out the listed allergies first."), code="allergies_listed"
        )
    patient.no_known_allergies = True
    patient.save(update_fields=["no_known_allergies", "updated_at"])
    record(
        actor=actor,
        action="patients.no_known_allergies_recorded",
        category=CATEGORY,
        target=patient,
        patient=patient,
    )
    return patient


def active_allergies(*, actor: User, patient: Patient) -> list[Allergy]:
    """The active allergies, for those who may see the clinical chart (the read is audited)."""
    require(actor, Capability.VIEW_CLINICAL_CHART)
    allergies = list(patient.allergies.filter(status=Allergy.Status.ACTIVE))
    record(actor=actor, action="patients.allergies_viewed", category=CATEGORY, patient=patient)
    return allergies
