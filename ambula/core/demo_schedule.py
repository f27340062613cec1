"""The demo's schedule: rooms, visit types, three providers with weekly templates, a holiday,
some time off, three weeks of past visits and two weeks of booked ones. Synthetic throughout.

Upcoming visits are booked through the booking service like any other. Past visits cannot
be (the service refuses the past, rightly), so they are written as a practice's imported
history would be: rows with their final status (completed, no-show, cancelled).
"""

from __future__ import annotations

import random
from datetime import date, time, timedelta

from django.core.exceptions import ValidationError

from ambula.accounts.models import User
from ambula.accounts.roles import Role
from ambula.accounts.services import user_create
from ambula.patients.models import Patient
from ambula.scheduling.availability import wall_clock
from ambula.scheduling.booking import SlotTaken, appointment_book
from ambula.scheduling.models import (
    Appointment,
    AppointmentType,
    Location,
    Provider,
    Resource,
    ScheduleBlock,
    ScheduleException,
)
from ambula.scheduling.schedule_templates import schedule_block_save, schedule_exception_create
from ambula.scheduling.services import appointment_type_create, provider_create, resource_create

# (full name, username, credentials, specialty, NPI, NUCC taxonomy); NPIs pass the check digit.
EXTRA_PROVIDERS = [
    ("Dr. Marcus Webb", "mwebb", "MD", "Internal medicine", "1457382913", "207R00000X"),
    ("Nina Torres", "ntorres", "FNP", "Family nurse practitioner", "1588667638", "363LF0000X"),
]
TYPES = [
    # name, minutes, buffer, colour, needs room, patients may book
    ("Follow-up", 20, 0, "#2e90fa", True, True),
    ("New patient visit", 40, 5, "#7a5af8", True, False),
    ("Annual physical", 40, 5, "#12b76a", True, True),
    ("Telehealth check-in", 20, 0, "#f79009", False, True),
]
WEEKDAYS = range(5)
# Visits are laid on a grid as long as the longest visit with its buffer, so none overlap.
GRID_MINUTES = 45


def _providers(admin: User, physician: User) -> list[Provider]:
    providers = [
        provider_create(
            actor=admin,
            user=physician,
            credentials="MD",
            specialty="Family medicine",
            npi="1245319599",
            taxonomy_code="207Q00000X",
        )
    ]
    for full_name, username, credentials, specialty, npi, taxonomy in EXTRA_PROVIDERS:
        # Bookable clinicians without a demo sign-in of their own (no password).
        user = user_create(
            actor=None,
            username=username,
            email=f"{username}@demo.ambula.invalid",
            full_name=full_name,
            roles=[Role.PHYSICIAN],
        )
        providers.append(
            provider_create(
                actor=admin,
                user=user,
                credentials=credentials,
                specialty=specialty,
                npi=npi,
                taxonomy_code=taxonomy,
            )
        )
    return providers


def _templates(admin: User, providers: list[Provider], locations: list[Location]) -> None:
    main, north = locations[0], locations[1]
    raman, webb, torres = providers
    start = date.today() - timedelta(days=60)
    plan = [
        (raman, main, WEEKDAYS, time(8, 30), time(12)),
        (raman, main, WEEKDAYS, time(13), time(17)),
        (webb, north, (0, 2, 4), time(9), time(17)),
        (webb, main, (1, 3), time(9), time(16)),
        (torres, main, (0, 1, 2, 3), time(8), time(16)),
    ]
    for provider, location, weekdays, starts_at, ends_at in plan:
        for weekday in weekdays:
            schedule_block_save(
                actor=admin,
                block=ScheduleBlock(
                    provider=provider,
                    location=location,
                    weekday=weekday,
                    starts_at=starts_at,
                    ends_at=ends_at,
                    valid_from=start,
                ),
            )


def _times_of(block: ScheduleBlock, day: date, minutes: int):
    moment = wall_clock(day, block.starts_at)
    end = wall_clock(day, block.ends_at)
    while moment + timedelta(minutes=minutes) <= end:
        yield moment
        moment += timedelta(minutes=minutes)


