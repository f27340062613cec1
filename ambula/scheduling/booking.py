"""Booking: book, reschedule, cancel, mark no-show, and move a visit through the day.

No double booking. The availability rules are checked inside the booking transaction:

* On SQLite every transaction begins IMMEDIATE (ambula/config.py), which takes the write
  lock at BEGIN, so bookings run one at a time and the check sees every committed booking.
* On PostgreSQL two bookings can pass the check at once; the exclusion constraints of
  migration 0003 (scheduling_appointment_no_overlap, scheduling_resource_no_overlap) refuse
  the second insert, which becomes `SlotTaken`. A clash on a room alone is retried once or
  twice (another room may be free), inside a savepoint.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.timezone import now as timezone_now
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ambula.accounts.models import User
from ambula.accounts.policy import Capability, can, require
from ambula.audit.services import record
from ambula.core.errors import AccessDenied, Conflict
from ambula.patients.models import Patient
from ambula.scheduling.availability import (
    TAKEN_CODES,
    Calendar,
    held_times,
    load_for_visit,
    practice_zone,
    problems_in,
    wall_clock,
)
from ambula.scheduling.models import (
    Appointment,
    AppointmentType,
    Location,
    Provider,
    ResourceBooking,
)

CATEGORY = "schedule"
APPOINTMENT_CONSTRAINT = "scheduling_appointment_no_overlap"
RESOURCE_CONSTRAINT = "scheduling_resource_no_overlap"
ROOM_RETRIES = 3


class SlotTaken(Conflict):
    default_message = gettext_lazy("That time was just taken. Choose another slot.")

    def __init__(self, message: str | None = None, *, code: str = "slot_taken") -> None:
        super().__init__(message, code=code)


def _constraint_of(error: IntegrityError) -> str:
    diag = getattr(error.__cause__, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name:
        return name
    text = str(error)
    for candidate in (APPOINTMENT_CONSTRAINT, RESOURCE_CONSTRAINT):
        if candidate in text:
            return candidate
    return ""


def _bookable_patient(patient: Patient) -> Patient:
    patient = Patient.objects.get(pk=patient.pk)
    if patient.status == Patient.Status.DECEASED:
        raise ValidationError(_("This patient is recorded as deceased."), code="patient_deceased")
    if patient.status == Patient.Status.MERGED:
        raise ValidationError(
            _("This record was merged into another; book on the surviving record."),
            code="patient_merged",
        )
    return patient


def _refuse(problems) -> None:
    """Raise for the problems: SlotTaken when the time is only held by someone else."""
    if not problems:
        return
    messages = [problem.message for problem in problems]
    if all(problem.code in TAKEN_CODES for problem in problems):
        raise SlotTaken(" ".join(messages))
    raise ValidationError(
        [ValidationError(problem.message, code=problem.code) for problem in problems]
    )


def _insert(
    *,
    actor: User,
    patient: Patient,
    provider: Provider,
    location: Location,
    appointment_type: AppointmentType,
    starts_at: datetime,
    note: str,
    overbook_reason: str,
    series: uuid.UUID | None = None,
    rescheduled_from: Appointment | None = None,
    ignore_appointment: Appointment | None = None,
) -> Appointment:
    """Check the rules and write the appointment and its resource bookings (in a savepoint)."""
    start, end, held_until = held_times(appointment_type, starts_at)
    for attempt in range(ROOM_RETRIES):
        calendar: Calendar = load_for_visit(
            provider=provider,
            location=location,
            appointment_type=appointment_type,
            starts_at=starts_at,
            ignore_appointment=ignore_appointment,
        )
        _refuse(
            problems_in(
                calendar,
                provider=provider,
                location=location,
                appointment_type=appointment_type,
                starts_at=starts_at,
                check_provider_overlap=not overbook_reason,
            )
        )
        resources = calendar.equipment_at(location.pk)
        if appointment_type.needs_room:
            resources = [calendar.free_rooms(location.pk, start, held_until)[0], *resources]
        appointment = Appointment(
            patient=patient,
            provider=provider,
            location=location,
            appointment_type=appointment_type,
            starts_at=start,
            ends_at=end,
            blocked_until=held_until,
            overbooked=bool(overbook_reason),
            overbook_reason=overbook_reason,
            note=note or None,
            booked_by=actor,
            series=series,
            rescheduled_from=rescheduled_from,
        )
        appointment.full_clean(exclude=["blocked_until"])
        try:
            with transaction.atomic():
                appointment.save()
                ResourceBooking.objects.bulk_create(
                    ResourceBooking(
                        appointment=appointment,
                        resource=resource,
                        starts_at=start,
                        blocked_until=held_until,
                    )
                    for resource in resources
                )
        except IntegrityError as error:
            constraint = _constraint_of(error)
            if constraint == RESOURCE_CONSTRAINT and attempt + 1 < ROOM_RETRIES:
                continue  # a room went to someone else meanwhile; another may be free
            if constraint in (APPOINTMENT_CONSTRAINT, RESOURCE_CONSTRAINT):
                raise SlotTaken() from error
            raise
        return appointment
    raise SlotTaken()  # pragma: no cover - the loop returns or raises


def _check_overbook(actor: User, overbook_reason: str) -> str:
    overbook_reason = overbook_reason.strip()
    if overbook_reason:
        require(actor, Capability.OVERBOOK)
    else:
        require(actor, Capability.MANAGE_SCHEDULE)
    return overbook_reason


def _booked_changes(appointment: Appointment) -> dict:
    changes = {
        "starts_at": appointment.starts_at.isoformat(),
        "provider": str(appointment.provider_id),
        "location": str(appointment.location_id),
        "appointment_type": appointment.appointment_type.name,
    }
    if appointment.overbooked:
        changes["overbook_reason"] = appointment.overbook_reason
    if appointment.series:
        changes["series"] = str(appointment.series)
    return changes


@transaction.atomic
def appointment_book(
    *,
    actor: User,
    patient: Patient,
    provider: Provider,
    location: Location,
    appointment_type: AppointmentType,
    starts_at: datetime,
    note: str = "",
    overbook_reason: str = "",
) -> Appointment:
    """Book the visit, with a free exam room and its equipment, or say why not.

    Overbooking (a reason, and the OVERBOOK capability) skips only the rule that the
    provider has no other appointment then.
    """
    overbook_reason = _check_overbook(actor, overbook_reason)
    patient = _bookable_patient(patient)
    appointment = _insert(
        actor=actor,
        patient=patient,
        provider=provider,
        location=location,
        appointment_type=appointment_type,
        starts_at=starts_at,
        note=note.strip(),
        overbook_reason=overbook_reason,
    )
    record(
        actor=actor,
        action="scheduling.appointment_booked",
        category=CATEGORY,
        target=appointment,
        patient=patient,
        changes=_booked_changes(appointment),
    )
    return appointment


def _locked(appointment: Appointment) -> Appointment:
    return Appointment.objects.select_for_update().get(pk=appointment.pk)


def _release(appointment: Appointment) -> None:
    ResourceBooking.objects.filter(appointment=appointment, active=True).update(active=False)


@transaction.atomic
def appointment_reschedule(
    *,
    actor: User,
    appointment: Appointment,
    starts_at: datetime,
    provider: Provider | None = None,
    location: Location | None = None,
) -> Appointment:
    """Move the visit: book the new time (same rules) and cancel the old one as "Rescheduled".

    The old appointment stays, cancelled, and the new one points back to it.
    """
    require(actor, Capability.MANAGE_SCHEDULE)
    old = _locked(appointment)
    if old.status != Appointment.Status.SCHEDULED:
        raise ValidationError(
            _("Only a scheduled appointment can be moved."), code="not_reschedulable"
        )
    patient = _bookable_patient(old.patient)
    _cancel(actor=actor, appointment=old, reason="Rescheduled")
    new = _insert(
        actor=actor,
        patient=patient,
        provider=provider or old.provider,
        location=location or old.location,
        appointment_type=old.appointment_type,
        starts_at=starts_at,
        note=old.note or "",
        overbook_reason="",
        series=old.series,
        rescheduled_from=old,
        ignore_appointment=old,
    )
    record(
        actor=actor,
        action="scheduling.appointment_rescheduled",
        category=CATEGORY,
        target=new,
        patient=patient,
        changes={
            "starts_at": {"old": old.starts_at.isoformat(), "new": new.starts_at.isoformat()},
            "provider": {"old": str(old.provider_id), "new": str(new.provider_id)},
            "location": {"old": str(old.location_id), "new": str(new.location_id)},
            "rescheduled_from": str(old.pk),
        },
    )
    return new


def _cancel(*, actor: User, appointment: Appointment, reason: str) -> Appointment:
    appointment.status = Appointment.Status.CANCELLED
    appointment.cancelled_at = timezone_now()
    appointment.cancelled_by = actor
    appointment.cancel_reason = reason
    appointment.save(
        update_fields=["status", "cancelled_at", "cancelled_by", "cancel_reason", "updated_at"]
    )
    _release(appointment)
    return appointment


@transaction.atomic
def appointment_cancel(*, actor: User, appointment: Appointment, reason: str) -> Appointment:
    """Cancel the appointment, with a reason, and free its time and rooms."""
    require(actor, Capability.MANAGE_SCHEDULE)
    reason = reason.strip()
    if not reason:
        raise ValidationError(_("Say why the appointment is cancelled."), code="reason_required")
    appointment = _locked(appointment)
    if appointment.status not in (Appointment.Status.SCHEDULED, Appointment.Status.ARRIVED):
        raise ValidationError(
            _("A %(status)s appointment cannot be cancelled.")
            % {"status": appointment.get_status_display().lower()},
            code="bad_transition",
        )
    before = appointment.status
    _cancel(actor=actor, appointment=appointment, reason=reason[:200])
    record(
        actor=actor,
        action="scheduling.appointment_cancelled",
        category=CATEGORY,
        target=appointment,
        patient=appointment.patient,
        changes={"status": {"old": before, "new": appointment.status}, "reason": reason},
    )
    return appointment


# The day's flow: each step from one status to the next, stamped with its time.
TRANSITIONS = {
    "check_in": ("scheduled", "arrived", "arrived_at", "scheduling.patient_checked_in"),
    "room": ("arrived", "in_room", "roomed_at", "scheduling.patient_roomed"),
    "complete": ("in_room", "completed", "completed_at", "scheduling.appointment_completed"),
    "no_show": ("scheduled", "no_show", "no_show_at", "scheduling.appointment_no_show"),
}


def _require_flow(actor: User, step: str) -> None:
    if step in ("check_in", "no_show"):
        require(actor, Capability.MANAGE_SCHEDULE)
    # Rooming and completing are done by the clinical staff as well as the front desk.
    elif not (can(actor, Capability.MANAGE_SCHEDULE) or can(actor, Capability.EDIT_CLINICAL_CHART)):
        raise AccessDenied(code="capability_required")


@transaction.atomic
def _move(*, actor: User, appointment: Appointment, step: str) -> Appointment:
    _require_flow(actor, step)
    source, target, stamp, action = TRANSITIONS[step]
    appointment = _locked(appointment)
    if appointment.status != source:
        raise ValidationError(
            _("A %(status)s appointment cannot be marked %(target)s.")
            % {
                "status": appointment.get_status_display().lower(),
                "target": Appointment.Status(target).label.lower(),
            },
            code="bad_transition",
        )
    if step == "no_show" and appointment.starts_at > timezone_now():
        raise ValidationError(
            _("A patient can be marked a no-show only once the appointment time has come."),
            code="too_early",
        )
    appointment.status = target
    setattr(appointment, stamp, timezone_now())
    appointment.save(update_fields=["status", stamp, "updated_at"])
    if step == "no_show":
        _release(appointment)
    record(
        actor=actor,
        action=action,
        category=CATEGORY,
        target=appointment,
        patient=appointment.patient,
        changes={"status": {"old": source, "new": target}},
    )
    return appointment


def appointment_check_in(*, actor: User, appointment: Appointment) -> Appointment:
    """Mark the patient arrived."""
    return _move(actor=actor, appointment=appointment, step="check_in")


def appointment_room(*, actor: User, appointment: Appointment) -> Appointment:
    """Mark the arrived patient taken to an exam room."""
    return _move(actor=actor, appointment=appointment, step="room")


def appointment_complete(*, actor: User, appointment: Appointment) -> Appointment:
    """Mark the visit completed."""
    return _move(actor=actor, appointment=appointment, step="complete")


def appointment_no_show(*, actor: User, appointment: Appointment) -> Appointment:
    """Mark that the patient did not come; the rooms are freed."""
    return _move(actor=actor, appointment=appointment, step="no_show")


@dataclass
class SeriesReport:
    series: uuid.UUID
    booked: list[Appointment] = field(default_factory=list)
    # Each refused start (in the practice's time zone) with the reasons.
    refused: dict[datetime, list[str]] = field(default_factory=dict)


def series_starts(starts_at: datetime, *, every_weeks: int, times: int) -> list[datetime]:
    """The series' starts: the same wall-clock time every `every_weeks` weeks (DST-proof)."""
    zone = practice_zone()
    local = starts_at.astimezone(zone)
    return [
        wall_clock(
            local.date() + timedelta(weeks=every_weeks * number), local.time(), zone
        ).astimezone(zone)
        for number in range(times)
    ]


