"""Appointment: the visits, booked, moved and cancelled through the booking service only.

Create books (status booked, with Patient + Practitioner + Location participants, a start and
an appointment type, or a `slot` from slot.py instead of the last three); a time someone else
holds is 409 "That time was just taken". Update moves the visit through its day (arrived,
checked-in, fulfilled, noshow), cancels it (with cancelationReason), or, when start or the
practitioner or location change, reschedules it: the booking service keeps the old visit,
cancelled, and books a new one, which the answer carries (its id is new). Delete is refused:
cancel instead.

Read and search need `scheduling.view`, as the day board does; writing `scheduling.manage`.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils.timezone import now as timezone_now

from ambula.accounts.policy import Capability
from ambula.fhir.errors import FhirError
from ambula.fhir.mapper import ResourceMapper, instant, reference, reference_id
from ambula.fhir.registry import register
from ambula.fhir.resources.schedule import (
    APPOINTMENT_TYPE_SYSTEM,
    appointment_type_concept,
)
from ambula.fhir.resources.slot import slot_id, slot_parts
from ambula.fhir.search_params import (
    DateParam,
    FunctionParam,
    ReferenceParam,
    TokenParam,
    reference_key,
)
from ambula.patients.models import Patient
from ambula.scheduling import booking
from ambula.scheduling.booking import SlotTaken
from ambula.scheduling.models import Appointment, AppointmentType, Location, Provider

Status = Appointment.Status
TO_FHIR = {
    Status.SCHEDULED: "booked",
    Status.ARRIVED: "arrived",
    Status.IN_ROOM: "checked-in",
    Status.COMPLETED: "fulfilled",
    Status.CANCELLED: "cancelled",
    Status.NO_SHOW: "noshow",
}
FROM_FHIR = {code: status for status, code in TO_FHIR.items()}
# The day's flow, in order: reaching a later status takes the steps before it.
FLOW = (
    ("booked", "arrived", booking.appointment_check_in),
    ("arrived", "checked-in", booking.appointment_room),
    ("checked-in", "fulfilled", booking.appointment_complete),
)
MAX_COMMENT = 2000  # as the booking page's note
TAKEN = "That time was just taken. Choose another slot."


def _actor(name: str, modifier: str, value: str) -> Q:
    kind, key = reference_key(value, ("Patient", "Practitioner", "Location"))
    kind = kind or modifier
    try:
        key = uuid.UUID(key)
    except ValueError:
        return Q(pk__in=[])
    fields = {"Patient": "patient_id", "Practitioner": "provider_id", "Location": "location_id"}
    condition = Q(pk__in=[])
    for target, field in fields.items():
        if kind in ("", target):
            condition |= Q(**{field: key})
    return condition


def _service_type(name: str, modifier: str, value: str) -> Q:
    system, bar, code = value.rpartition("|")
    if bar and system not in ("", APPOINTMENT_TYPE_SYSTEM):
        return Q(pk__in=[])
    try:
        return Q(appointment_type_id=uuid.UUID(code))
    except ValueError:
        return Q(pk__in=[])


def _invalid(message: str, path: str) -> FhirError:
    return FhirError(422, "invalid", message, expression=[path])


def _moment(resource: dict, element: str) -> datetime | None:
    text = resource.get(element)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:  # a leap second, valid FHIR that no clinic books
        raise _invalid(
            f"Appointment.{element} is not a time Ambula can book.", f"Appointment.{element}"
        ) from None
    if moment.tzinfo is None:
        raise _invalid(f"Appointment.{element} needs a time zone.", f"Appointment.{element}")
    return moment


@register
class AppointmentMapper(ResourceMapper):
    resource_type = "Appointment"
    model = Appointment
    read_capability = Capability.VIEW_SCHEDULE
    write_capability = Capability.MANAGE_SCHEDULE
    patient_path = "patient"
    search_params = {
        "patient": ReferenceParam(
            field="patient_id", targets=("Patient",), documentation="The patient who comes."
        ),
        "practitioner": ReferenceParam(
            field="provider_id",
            targets=("Practitioner",),
            documentation="The provider (Practitioner/<id>).",
        ),
        "location": ReferenceParam(
            field="location_id", targets=("Location",), documentation="Where the visit is."
        ),
        "actor": FunctionParam(
            function=_actor,
            param_type="reference",
            accepted_modifiers=("Patient", "Practitioner", "Location"),
            documentation="Any participant: patient, practitioner or location.",
        ),
        "date": DateParam(field="starts_at", documentation="When the visit starts."),
        "status": TokenParam(
            field="status",
            system="http://hl7.org/fhir/appointmentstatus",
            codes=FROM_FHIR,
            documentation="booked, arrived, checked-in, fulfilled, cancelled, noshow.",
        ),
        "service-type": FunctionParam(
            function=_service_type,
            param_type="token",
            documentation=f"The appointment type ({APPOINTMENT_TYPE_SYSTEM}|<id>).",
        ),
    }
    sort_fields = {"date": "starts_at"}
    default_order = ("starts_at",)
    includes = ("patient", "practitioner", "location")
    element_paths = {
        "starts_at": "Appointment.start",
        "ends_at": "Appointment.end",
        "patient": "Appointment.participant",
        "provider": "Appointment.participant",
        "location": "Appointment.participant",
        "appointment_type": "Appointment.serviceType",
        "note": "Appointment.comment",
        "cancel_reason": "Appointment.cancelationReason",
    }

    def queryset(self):
        return Appointment.objects.select_related(
            "patient", "provider__user", "location", "appointment_type"
        )

    def to_fhir(self, visit: Appointment) -> dict:
        concept = appointment_type_concept(visit.appointment_type)
        resource: dict = {
            "status": TO_FHIR[visit.status],
            "serviceType": [concept],
            "appointmentType": concept,
            "start": instant(visit.starts_at),
            "end": instant(visit.ends_at),
            "minutesDuration": int((visit.ends_at - visit.starts_at) / timedelta(minutes=1)),
            "created": instant(visit.created_at),
            "participant": [
                self._participant(reference("Patient", visit.patient_id)),
                self._participant(
                    reference("Practitioner", visit.provider_id, visit.provider.user.full_name)
                ),
                self._participant(reference("Location", visit.location_id, visit.location.name)),
            ],
        }
        if not visit.overbooked:
            resource["slot"] = [
                reference(
                    "Slot",
                    slot_id(
                        visit.provider_id,
                        visit.location_id,
                        visit.appointment_type_id,
                        visit.starts_at,
                    ),
                )
            ]
        if visit.status == Status.CANCELLED and visit.cancel_reason:
            resource["cancelationReason"] = {"text": visit.cancel_reason}
        if visit.note:
            resource["comment"] = visit.note
        return resource

    @staticmethod
    def _participant(actor: dict) -> dict:
        return {"actor": actor, "required": "required", "status": "accepted"}

    # --- writing -----------------------------------------------------------------------------

    def create(self, actor, resource: dict) -> Appointment:
        if resource.get("status") != "booked":
            raise _invalid("A new appointment must have status booked.", "Appointment.status")
        if len(resource.get("comment") or "") > MAX_COMMENT:
            raise _invalid(
                f"Keep the comment under {MAX_COMMENT} characters.", "Appointment.comment"
            )
        wanted = self._wanted(resource)
        if wanted["patient"] is None:
            raise _invalid(
                "Name the patient as a participant (Patient/<id>).", "Appointment.participant"
            )
        try:
            return booking.appointment_book(
                actor=actor,
                patient=wanted["patient"],
                provider=wanted["provider"],
                location=wanted["location"],
                appointment_type=wanted["appointment_type"],
                starts_at=wanted["start"],
                note=resource.get("comment", ""),
            )
        except SlotTaken as error:
            raise FhirError(409, "conflict", _taken(error)) from None

    def _wanted(self, resource: dict, current: Appointment | None = None) -> dict:
        """The patient, provider, location, type and start the resource asks for."""
        found = {
            "patient": None,
            "provider": None,
            "location": None,
            "appointment_type": None,
            "start": None,
        }
        slots = resource.get("slot") or []
        if len(slots) > 1:
            raise _invalid("Book one slot at a time.", "Appointment.slot")
        if slots:
            key = reference_id(slots[0], "Slot", "Appointment.slot[0]")
            parts = slot_parts(key)
            if parts is None:
                raise _invalid(f"Slot/{key} is not a slot of this practice.", "Appointment.slot")
            (found["provider"], found["location"], found["appointment_type"], found["start"]) = (
                parts
            )
        for index, participant in enumerate(resource.get("participant") or []):
            self._participant_into(found, participant, index)
        requested_type = self._requested_type(resource)
        if requested_type is not None:
            if found["appointment_type"] not in (None, requested_type):
                raise _invalid(
                    "The appointment type differs from the slot's.", "Appointment.serviceType"
                )
            found["appointment_type"] = requested_type
        start = _moment(resource, "start")
        if start is not None and found["start"] is not None and start != found["start"]:
            raise _invalid("Appointment.start differs from the slot's start.", "Appointment.start")
        found["start"] = found["start"] or start
        if current is not None:
            for name, value in (
                ("provider", current.provider),
                ("location", current.location),
                ("appointment_type", current.appointment_type),
            ):
                found[name] = found[name] or value
        self._check_complete(found, resource)
        return found

    def _participant_into(self, found: dict, participant: dict, index: int) -> None:
        path = f"Appointment.participant[{index}].actor"
        text = (participant.get("actor") or {}).get("reference", "")
        kind, key = reference_key(text, ("Patient", "Practitioner", "Location"))
        models = {
            "Patient": ("patient", Patient.objects.all()),
            "Practitioner": ("provider", Provider.objects.select_related("user")),
            "Location": ("location", Location.objects.all()),
        }
        if kind not in models:
            raise _invalid("Each participant is a Patient, a Practitioner or a Location.", path)
        name, queryset = models[kind]
        try:
            record = queryset.filter(pk=uuid.UUID(key)).first()
        except ValueError:
            record = None
        if record is None:
            raise _invalid(f"{kind}/{key} is not known.", path)
        if found[name] is not None and found[name].pk != record.pk:
            raise _invalid(f"The {kind} differs from the slot's.", path)
        found[name] = record

    def _requested_type(self, resource: dict) -> AppointmentType | None:
        concepts = list(resource.get("serviceType") or [])
        if resource.get("appointmentType"):
            concepts.append(resource["appointmentType"])
        for concept in concepts:
            for coding in concept.get("coding") or []:
                if coding.get("system") != APPOINTMENT_TYPE_SYSTEM:
                    continue
                try:
                    kind = AppointmentType.objects.filter(pk=uuid.UUID(coding.get("code", "")))
                except ValueError:
                    kind = AppointmentType.objects.none()
                found = kind.first()
                if found is None:
                    raise _invalid(
                        f"Appointment type {coding.get('code')} is not known.",
                        "Appointment.serviceType",
                    )
                return found
        return None

    @staticmethod
    def _check_complete(found: dict, resource: dict) -> None:
        for name, path, message in (
            (
                "provider",
                "Appointment.participant",
                "Name the practitioner as a participant, or book a slot.",
            ),
            (
                "location",
                "Appointment.participant",
                "Name the location as a participant, or book a slot.",
            ),
            (
                "appointment_type",
                "Appointment.serviceType",
                "Give the appointment type as a "
                f"serviceType coding of {APPOINTMENT_TYPE_SYSTEM}, or book a slot.",
            ),
            ("start", "Appointment.start", "Give the start, or book a slot."),
        ):
            if found[name] is None:
                raise _invalid(message, path)
        start = found["start"]
        if start < timezone_now():
            raise _invalid("That time has already passed.", "Appointment.start")
        end = _moment(resource, "end")
        length = timedelta(minutes=found["appointment_type"].duration_minutes)
        if end is not None and end <= start:
            raise _invalid("Appointment.end must be after its start.", "Appointment.end")
        if end is not None and end - start != length:
            raise _invalid(
                f"A {found['appointment_type'].name} visit lasts "
                f"{found['appointment_type'].duration_minutes} minutes.",
                "Appointment.end",
            )
        duration = resource.get("minutesDuration")
        if duration is not None and duration != found["appointment_type"].duration_minutes:
            raise _invalid(
                f"A {found['appointment_type'].name} visit lasts "
                f"{found['appointment_type'].duration_minutes} minutes.",
                "Appointment.minutesDuration",
            )

    def update(self, actor, visit: Appointment, resource: dict) -> Appointment:
        status = resource.get("status")
        if status not in FROM_FHIR:
            raise _invalid(
                "Status must be one of " + ", ".join(sorted(FROM_FHIR)) + ".",
                "Appointment.status",
            )
        self._check_unchanged(visit, resource)
        current = TO_FHIR[visit.status]
        if status == "cancelled":
            if current == "cancelled":
                return visit
            reason = resource.get("cancelationReason") or {}
            text = reason.get("text") or next(
                (
                    coding.get("display") or coding.get("code")
                    for coding in reason.get("coding") or []
                    if coding.get("display") or coding.get("code")
                ),
                "",
            )
            if not text.strip():
                raise _invalid(
                    "Say why the appointment is cancelled (cancelationReason).",
                    "Appointment.cancelationReason",
                )
            return booking.appointment_cancel(actor=actor, appointment=visit, reason=text)
        if self._moved(visit, resource):
            if status != "booked":
                raise _invalid("Only a booked appointment can be moved.", "Appointment.status")
            old_slot = "Slot/" + slot_id(
                visit.provider_id, visit.location_id, visit.appointment_type_id, visit.starts_at
            )
            # The slot it held says nothing about where it goes.
            resource = {
                **resource,
                "slot": [
                    found
                    for found in resource.get("slot") or []
                    if found.get("reference") != old_slot
                ],
            }
            wanted = self._wanted(resource, current=visit)
            if wanted["appointment_type"].pk != visit.appointment_type_id:
                raise _invalid(
                    "The appointment type cannot be changed: book a new visit.",
                    "Appointment.serviceType",
                )
            try:
                return booking.appointment_reschedule(
                    actor=actor,
                    appointment=visit,
                    starts_at=wanted["start"],
                    provider=wanted["provider"],
                    location=wanted["location"],
                )
            except SlotTaken as error:
                raise FhirError(409, "conflict", _taken(error)) from None
        if status == current:
            return visit
        if status == "noshow":
            return booking.appointment_no_show(actor=actor, appointment=visit)
        return self._advance(actor, visit, current, status)

    def _advance(self, actor, visit: Appointment, current: str, status: str) -> Appointment:
        order = [source for source, _target, _step in FLOW] + [FLOW[-1][1]]
        if (
            current not in order
            or status not in order
            or order.index(status) < order.index(current)
        ):
            raise _invalid(f"A {current} appointment cannot become {status}.", "Appointment.status")
        for _source, _target, step in FLOW[order.index(current) : order.index(status)]:
            visit = step(actor=actor, appointment=visit)
        return visit

    def _moved(self, visit: Appointment, resource: dict) -> bool:
        start = _moment(resource, "start")
        if start is not None and start != visit.starts_at:
            return True
        if resource.get("slot"):
            key = reference_id(resource["slot"][0], "Slot", "Appointment.slot[0]")
            if key != slot_id(
                visit.provider_id, visit.location_id, visit.appointment_type_id, visit.starts_at
            ):
                return True
        for participant in resource.get("participant") or []:
            kind, key = reference_key(
                (participant.get("actor") or {}).get("reference", ""),
                ("Practitioner", "Location"),
            )
            current = {"Practitioner": visit.provider_id, "Location": visit.location_id}
            if kind in current and key != str(current[kind]):
                return True
        return False

    @staticmethod
    def _check_unchanged(visit: Appointment, resource: dict) -> None:
        for index, participant in enumerate(resource.get("participant") or []):
            kind, key = reference_key(
                (participant.get("actor") or {}).get("reference", ""), ("Patient",)
            )
            if kind == "Patient" and key != str(visit.patient_id):
                raise _invalid(
                    "An appointment's patient cannot be changed.",
                    f"Appointment.participant[{index}].actor",
                )
        if (resource.get("comment") or "") != (visit.note or ""):
            raise _invalid("The comment cannot be changed here.", "Appointment.comment")


def _taken(error: SlotTaken) -> str:
    detail = error.message
    return TAKEN if detail == TAKEN else f"{TAKEN} ({detail})"
