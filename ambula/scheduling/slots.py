"""Slot search: the next times a visit of some type can be booked, across providers.

Candidates are generated from the template blocks, day by day in the practice's time zone:
from each block's start, every 15 minutes (or every `duration` minutes for visits shorter
than 15), while the visit still ends inside the block. Each candidate is judged by the same
rules as a booking (`availability.problems_in`), in memory. The rules (blocks, exceptions,
rooms) are loaded once per search; the held times once per stretch of days that offer any
time (one such day, then two, four, then a week at a time, since the next slot is usually
soon), and only from the stretch's first candidate to its last, so a search costs a few
queries per stretch, not per slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.utils.timezone import now as timezone_now

from ambula.scheduling.availability import Calendar, practice_zone, problems_in, wall_clock
from ambula.scheduling.models import AppointmentType, Location, Provider

STEP_MINUTES = 15
# Days with candidates per query round: small first (the next slot is usually soon), then wider.
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
    # A visit starting just before a stretch's end holds time past it, by at most this much.
    hold = duration + timedelta(minutes=appointment_type.buffer_minutes)
    step = _step(appointment_type)
    providers_by_id = {provider.pk: provider for provider in providers}
    locations_by_id = {location.pk: location for location in locations}
    provider_order = sorted(providers_by_id, key=lambda pk: (str(providers_by_id[pk]), str(pk)))

    calendar = Calendar.load_rules(
        provider_ids=list(providers_by_id),
        location_ids=list(locations_by_id),
        appointment_type=appointment_type,
        window_start=search_start,
        window_end=search_end + hold,
        for_search=True,
    )

    def candidates_on(day: date) -> list[tuple[datetime, object, object]]:
        """Every start on `day` the templates offer, in time order (then provider order)."""
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
        return candidates

    found: list[Slot] = []
    day = search_start.astimezone(zone).date()
    last_day = search_end.astimezone(zone).date()
    rounds = 0
    while day <= last_day and len(found) < limit:
        # The next few days that offer any time at all (weekends and closed days cost nothing).
        batch = []
        while day <= last_day and len(batch) < CHUNK_DAYS[min(rounds, len(CHUNK_DAYS) - 1)]:
            if candidates := candidates_on(day):
                batch.append(candidates)
            day += timedelta(days=1)
        rounds += 1
        if not batch:
            break
        calendar.load_held(batch[0][0][0], batch[-1][-1][0] + hold)
        for moment, provider_id, location_id in (c for candidates in batch for c in candidates):
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
    return found
