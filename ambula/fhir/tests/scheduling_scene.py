"""A bookable practice for the Schedule, Slot and Appointment tests: plain data via factories."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.utils import timezone

from ambula.scheduling.models import AppointmentType, Location, Provider
from ambula.scheduling.tests.factories import (
    make_block,
    make_location,
    make_provider,
    make_room,
    make_type,
)

APPOINTMENT_TYPE_SYSTEM = "urn:ambula:appointment-type"


@dataclass
class Scene:
    provider: Provider
    location: Location
    appointment_type: AppointmentType
    monday: date  # a Monday two weeks or so ahead: the provider works 09:00-12:00 there

    def at(self, hour: int, minute: int = 0, days: int = 0) -> datetime:
        zone = timezone.get_current_timezone()
        return datetime.combine(self.monday + timedelta(days=days), time(hour, minute), tzinfo=zone)

    def type_coding(self) -> dict:
        return {
            "coding": [{"system": APPOINTMENT_TYPE_SYSTEM, "code": str(self.appointment_type.pk)}]
        }

    def appointment(self, patient, start: datetime, **extra) -> dict:
        end = start + timedelta(minutes=self.appointment_type.duration_minutes)
        return {
            "resourceType": "Appointment",
            "status": "booked",
            "serviceType": [self.type_coding()],
            "start": start.isoformat(),
            "end": end.isoformat(),
            "participant": [
                {"actor": {"reference": f"Patient/{patient.pk}"}, "status": "accepted"},
                {"actor": {"reference": f"Practitioner/{self.provider.pk}"}, "status": "accepted"},
                {"actor": {"reference": f"Location/{self.location.pk}"}, "status": "accepted"},
            ],
            **extra,
        }


def build_scene(*, weekdays=(0,), rooms: int = 1) -> Scene:
    location = make_location()
    for _ in range(rooms):
        make_room(location)
    provider = make_provider()
    make_block(provider, location, weekdays=weekdays, starts_at=time(9), ends_at=time(12))
    today = timezone.localdate()
    monday = today + timedelta(days=14 - today.weekday())
    return Scene(provider, location, make_type(duration=30, buffer=0), monday)