@transaction.atomic
def appointment_series_book(
    *,
    actor: User,
    patient: Patient,
    provider: Provider,
    location: Location,
    appointment_type: AppointmentType,
    starts_at: datetime,
    every_weeks: int,
    times: int,
    all_or_nothing: bool,
    note: str = "",
) -> SeriesReport:
    """Book a recurring series sharing one `series` id.

    All or nothing: every visit is booked, or none and a ValidationError names the dates that
    collide. Otherwise what can be booked is, and the report lists the refused dates.
    """
    require(actor, Capability.MANAGE_SCHEDULE)
    if not 1 <= every_weeks <= 52 or not 1 <= times <= 104:
        raise ValidationError(
            _("A series repeats every 1 to 52 weeks, 1 to 104 times."), code="bad_series"
        )
    patient = _bookable_patient(patient)
    report = SeriesReport(series=uuid.uuid4())
    for start in series_starts(starts_at, every_weeks=every_weeks, times=times):
        try:
            appointment = _insert(
                actor=actor,
                patient=patient,
                provider=provider,
                location=location,
                appointment_type=appointment_type,
                starts_at=start,
                note=note.strip(),
                overbook_reason="",
                series=report.series,
            )
        except ValidationError as error:
            report.refused[start] = error.messages
            continue
        except SlotTaken as error:
            report.refused[start] = [error.message]
            continue
        report.booked.append(appointment)
        record(
            actor=actor,
            action="scheduling.appointment_booked",
            category=CATEGORY,
            target=appointment,
            patient=patient,
            changes=_booked_changes(appointment),
        )
    if all_or_nothing and report.refused:
        raise ValidationError(
            [
                ValidationError(
                    _("%(date)s: %(reasons)s"),
                    code="series_collision",
                    params={"date": f"{start:%Y-%m-%d %H:%M}", "reasons": " ".join(reasons)},
                )
                for start, reasons in report.refused.items()
            ]
        )
    return report
