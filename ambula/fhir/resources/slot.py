"""Slot: the free times the slot picker offers, computed, never stored.

A slot is one start of one appointment type with one provider at one location. Its id says
all four, so `Slot/<id>` can be read back and an Appointment can be booked from it:

    <provider id, 32 hex>-<location id, last 8 hex>-<type id, last 8 hex>-<start, UTC YYYYMMDDHHMM>

62 characters (FHIR ids are at most 64). Locations and appointment types are a handful, so
the last 8 hex digits of their (random-tailed) ids find them; an id that matches none or
more than one is not a slot (404).

Search uses the slot picker's own service (`scheduling.slots.next_available`), so both show
the same open times. Only free slots are listed: the times already held are appointments.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from math import ceil

from django.utils.timezone import now as timezone_now

from ambula.accounts.policy import Capability
from ambula.fhir.errors import FhirError, bad_request, not_found
from ambula.fhir.mapper import ResourceMapper, instant, reference
from ambula.fhir.registry import register
from ambula.fhir.resources.schedule import (
    APPOINTMENT_TYPE_SYSTEM,
    appointment_type_concept,
)
from ambula.fhir.search_params import (
    DATE_PREFIXES,
    DateParam,
    ReferenceParam,
    TokenParam,
    _split_commas,
    as_uuid,
    date_range,
    reference_key,
)
from ambula.scheduling.availability import (
    TAKEN_CODES,
    load_for_visit,
    practice_zone,
    problems_in,
    wall_clock,
)
from ambula.scheduling.models import AppointmentType, Location, Provider
from ambula.scheduling.slots import next_available

SLOT_STATUS_SYSTEM = "http://hl7.org/fhir/slotstatus"
DEFAULT_DAYS = 7
MAX_DAYS = 31
MAX_SLOTS = 10_000  # a 31-day window never holds more for one type; a bound all the same
_ID = re.compile(r"^([0-9a-f]{32})-([0-9a-f]{8})-([0-9a-f]{8})-(\d{12})$")


@dataclass(frozen=True)
class FhirSlot:
    provider: Provider
    location: Location
    appointment_type: AppointmentType
    starts_at: datetime  # aware
    status: str = "free"

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.appointment_type.duration_minutes)


def slot_id(provider_id, location_id, type_id, starts_at: datetime) -> str:
    start = starts_at.astimezone(UTC).strftime("%Y%m%d%H%M")
    return (
        f"{uuid.UUID(str(provider_id)).hex}-{uuid.UUID(str(location_id)).hex[-8:]}-"
        f"{uuid.UUID(str(type_id)).hex[-8:]}-{start}"
    )


def _one_by_suffix(model, suffix: str):
    found = list(model.objects.filter(pk__endswith=suffix)[:2])
    return found[0] if len(found) == 1 else None


def slot_parts(resource_id: str) -> tuple[Provider, Location, AppointmentType, datetime] | None:
    """What a slot id names, or None if it names nothing that exists."""
    match = _ID.match(resource_id or "")
    if match is None:
        return None
    provider_hex, location_suffix, type_suffix, start = match.groups()
    try:
        starts_at = datetime.strptime(start, "%Y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        return None
    provider = Provider.objects.select_related("user").filter(pk=uuid.UUID(provider_hex)).first()
    location = _one_by_suffix(Location, location_suffix)
    appointment_type = _one_by_suffix(AppointmentType, type_suffix)
    if provider is None or location is None or appointment_type is None:
        return None
    return provider, location, appointment_type, starts_at


def slot_status(
    provider: Provider, location: Location, appointment_type: AppointmentType, start: datetime
) -> str | None:
    """free or busy for a start inside the provider's template there; None if it is not one."""
    zone = practice_zone()
    local = start.astimezone(zone)
    day = local.date()
    calendar = load_for_visit(
        provider=provider, location=location, appointment_type=appointment_type, starts_at=start
    )
    end = start + timedelta(minutes=appointment_type.duration_minutes)
    inside = any(
        block.location_id == location.pk
        and block.allows(appointment_type.pk, day)
        and wall_clock(day, block.starts_at, zone) <= start
        and end <= wall_clock(day, block.ends_at, zone)
        for block in calendar.blocks.get((provider.pk, day.weekday()), ())
    )
    if not inside:
        return None
    problems = problems_in(
        calendar,
        provider=provider,
        location=location,
        appointment_type=appointment_type,
        starts_at=start,
    )
    if not problems:
        return "free"
    # Held by another visit: busy. Past, away, closed, inactive: not bookable at all.
    return (
        "busy" if all(problem.code in TAKEN_CODES for problem in problems) else "busy-unavailable"
    )