def demo_schedule(
    *, users: dict[Role, User], locations: list[Location], patients: list[Patient], today: date
) -> None:
    """Set up the schedule and fill it, the same every time for the same patients."""
    admin, desk = users[Role.ADMIN], users[Role.FRONT_DESK]
    chooser = random.Random(20261130)  # noqa: S311  (the same demo every time; no secrets)
    for location, rooms in zip(locations, (3, 2), strict=False):
        for number in range(1, rooms + 1):
            resource_create(actor=admin, location=location, name=f"Exam {number}", kind="room")
    types = [
        appointment_type_create(
            actor=admin,
            name=name,
            duration_minutes=minutes,
            buffer_minutes=buffer,
            colour=colour,
            needs_room=needs_room,
            patient_bookable=bookable,
        )
        for name, minutes, buffer, colour, needs_room, bookable in TYPES
    ]
    providers = _providers(admin, users[Role.PHYSICIAN])
    _templates(admin, providers, locations)
    webb = providers[1]
    next_week = today + timedelta(days=7 - today.weekday() + 2)  # a Wednesday
    schedule_exception_create(
        actor=admin,
        exception=ScheduleException(
            kind=ScheduleException.Kind.TIME_OFF,
            provider=webb,
            starts_at=wall_clock(next_week, time(0)),
            ends_at=wall_clock(next_week + timedelta(days=1), time(0)),
            reason="Conference",
        ),
    )
    if not patients:
        return
    _history(chooser, desk, providers, types, patients, today)
    _upcoming(chooser, desk, providers, types, patients, today)


def _history(chooser, desk, providers, types, patients, today) -> None:
    """Three weeks of past visits, most completed, some no-shows and cancellations."""
    rows = []
    rooms = {}
    for days_ago in range(21, 0, -1):
        day = today - timedelta(days=days_ago)
        for block in ScheduleBlock.objects.filter(weekday=day.weekday()).select_related(
            "provider", "location"
        ):
            rooms.setdefault(
                block.location_id, Resource.objects.filter(location=block.location_id).count()
            )
            for starts_at in _times_of(block, day, GRID_MINUTES):
                if chooser.random() > 0.6:
                    continue
                kind: AppointmentType = chooser.choice(types)
                ends_at = starts_at + timedelta(minutes=kind.duration_minutes)
                outcome = chooser.random()
                status = (
                    "completed" if outcome < 0.86 else "no_show" if outcome < 0.94 else "cancelled"
                )
                rows.append(
                    Appointment(
                        patient=chooser.choice(patients),
                        provider=block.provider,
                        location=block.location,
                        appointment_type=kind,
                        starts_at=starts_at,
                        ends_at=ends_at,
                        blocked_until=ends_at + timedelta(minutes=kind.buffer_minutes),
                        status=status,
                        booked_by=desk,
                        **_outcome_fields(status, starts_at, ends_at, desk),
                    )
                )
    Appointment.objects.bulk_create(rows)


def _outcome_fields(status: str, starts_at, ends_at, desk: User) -> dict:
    """The stamps a past visit of this outcome carries."""
    if status == "completed":
        return {"arrived_at": starts_at - timedelta(minutes=8), "completed_at": ends_at}
    if status == "no_show":
        return {"no_show_at": starts_at + timedelta(minutes=15)}
    return {
        "cancelled_at": starts_at - timedelta(days=1),
        "cancelled_by": desk,
        "cancel_reason": "Patient called to cancel",
    }


def _upcoming(chooser, desk, providers, types, patients, today) -> None:
    """Today and the next two weeks, booked through the booking service."""
    for days_ahead in range(0, 15):
        day = today + timedelta(days=days_ahead)
        for block in ScheduleBlock.objects.filter(weekday=day.weekday()).select_related(
            "provider", "location"
        ):
            for starts_at in _times_of(block, day, GRID_MINUTES):
                if chooser.random() > (0.7 if days_ahead < 3 else 0.45):
                    continue
                kind = chooser.choice(types)
                try:
                    appointment_book(
                        actor=desk,
                        patient=chooser.choice(patients),
                        provider=block.provider,
                        location=block.location,
                        appointment_type=kind,
                        starts_at=starts_at,
                    )
                except (SlotTaken, ValidationError):
                    continue  # taken, earlier today, or the provider's time off: as in life
