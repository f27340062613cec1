"""The medication list: what the patient takes or took, as they and their records say.

Not prescribing (that is the clinical app's job): a reconciled list the clinician keeps.
Dates are days in the practice's time zone, so "today" is the practice's today.
"""

from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, F, IntegerField, Value, When
from django.db.models.functions import Lower
from django.utils.timezone import localdate
from django.utils.timezone import now as timezone_now
from django.utils.translation import gettext_lazy as _

from ambula.accounts.models import User
from ambula.accounts.policy import Capability, require
from ambula.audit.services import record
from ambula.patients.models import Medication, Patient

CATEGORY = "medication list"


def _today() -> date:
    """Today in the practice's time zone (the clock is `timezone_now`, which tests can move)."""
    return localdate(timezone_now())


def _check_started_on(started_on: date | None, patient: Patient) -> None:
    if started_on is None:
        return
    if started_on > _today():
        raise ValidationError(
            {"started_on": ValidationError(_("The start date is in the future."), code="future")}
        )
    if started_on < patient.date_of_birth:
        raise ValidationError(
            {
                "started_on": ValidationError(
                    _("The start date is before the patient was born."), code="before_birth"
                )
            }
        )


@transaction.atomic
def medication_add(
    *,
    actor: User,
    patient: Patient,
    name: str,
    dose: str = "",
    route: str,
    frequency: str = "",
    started_on: date | None = None,
    note: str = "",
) -> Medication:
    """Add an active medication to the patient's list."""
    require(actor, Capability.EDIT_CLINICAL_CHART)
    _check_started_on(started_on, patient)
    medication = Medication(
        patient=patient,
        name=name.strip(),
        dose=dose.strip(),
        route=route,
        frequency=frequency.strip(),
        started_on=started_on,
        note=note.strip(),
    )
    medication.full_clean()
    medication.save()
    record(
        actor=actor,
        action="patients.medication_added",
        category=CATEGORY,
        target=medication,
        patient=patient,
        changes={"name": medication.name, "dose": medication.dose, "route": route},
    )
    return medication


@transaction.atomic
def medication_stop(
    *, actor: User, medication: Medication, stopped_on: date | None = None
) -> Medication:
    """Mark an active medication stopped, today unless another day is given."""
    require(actor, Capability.EDIT_CLINICAL_CHART)
    medication = Medication.objects.select_for_update().get(pk=medication.pk)
    if medication.status != Medication.Status.ACTIVE:
        raise ValidationError(_("Only an active medication can be stopped."), code="not_active")
    today = _today()
    stopped_on = stopped_on or today
    if stopped_on > today:
        raise ValidationError(
            {"stopped_on": ValidationError(_("The stop date is in the future."), code="future")}
        )
    if medication.started_on and stopped_on < medication.started_on:
        raise ValidationError(
            {
                "stopped_on": ValidationError(
                    _("The medication cannot stop before it started (%(started)s)."),
                    code="dates_out_of_order",
                    params={"started": medication.started_on.isoformat()},
                )
            }
        )
    medication.status = Medication.Status.STOPPED
    medication.stopped_on = stopped_on
    medication.full_clean()
    medication.save(update_fields=["status", "stopped_on", "updated_at"])
    record(
        actor=actor,
        action="patients.medication_stopped",
        category=CATEGORY,
        target=medication,
        patient=medication.patient,
        changes={
            "status": {"old": Medication.Status.ACTIVE, "new": Medication.Status.STOPPED},
            "stopped_on": {"old": None, "new": stopped_on.isoformat()},
        },
    )
    return medication


@transaction.atomic
def medication_strike(*, actor: User, medication: Medication) -> Medication:
    """Mark a medication entered in error: it leaves the list but stays in the record."""
    require(actor, Capability.EDIT_CLINICAL_CHART)
    medication = Medication.objects.select_for_update().get(pk=medication.pk)
    if medication.status == Medication.Status.ENTERED_IN_ERROR:
        raise ValidationError(
            _("This medication is already marked entered in error."), code="already_struck"
        )
    before = medication.status
    medication.status = Medication.Status.ENTERED_IN_ERROR
    medication.save(update_fields=["status", "updated_at"])
    record(
        actor=actor,
        action="patients.medication_struck",
        category=CATEGORY,
        target=medication,
        patient=medication.patient,
        changes={"status": {"old": before, "new": medication.status}},
    )
    return medication


def medications_for_chart(*, actor: User, patient: Patient) -> list[Medication]:
    """Active medications by name, then stopped ones, latest stopped first (the read is audited)."""
    require(actor, Capability.VIEW_CLINICAL_CHART)
    medications = list(
        patient.medications.exclude(status=Medication.Status.ENTERED_IN_ERROR)
        .annotate(
            stopped=Case(
                When(status=Medication.Status.ACTIVE, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("stopped", F("stopped_on").desc(nulls_last=True), Lower("name"))
    )
    record(actor=actor, action="patients.medications_viewed", category=CATEGORY, patient=patient)
    return medications