@register
class SlotMapper(ResourceMapper):
    resource_type = "Slot"
    model = None
    versioned = False
    common_params = ("_id",)  # computed times have no change history
    read_capability = Capability.VIEW_SCHEDULE
    patient_path = None
    search_params = {
        "schedule": ReferenceParam(
            targets=("Schedule",),
            documentation="Schedule/<provider id>; without it, every active provider.",
        ),
        "start": DateParam(
            documentation=f"When the slot starts (prefixes ge, gt, le, lt, eq). The window is "
            f"at most {MAX_DAYS} days; without a lower bound it starts now, without an upper "
            f"bound it lasts {DEFAULT_DAYS} days.",
        ),
        "status": TokenParam(
            documentation="Only free slots are served: status=free lists them, any other "
            "status finds none (held times are Appointments).",
        ),
        "service-type": TokenParam(
            system=APPOINTMENT_TYPE_SYSTEM,
            documentation=f"The appointment type ({APPOINTMENT_TYPE_SYSTEM}|<id>); without "
            "it, every active type.",
        ),
        "location": ReferenceParam(
            targets=("Location",),
            documentation="Location/<id>: only slots there (an Ambula extension).",
        ),
    }

    # --- reading ---------------------------------------------------------------------------

    def get(self, resource_id: str) -> FhirSlot:
        parts = slot_parts(resource_id)
        if parts is None:
            raise not_found("Slot", resource_id)
        provider, location, appointment_type, starts_at = parts
        status = slot_status(provider, location, appointment_type, starts_at)
        if status is None:
            raise not_found("Slot", resource_id)
        return FhirSlot(provider, location, appointment_type, starts_at, status)

    def resource_id(self, slot: FhirSlot) -> str:
        return slot_id(slot.provider.pk, slot.location.pk, slot.appointment_type.pk, slot.starts_at)

    def to_fhir(self, slot: FhirSlot) -> dict:
        return {
            "serviceType": [appointment_type_concept(slot.appointment_type)],
            "specialty": [{"text": slot.provider.specialty}],
            "schedule": reference("Schedule", slot.provider.pk, str(slot.provider)),
            "status": slot.status,
            "start": instant(slot.starts_at),
            "end": instant(slot.ends_at),
            "comment": f"{slot.appointment_type.name} with {slot.provider.user.full_name} "
            f"at {slot.location.name}",
        }

    # --- searching -------------------------------------------------------------------------

    def find(self, principal, grant, request) -> tuple[list[FhirSlot], int]:
        criteria = _Criteria()
        for name, modifier, values in request.filters:
            for value in values:
                criteria.read(name, modifier, value)
        slots = criteria.slots()
        return slots[request.offset : request.offset + request.count], len(slots)


