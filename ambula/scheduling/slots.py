"""Slot search: the next times a visit of some type can be booked, across providers.

Candidates are generated from the template blocks, day by day in the practice's time zone:
from each block's start, every 15 minutes (or every `duration` minutes for visits shorter
than 15), while the visit still ends inside the block. Each candidate is judged by the same
rules as a booking (`availability.problems_in`), against a calendar loaded once per week of
the search (a day, then two, four, then a week at a time), so the cost is a few queries per
stretch of days searched, not per slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils.timezone import now as timezone_now

from ambula.scheduling.availability import Calendar, practice_zone, problems_in, wall_clock
from ambula.scheduling.models import AppointmentType, Location, Provider

STEP_MINUTES = 15
# Days loaded per query round: small first (the next slot is usually soon), then wider.
CHUNK_DAYS = (1, 2, 4, 7)


@dataclass(frozen=True)
class Slot:
    provider: Provider
    location: Location
    starts_at: datetime  # in the practice's time zone


def _step(appointment_type: AppointmentType) -> timedelta:
    return timedelta(minutes=min(STEP_MINUTES, appointment_type.duration_minutes))


def next_available(
    *,
    appointment_type: AppointmentType,
    providers: list[Provider] | None = None,
    locations: list[Location] | None = None,
    start: datetime | None = None,
    weeks: int = 8,
    limit: int = 20,
) -> list[Slot]:
    """Find the first `limit` bookable slots from `start`, in time order."""
    if not appointment_type.is_active:
        return []
    providers = [
        provider
        for provider in (
            providers
            if providers is not None
            else Provider.objects.filter(is_active=True).select_related("user")
        )
        if provider.is_active
    ]
    locations = [
        location
        for location in (
            locations if locations is not None else Location.objects.filter(is_active=True)
        )
        if location.is_active
    ]
    if not providers or not locations or limit <= 0:
        return []
    zone = practice_zone()
    now = timezone_now()
    search_start = max(start or now, now).astimezone(UTC)
    search_end = search_start + timedelta(weeks=weeks)
    duration = timedelta(minutes=appointment_type.duration_minutes)
    step = _step(appointment_type)
    providers_by_id = {provider.pk: provider for provider in providers}
    locations_by_id = {location.pk: location for location in locations}
    provider_order = sorted(providers_by_id, key=lambda pk: (str(providers_by_id[pk]), str(pk)))

    found: list[Slot] = []
    day = search_start.astimezone(zone).date()
    last_day = search_end.astimezone(zone).date()
    rounds = 0
    while day <= last_day and len(found) < limit:
        days = CHUNK_DAYS[min(rounds, len(CHUNK_DAYS) - 1)]
        rounds += 1
        chunk_last = min(day + timedelta(days=days - 1), last_day)
        chunk_start = max(wall_clock(day, datetime.min.time(), zone), search_start)
        # A visit starting before midnight may be held past it (480 + 120 minutes at most).
        chunk_end = min(
            wall_clock(chunk_last + timedelta(days=1), datetime.min.time(), zone),
            search_end,
        ) + timedelta(hours=10)
        calendar = Calendar.load(
            provider_ids=list(providers_by_id),
            location_ids=list(locations_by_id),
            appointment_type=appointment_type,
            window_start=chunk_start,
            window_end=chunk_end,
        )
        while day <= chunk_last and len(found) < limit:
            candidates = []
            for provider_id in provider_order:
                for block in calendar.blocks.get((provider_id, day.weekday()), ()):
                    if block.location_id not in locations_by_id or not block.allows(
                        appointment_type.pk, day
                    ):
                        continue
                    moment = wall_clock(day, block.starts_at, zone)
                    block_end = wall_clock(day, block.ends_at, zone)
                    while moment + duration <= block_end:
                        if search_start <= moment < search_end:
                            candidates.append((moment, provider_id, block.location_id))
                        moment += step
            candidates.sort(key=lambda candidate: candidate[0])  # stable: provider order kept
            for moment, provider_id, location_id in candidates:
                provider = providers_by_id[provider_id]
                location = locations_by_id[location_id]
                if not problems_in(
                    calendar,
                    provider=provider,
                    location=location,
                    appointment_type=appointment_type,
                    starts_at=moment,
                    first_only=True,
                ):
                    found.append(Slot(provider, location, moment.astimezone(zone)))
                    if len(found) == limit:
                        break
            day += timedelta(days=1)
    return found
