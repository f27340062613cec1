"""The waitlist: patients who would take an earlier slot, matched when one frees up.

This module keeps the queue, finds who a freed slot suits (oldest entry first) and books a
claim through the booking service, so the first claim wins and later ones are told the slot
is gone. Sending the offers is the reminders' work.
"""

from __future__ import annotations

from datetime import date, datetime, time

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils.timezone import localdate, localtime
from django.utils.translation import gettext_lazy as _

from ambula.accounts.models import User
from ambula.accounts.policy import Capability, require
from ambula.audit.services import record
from ambula.patients.models import Patient
from ambula.scheduling.models import (
    Appointment,
    AppointmentType,
    Location,
    Provider,
    WaitlistEntry,
)

CATEGORY = "schedule"


@transaction.atomic
def waitlist_add(
    *,
    actor: User,
    patient: Patient,
    appointment_type: AppointmentType,
    providers: list[Provider] = (),
    locations: list[Location] = (),
    weekdays: list[int] = (),
    earliest_time: time | None = None,
    latest_time: time | None = None,
    wanted_until: date | None = None,
    current_appointment: Appointment | None = None,
) -> WaitlistEntry:
    """Put the patient on the waitlist for this kind of visit, with what suits them."""
    require(actor, Capability.MANAGE_SCHEDULE)
    weekdays = sorted(set(weekdays))
    if any(day not in range(7) for day in weekdays):
        raise ValidationError({"weekdays": _("Days are 0 (Monday) to 6 (Sunday).")})
    if earliest_time and latest_time and latest_time <= earliest_time:
        raise ValidationError({"latest_time": _("The latest time must be after the earliest.")})
    if wanted_until and wanted_until < localdate():
        raise ValidationError({"wanted_until": _("That date has passed.")})
    if current_appointment is not None and current_appointment.patient_id != patient.pk:
        raise ValidationError(_("That appointment is another patient's."), code="wrong_patient")
    if WaitlistEntry.objects.filter(
        patient=patient, appointment_type=appointment_type, status=WaitlistEntry.Status.WAITING
    ).exists():
        raise ValidationError(
            _("The patient is already waiting for this kind of visit."), code="already_waiting"
        )
    entry = WaitlistEntry(
        patient=patient,
        appointment_type=appointment_type,
        weekdays=weekdays,
        earliest_time=earliest_time,
        latest_time=latest_time,
        wanted_until=wanted_until,
        current_appointment=current_appointment,
        created_by=actor,
    )
    entry.full_clean()
    entry.save()
    entry.providers.set(providers)
    entry.locations.set(locations)
    record(
        actor=actor,
        action="scheduling.waitlist_added",
        category=CATEGORY,
        target=entry,
        patient=patient,
    )
    return entry


@transaction.atomic
def waitlist_withdraw(*, actor: User, entry: WaitlistEntry) -> WaitlistEntry:
    require(actor, Capability.MANAGE_SCHEDULE)
    entry = WaitlistEntry.objects.select_for_update().get(pk=entry.pk)
    if entry.status != WaitlistEntry.Status.WAITING:
        raise ValidationError(_("This entry is no longer waiting."), code="not_waiting")
    entry.status = WaitlistEntry.Status.WITHDRAWN
    entry.save(update_fields=["status", "updated_at"])
    record(
        actor=actor,
        action="scheduling.waitlist_withdrawn",
        category=CATEGORY,
        target=entry,
        patient_id=entry.patient_id,
    )
    return entry


def waitlist_matches(
    *,
    provider: Provider,
    location: Location,
    appointment_type: AppointmentType,
    starts_at: datetime,
) -> list[WaitlistEntry]:
    """The waiting entries this slot suits, oldest first."""
    local = localtime(starts_at)
    entries = (
        WaitlistEntry.objects.filter(
            status=WaitlistEntry.Status.WAITING, appointment_type=appointment_type
        )
        .filter(Q(providers=None) | Q(providers=provider))
        .filter(Q(locations=None) | Q(locations=location))
        .filter(Q(wanted_until__isnull=True) | Q(wanted_until__gte=local.date()))
        .filter(Q(earliest_time__isnull=True) | Q(earliest_time__lte=local.time()))
        .filter(Q(latest_time__isnull=True) | Q(latest_time__gte=local.time()))
        # Someone moving an appointment only wants a slot before the one they have.
        .filter(
            Q(current_appointment__isnull=True) | Q(current_appointment__starts_at__gt=starts_at)
        )
        .distinct()
        .order_by("created_at")
    )
    # JSON containment differs between databases; the weekday test is cheap in Python.
    return [entry for entry in entries if not entry.weekdays or local.weekday() in entry.weekdays]


@transaction.atomic
def waitlist_claim(
    *, actor: User, entry: WaitlistEntry, provider: Provider, location: Location, starts_at
) -> Appointment:
    """Book the freed slot for this entry through the booking service: the first claim wins,
    a later one gets its SlotTaken answer. An entry with a current appointment moves it."""
    from ambula.scheduling.booking import appointment_book, appointment_reschedule

    require(actor, Capability.MANAGE_SCHEDULE)
    entry = WaitlistEntry.objects.select_for_update().get(pk=entry.pk)
    if entry.status != WaitlistEntry.Status.WAITING:
        raise ValidationError(_("This entry is no longer waiting."), code="not_waiting")
    if entry.current_appointment is not None and entry.current_appointment.status == "scheduled":
        appointment = appointment_reschedule(
            actor=actor,
            appointment=entry.current_appointment,
            starts_at=starts_at,
            provider=provider,
            location=location,
        )
    else:
        appointment = appointment_book(
            actor=actor,
            patient=entry.patient,
            provider=provider,
            location=location,
            appointment_type=entry.appointment_type,
            starts_at=starts_at,
        )
    entry.status = WaitlistEntry.Status.BOOKED
    entry.booked_appointment = appointment
    entry.save(update_fields=["status", "booked_appointment", "updated_at"])
    record(
        actor=actor,
        action="scheduling.waitlist_claimed",
        category=CATEGORY,
        target=entry,
        patient_id=entry.patient_id,
        changes={"appointment": str(appointment.pk)},
    )
    return appointment