class _Criteria:
    """A Slot search's parameters, read into what `next_available` takes."""

    def __init__(self) -> None:
        self.provider_ids: set | None = None
        self.location_ids: set | None = None
        self.type_ids: set | None = None
        self.ids: set | None = None
        self.lower: datetime | None = None
        self.upper: datetime | None = None
        self.nothing = False

    @staticmethod
    def _narrow(current: set | None, found: set) -> set:
        # Repeated parameters AND together; the alternatives within one OR.
        return found if current is None else current & found

    def read(self, name: str, modifier: str, value: str) -> None:
        alternatives = [part for part in _split_commas(value) if part]
        if not alternatives:
            raise bad_request(f"Search parameter {name} has an empty value.", [name])
        if name == "start":
            for part in alternatives:
                self._start(part)
        elif name == "status":
            codes = {
                part.rpartition("|")[2]
                for part in alternatives
                if part.rpartition("|")[0] in ("", SLOT_STATUS_SYSTEM)
            }
            wanted = "free" in codes if modifier != "not" else "free" not in codes
            if modifier not in ("", "not"):
                raise bad_request(f"Search parameter status does not support :{modifier}.")
            self.nothing |= not wanted
        elif name == "schedule":
            self.provider_ids = self._narrow(
                self.provider_ids, self._keys(alternatives, ("Schedule",), modifier)
            )
        elif name == "location":
            self.location_ids = self._narrow(
                self.location_ids, self._keys(alternatives, ("Location",), modifier)
            )
        elif name == "service-type":
            keys = set()
            for part in alternatives:
                system, bar, code = part.rpartition("|")
                if (not bar or system in ("", APPOINTMENT_TYPE_SYSTEM)) and as_uuid(code):
                    keys.add(as_uuid(code))
            self.type_ids = self._narrow(self.type_ids, keys)
        elif name == "_id":
            self.ids = self._narrow(self.ids, set(alternatives))
        else:
            raise bad_request(f"Search parameter {name} is not supported for Slot.", [name])

    @staticmethod
    def _keys(values: list[str], targets: tuple[str, ...], modifier: str) -> set:
        if modifier and modifier not in targets:
            raise bad_request(f"This search parameter cannot point to {modifier}.")
        keys = set()
        for value in values:
            kind, key = reference_key(value, targets)
            if (kind or key) and as_uuid(key):
                keys.add(as_uuid(key))
        return keys

    def _start(self, value: str) -> None:
        prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
        text = value[2:] if value[:2] in DATE_PREFIXES else value
        start, end = date_range(text, "start")
        if prefix in ("ne", "sa", "eb", "ap"):
            prefix = {"sa": "gt", "eb": "lt", "ap": "eq"}.get(prefix, "")
            if not prefix:
                raise bad_request(
                    "Search parameter start does not support the ne prefix.", ["start"]
                )
        lower = {"ge": start, "gt": end, "eq": start}.get(prefix)
        upper = {"lt": start, "le": end, "eq": end}.get(prefix)
        if lower is not None:
            self.lower = lower if self.lower is None else max(self.lower, lower)
        if upper is not None:
            self.upper = upper if self.upper is None else min(self.upper, upper)

    def window(self) -> tuple[datetime, datetime]:
        now = timezone_now()
        lower = max(self.lower or now, now)
        upper = self.upper or (max(self.lower or now, now) + timedelta(days=DEFAULT_DAYS))
        if upper - max(self.lower or now, now) > timedelta(days=MAX_DAYS):
            raise FhirError(
                400,
                "too-costly",
                f"A Slot search covers at most {MAX_DAYS} days: give start=ge... and start=lt...",
                expression=["start"],
            )
        return lower, upper

    def slots(self) -> list[FhirSlot]:
        lower, upper = self.window()
        if self.nothing or upper <= lower or self.ids == set():
            return []
        providers = Provider.objects.filter(is_active=True).select_related("user")
        if self.provider_ids is not None:
            providers = providers.filter(pk__in=self.provider_ids)
        providers = list(providers)
        locations = Location.objects.filter(is_active=True)
        if self.location_ids is not None:
            locations = locations.filter(pk__in=self.location_ids)
        locations = list(locations)
        types = AppointmentType.objects.filter(is_active=True).order_by("name", "pk")
        if self.type_ids is not None:
            types = types.filter(pk__in=self.type_ids)
        if not providers or not locations:
            return []
        weeks = max(1, ceil((upper - lower) / timedelta(weeks=1)))
        found: list[FhirSlot] = []
        for appointment_type in types:
            for slot in next_available(
                appointment_type=appointment_type,
                providers=providers,
                locations=locations,
                start=lower,
                weeks=weeks,
                limit=MAX_SLOTS,
            ):
                if slot.starts_at >= upper:
                    break
                found.append(
                    FhirSlot(slot.provider, slot.location, appointment_type, slot.starts_at)
                )
        # Time order, as the picker lists them; types in name order at the same time.
        found.sort(key=lambda slot: slot.starts_at)
        if self.ids is not None:
            found = [
                slot
                for slot in found
                if slot_id(
                    slot.provider.pk, slot.location.pk, slot.appointment_type.pk, slot.starts_at
                )
                in self.ids
            ]
        return found
