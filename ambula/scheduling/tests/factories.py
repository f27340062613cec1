"""Plain scheduling data for tests, written directly (the set-up services live elsewhere)."""

import itertools
from datetime import date, time

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.scheduling.models import (
    AppointmentType,
    Location,
    Provider,
    Resource,
    ScheduleBlock,
    ScheduleException,
    npi_is_valid,
)

_numbers = itertools.count(1)


def valid_npi(number: int) -> str:
    """A 10-digit NPI passing its check digit, distinct for each number."""
    stem = f"1{number:08d}"
    return next(stem + digit for digit in "0123456789" if npi_is_valid(stem + digit))


def make_location(name: str = "", **fields) -> Location:
    number = next(_numbers)
    return Location.objects.create(
        name=name or f"Clinic {number}",
        address_line=f"{number} Main St",
        city="Springfield",
        state="IL",
        postal_code="62701",
        **fields,
    )


def make_provider(user=None, *, full_name: str = "", **fields) -> Provider:
    number = next(_numbers)
    if user is None:
        user = UserFactory(full_name=full_name or f"Dr. Test {number}", roles=[Role.PHYSICIAN])
    return Provider.objects.create(
        user=user,
        credentials="MD",
        specialty="Family medicine",
        npi=valid_npi(number),
        taxonomy_code="207Q00000X",
        **fields,
    )


def make_room(location: Location, name: str = "", **fields) -> Resource:
    return Resource.objects.create(
        location=location, name=name or f"Room {next(_numbers)}", kind=Resource.Kind.ROOM, **fields
    )


def make_equipment(location: Location, name: str = "", **fields) -> Resource:
    return Resource.objects.create(
        location=location,
        name=name or f"ECG {next(_numbers)}",
        kind=Resource.Kind.EQUIPMENT,
        **fields,
    )


def make_type(name: str = "", *, duration: int = 30, buffer: int = 0, **fields) -> AppointmentType:
    return AppointmentType.objects.create(
        name=name or f"Visit {next(_numbers)}",
        duration_minutes=duration,
        buffer_minutes=buffer,
        **fields,
    )


def make_block(
    provider: Provider,
    location: Location,
    *,
    weekdays=range(7),
    starts_at: time = time(9),
    ends_at: time = time(17),
    valid_from: date = date(2000, 1, 1),
    valid_until: date | None = None,
    types=(),
) -> list[ScheduleBlock]:
    blocks = []
    for weekday in weekdays:
        block = ScheduleBlock.objects.create(
            provider=provider,
            location=location,
            weekday=weekday,
            starts_at=starts_at,
            ends_at=ends_at,
            valid_from=valid_from,
            valid_until=valid_until,
        )
        block.appointment_types.set(types)
        blocks.append(block)
    return blocks


def make_exception(kind: str, starts_at, ends_at, **fields) -> ScheduleException:
    return ScheduleException.objects.create(
        kind=kind, starts_at=starts_at, ends_at=ends_at, **fields
    )
