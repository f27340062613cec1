"""When a visit can be booked: the one set of rules the booking service and slot search share.

A `Calendar` loads, for a window of time, everything the rules look at (template blocks,
exceptions, held appointment times, resource bookings, rooms); `problems_in` then answers
for any candidate start in memory. `problems_with` is the one-visit form the booking service
calls inside its transaction; slot search loads a calendar per week and asks it many times.

Times: everything is compared as aware datetimes in UTC. Template blocks are wall-clock
times in the practice's time zone (`timezone.get_current_timezone()`), turned into instants
per date, so 09:00-12:00 stays 09:00-12:00 across daylight-saving changes. The held time of
a visit is [start, start + duration + buffer); the visit itself [start, start + duration)
must lie inside one block.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate
from zoneinfo import ZoneInfo

from django.db.models import Count, Max, Q
from django.utils import timezone
from django.utils.timezone import now as timezone_now
from django.utils.translation import gettext as _

from ambula.core.rows import plain_rows
from ambula.scheduling.models import (
    ACTIVE_STATUSES,
    LONGEST_BUFFER_MINUTES,
    LONGEST_VISIT_MINUTES,
    Appointment,
    AppointmentType,
    Location,
    Provider,
    Resource,
    ResourceBooking,
    ScheduleBlock,
    ScheduleException,
    TemplateRevision,
)

# Nothing held longer than this can start before a window and still overlap it: the bound
# that keeps the held-time queries to a short index range instead of all of history.
LONGEST_HOLD = timedelta(minutes=LONGEST_VISIT_MINUTES + LONGEST_BUFFER_MINUTES)

# Problem codes that mean "someone else holds this time" (as opposed to "never bookable").
TAKEN_CODES = frozenset({"provider_busy", "no_room", "equipment_busy"})


def practice_zone() -> ZoneInfo:
    return timezone.get_current_timezone()


def wall_clock(day: date, at: time, zone: ZoneInfo | None = None) -> datetime:
    """The instant (UTC) that shows `at` on `day` on the practice's clocks.

    A wall-clock time skipped by a spring-forward change is moved on by the gap (02:30 on
    the change day becomes 03:30), as clocks showing it never existed.
    """
    zone = zone or practice_zone()
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def does_not_exist(moment: datetime) -> bool:
    """Tell whether an aware datetime names a wall-clock time its own zone skips (DST gap)."""
    if moment.tzinfo is None:
        return True
    round_trip = moment.astimezone(UTC).astimezone(moment.tzinfo)
    return round_trip.replace(tzinfo=None) != moment.replace(tzinfo=None)


@dataclass(frozen=True)
class Problem:
    code: str
    message: str


class Intervals:
    """Half-open time intervals, answering "does anything overlap [start, end)?" by bisection."""

    def __init__(self, intervals: list[tuple[datetime, datetime]]) -> None:
        intervals.sort()
        self.starts = [start for start, _end in intervals]
        # The latest end among the first i intervals: an overlap exists iff some interval
        # starting before `end` ends after `start`.
        self.max_ends = list(accumulate((end for _start, end in intervals), max))

    def overlaps(self, start: datetime, end: datetime) -> bool:
        index = bisect.bisect_left(self.starts, end)
        return index > 0 and self.max_ends[index - 1] > start


NOTHING = Intervals([])


@dataclass(frozen=True)
class Block:
    location_id: object
    starts_at: time
    ends_at: time
    valid_from: date
    valid_until: date | None
    type_ids: frozenset

    def allows(self, type_id, day: date) -> bool:
        return (
            self.valid_from <= day
            and (self.valid_until is None or day <= self.valid_until)
            and (not self.type_ids or type_id in self.type_ids)
        )


def load_template_blocks(provider_ids: list, location_ids: list, *, since: date) -> dict:
    """The template blocks in force on or after `since`, by (provider, weekday), by start."""
    blocks, types_of = {}, defaultdict(set)
    # One row per block and allowed type (one with None for a block that allows any).
    for block_id, type_id, *block in plain_rows(
        ScheduleBlock.objects.filter(
            Q(valid_until__isnull=True) | Q(valid_until__gte=since),
            provider_id__in=provider_ids,
            location_id__in=location_ids,
        ).order_by(),
        "id",
        "appointment_types__id",
        "provider_id",
        "weekday",
        "location_id",
        "starts_at",
        "ends_at",
        "valid_from",
        "valid_until",
    ):
        blocks[block_id] = block
        if type_id is not None:
            types_of[block_id].add(type_id)
    by_day = defaultdict(list)
    for block_id, (provider_id, weekday, location_id, *rest) in blocks.items():
        by_day[(provider_id, weekday)].append(
            Block(location_id, *rest, type_ids=frozenset(types_of[block_id]))
        )
    return {
        key: tuple(sorted(value, key=lambda block: block.starts_at))
        for key, value in by_day.items()
    }


# Slot searches read the same templates many times a minute; they change a few times a month.
# Each process keeps the last few it loaded, and reuses one while its stamp is current: the
# template revision (moved in the same transaction as every change through
# `schedule_templates`, so it cannot be seen before the change is), and the count and latest
# change of the blocks (which also catch blocks written outside the services, as tests and
# the demo do).
_templates: OrderedDict = OrderedDict()
_templates_lock = threading.Lock()
TEMPLATES_KEPT = 32


def _template_stamp() -> tuple:
    revision = TemplateRevision.objects.values_list("number", flat=True).first()
    blocks = ScheduleBlock.objects.aggregate(Count("id"), Max("updated_at"))
    return (revision, *blocks.values())


def template_blocks(provider_ids: list, location_ids: list, *, since: date) -> dict:
    """`load_template_blocks`, from this process's cache while no block has changed.

    Keeps the blocks in force from yesterday on (a superset of those from `since` on, as
    searches never start in the past), so searches from any day share one entry.
    """
    since = min(since, timezone.localdate() - timedelta(days=1))
    stamp = _template_stamp()
    key = (frozenset(provider_ids), frozenset(location_ids), since)
    with _templates_lock:
        kept = _templates.get(key)
        if kept is not None and kept[0] == stamp:
            _templates.move_to_end(key)
            return kept[1]
    blocks = load_template_blocks(provider_ids, location_ids, since=since)
    with _templates_lock:
        _templates[key] = (stamp, blocks)
        while len(_templates) > TEMPLATES_KEPT:
            _templates.popitem(last=False)
    return blocks


@dataclass
class Calendar:
    """What the rules need for some providers and locations.

    Two parts, loaded separately so a slot search can load the first once and the second per
    stretch of days: the rules (template blocks, exceptions, rooms, the type's equipment) and
    the held times (appointments and resource bookings) of a window.
    """

    zone: ZoneInfo
    provider_ids: list
    location_ids: list
    blocks: dict = field(default_factory=dict)  # (provider, weekday) -> (Block, ...)
    exceptions: list = field(default_factory=list)  # (kind, provider_id, location_id, start, end)
    provider_busy: dict = field(default_factory=dict)  # provider_id -> Intervals
    resource_busy: dict = field(default_factory=dict)  # resource_id -> Intervals
    rooms: dict = field(default_factory=lambda: defaultdict(list))  # location_id -> [Resource]
    equipment: list = field(default_factory=list)  # the type's equipment, all locations

    @classmethod
    def load(
        cls,
        *,
        provider_ids: list,
        location_ids: list,
        appointment_type: AppointmentType,
        window_start: datetime,
        window_end: datetime,
        ignore_appointment: Appointment | None = None,
    ) -> Calendar:
        """Load rules and held times for [window_start, window_end) with a handful of queries."""
        calendar = cls.load_rules(
            provider_ids=provider_ids,
            location_ids=location_ids,
            appointment_type=appointment_type,
            window_start=window_start,
            window_end=window_end,
        )
        calendar.load_held(window_start, window_end, ignore_appointment=ignore_appointment)
        return calendar

    @classmethod
    def load_rules(
        cls,
        *,
        provider_ids: list,
        location_ids: list,
        appointment_type: AppointmentType,
        window_start: datetime,
        window_end: datetime,
        for_search: bool = False,
    ) -> Calendar:
        """The template blocks, exceptions, rooms and equipment that apply in the window.

        The booking service reads the blocks afresh inside its transaction. A slot search
        (`for_search`) takes them from this process's cache, and keeps only the locations
        where the providers have blocks: no slot can be elsewhere, so other locations' rooms
        need not be loaded, nor their bookings read.
        """
        zone = practice_zone()
        first_day = window_start.astimezone(zone).date() - timedelta(days=1)
        blocks = (template_blocks if for_search else load_template_blocks)(
            provider_ids, location_ids, since=first_day
        )
        if for_search:
            offered = {block.location_id for day in blocks.values() for block in day}
            location_ids = [pk for pk in location_ids if pk in offered]
        calendar = cls(
            zone=zone, provider_ids=provider_ids, location_ids=location_ids, blocks=blocks
        )
        calendar.exceptions = list(
            ScheduleException.objects.filter(
                Q(provider__isnull=True) | Q(provider_id__in=provider_ids),
                Q(location__isnull=True) | Q(location_id__in=location_ids),
                starts_at__lt=window_end,
                ends_at__gt=window_start,
            ).values_list("kind", "provider_id", "location_id", "starts_at", "ends_at")
        )

        calendar.equipment = list(appointment_type.equipment.all())
        for room in Resource.objects.filter(
            location_id__in=location_ids, kind=Resource.Kind.ROOM, is_active=True
        ).order_by("name", "id"):
            calendar.rooms[room.location_id].append(room)
        return calendar

    def load_held(
        self,
        window_start: datetime,
        window_end: datetime,
        *,
        ignore_appointment: Appointment | None = None,
    ) -> None:
        """Replace the held times with those overlapping [window_start, window_end)."""
        appointments = Appointment.objects.filter(
            provider_id__in=self.provider_ids,
            status__in=ACTIVE_STATUSES,
            overbooked=False,
            starts_at__gt=window_start - LONGEST_HOLD,
            starts_at__lt=window_end,
            blocked_until__gt=window_start,
        )
        if ignore_appointment is not None:
            appointments = appointments.exclude(pk=ignore_appointment.pk)
        held = defaultdict(list)
        for provider_id, start, end in plain_rows(
            appointments.order_by(), "provider_id", "starts_at", "blocked_until"
        ):
            held[provider_id].append((start, end))
        self.provider_busy = {key: Intervals(value) for key, value in held.items()}

        resource_ids = [room.id for rooms in self.rooms.values() for room in rooms]
        resource_ids += [resource.id for resource in self.equipment]
        bookings = ResourceBooking.objects.filter(
            resource_id__in=resource_ids,
            active=True,
            starts_at__gt=window_start - LONGEST_HOLD,
            starts_at__lt=window_end,
            blocked_until__gt=window_start,
        )
        if ignore_appointment is not None:
            bookings = bookings.exclude(appointment_id=ignore_appointment.pk)
        busy = defaultdict(list)
        for resource_id, start, end in plain_rows(
            bookings.order_by(), "resource_id", "starts_at", "blocked_until"
        ):
            busy[resource_id].append((start, end))
        self.resource_busy = {key: Intervals(value) for key, value in busy.items()}

    def is_busy(self, resource: Resource, start: datetime, end: datetime) -> bool:
        return self.resource_busy.get(resource.id, NOTHING).overlaps(start, end)

    def free_rooms(self, location_id, start: datetime, end: datetime) -> list[Resource]:
        """The location's active rooms free for [start, end), by name: the first is taken."""
        return [room for room in self.rooms[location_id] if not self.is_busy(room, start, end)]

    def equipment_at(self, location_id) -> list[Resource]:
        return [resource for resource in self.equipment if resource.location_id == location_id]


def held_times(
    appointment_type: AppointmentType, starts_at: datetime
) -> tuple[datetime, datetime, datetime]:
    """Start, end of the visit and end of the held time (end plus buffer), in UTC."""
    start = starts_at.astimezone(UTC)
    end = start + timedelta(minutes=appointment_type.duration_minutes)
    return start, end, end + timedelta(minutes=appointment_type.buffer_minutes)


def problems_in(
    calendar: Calendar,
    *,
    provider: Provider,
    location: Location,
    appointment_type: AppointmentType,
    starts_at: datetime,
    check_provider_overlap: bool = True,
    first_only: bool = False,
) -> list[Problem]:
    """Every reason the visit cannot start then, from a loaded calendar (empty: bookable)."""
    problems: list[Problem] = []

    def refuse(code: str, message: str) -> bool:
        problems.append(Problem(code, message))
        return first_only

    def provider_name() -> str:
        return provider.user.full_name

    if not provider.is_active and refuse(
        "provider_inactive",
        _("%(provider)s is not taking appointments.") % {"provider": provider_name()},
    ):
        return problems
    if not appointment_type.is_active and refuse(
        "type_inactive", _("%(type)s visits are no longer offered.") % {"type": appointment_type}
    ):
        return problems
    if not location.is_active and refuse("location_inactive", _("This location is closed.")):
        return problems
    if does_not_exist(starts_at):
        refuse(
            "nonexistent_time",
            _("That time does not exist: the clocks go forward then. Choose another time."),
        )
        return problems
    start, end, held_until = held_times(appointment_type, starts_at)
    if start < timezone_now() and refuse("past", _("That time has already passed.")):
        return problems

    local = start.astimezone(calendar.zone)
    day = local.date()
    inside, type_refused = False, False
    for block in calendar.blocks.get((provider.pk, day.weekday()), ()):
        if block.location_id != location.pk:
            continue
        if wall_clock(day, block.starts_at, calendar.zone) <= start and end <= wall_clock(
            day, block.ends_at, calendar.zone
        ):
            if block.allows(appointment_type.pk, day):
                inside = True
                break
            if block.valid_from <= day and (block.valid_until is None or day <= block.valid_until):
                type_refused = True
    if not inside:
        if type_refused:
            message = _("%(provider)s does not see %(type)s visits at this time.") % {
                "provider": provider_name(),
                "type": appointment_type,
            }
            code = "type_not_offered"
        else:
            message = _("%(provider)s does not see patients at this time.") % {
                "provider": provider_name()
            }
            code = "outside_schedule"
        if refuse(code, message):
            return problems

    for kind, provider_id, location_id, exception_start, exception_end in calendar.exceptions:
        if not (exception_start < held_until and exception_end > start):
            continue
        if provider_id is not None and provider_id != provider.pk:
            continue
        if location_id is not None and location_id != location.pk:
            continue
        if provider_id is not None:
            message = _("%(provider)s is away then.") % {"provider": provider_name()}
        elif location_id is not None:
            message = _("The location is closed then.")
        else:
            message = _("The practice is closed for a holiday then.")
        if refuse(kind, message):
            return problems
        break

    busy = calendar.provider_busy.get(provider.pk, NOTHING)
    if (
        check_provider_overlap
        and busy.overlaps(start, held_until)
        and refuse("provider_busy", _("The provider already has an appointment then."))
    ):
        return problems

    if (
        appointment_type.needs_room
        and not calendar.free_rooms(location.pk, start, held_until)
        and refuse("no_room", _("No exam room is free then."))
    ):
        return problems

    if calendar.equipment:
        here = calendar.equipment_at(location.pk)
        if not here and refuse(
            "equipment_missing", _("This location lacks the equipment this visit needs.")
        ):
            return problems
        for resource in here:
            if not resource.is_active:
                message, code = _("The %(resource)s is out of service."), "equipment_inactive"
            elif calendar.is_busy(resource, start, held_until):
                message, code = _("The %(resource)s is in use then."), "equipment_busy"
            else:
                continue
            if refuse(code, message % {"resource": resource.name}):
                return problems
    return problems


def load_for_visit(
    *,
    provider: Provider,
    location: Location,
    appointment_type: AppointmentType,
    starts_at: datetime,
    ignore_appointment: Appointment | None = None,
) -> Calendar:
    start, _end, held_until = held_times(appointment_type, starts_at)
    return Calendar.load(
        provider_ids=[provider.pk],
        location_ids=[location.pk],
        appointment_type=appointment_type,
        window_start=start,
        window_end=held_until,
        ignore_appointment=ignore_appointment,
    )


def problems_with(
    *,
    provider: Provider,
    location: Location,
    appointment_type: AppointmentType,
    starts_at: datetime,
    ignore_appointment: Appointment | None = None,
) -> list[str]:
    """Say why the visit cannot be booked then; an empty list means it can."""
    calendar = load_for_visit(
        provider=provider,
        location=location,
        appointment_type=appointment_type,
        starts_at=starts_at,
        ignore_appointment=ignore_appointment,
    )
    return [
        problem.message
        for problem in problems_in(
            calendar,
            provider=provider,
            location=location,
            appointment_type=appointment_type,
            starts_at=starts_at,
        )
    ]
