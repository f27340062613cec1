from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from ambula.accounts.models import User
from ambula.accounts.policy import Capability, visible
from ambula.core.errors import NotFound
from ambula.scheduling.availability import practice_zone, wall_clock
from ambula.scheduling.models import (
    Appointment,
    AppointmentType,
    Location,
    Provider,
    Resource,
    ScheduleBlock,
    ScheduleException,
)
from ambula.scheduling.services import PROVIDER_ROLES


def location_list(*, actor: User) -> QuerySet[Location]:
    """Return the practice's active locations, by name."""
    return Location.objects.filter(is_active=True).order_by("name")


# --- The schedule pages' reads ------------------------------------------------------------------
# Who comes when is PHI: the views that show these record one audited read per page view.

ROW_MINUTES = 15
DAY_START, DAY_END = time(8), time(17)  # the grid shown when nobody works that day


@dataclass
class BoardColumn:
    provider: Provider
    blocks: list[tuple[time, time]] = field(default_factory=list)
    appointments: list[Appointment] = field(default_factory=list)

    def works_at(self, at: time) -> bool:
        return any(start <= at < end for start, end in self.blocks)


@dataclass
class BoardRow:
    at: time
    cells: list[tuple[bool, list[Appointment]]]  # per column: inside a block?, visits starting


@dataclass
class DayBoard:
    location: Location
    day: date
    columns: list[BoardColumn]
    rows: list[BoardRow]

    @property
    def appointment_count(self) -> int:
        return sum(len(column.appointments) for column in self.columns)


def _day_window(day: date) -> tuple[datetime, datetime]:
    zone = practice_zone()
    return wall_clock(day, time(0), zone), wall_clock(day + timedelta(days=1), time(0), zone)


def _blocks_on(day: date) -> QuerySet[ScheduleBlock]:
    return ScheduleBlock.objects.filter(
        Q(valid_until__isnull=True) | Q(valid_until__gte=day),
        weekday=day.weekday(),
        valid_from__lte=day,
        provider__is_active=True,
    )


# What the board, the week and the printed day show: loading only these keeps a busy day's
# hundreds of rows cheap (a patient row has some forty columns, the visit note is encrypted).
VISIT_SHOWN = (
    *("starts_at", "ends_at", "status", "overbooked", "overbook_reason"),
    *("provider", "location", "appointment_type"),  # the ids
    *("patient", "patient__given_name", "patient__family_name", "patient__date_of_birth"),
)
SHOWN_ON_SCHEDULE = (
    *VISIT_SHOWN,
    *("appointment_type__name", "appointment_type__colour"),
    *("provider__credentials", "provider__specialty", "provider__is_active"),
    *("provider__user", "provider__user__full_name", "location__name"),
)


def _visits(*, with_related: bool = True) -> QuerySet[Appointment]:
    """Active visits in time order, with what the schedule pages show (`with_related`: the
    type, provider and location joined too; else the caller attaches those it has)."""
    visits = Appointment.objects.exclude(status=Appointment.Status.CANCELLED).order_by(
        "starts_at", "provider_id"
    )
    if not with_related:
        return visits.select_related("patient").only(*VISIT_SHOWN)
    return visits.select_related("patient", "appointment_type", "provider__user", "location").only(
        *SHOWN_ON_SCHEDULE
    )


def _floor(at: time) -> time:
    return time(at.hour, at.minute - at.minute % ROW_MINUTES)


def appointment_day_board(*, actor: User, location: Location, day: date) -> DayBoard:
    """The day at one location: a column per provider working or booked there, 15-minute rows."""
    start, end = _day_window(day)
    visits = list(
        visible(actor, Capability.VIEW_SCHEDULE, _visits(with_related=False)).filter(
            location=location, starts_at__gte=start, starts_at__lt=end
        )
    )
    blocks = list(_blocks_on(day).filter(location=location).select_related("provider__user"))
    # A busy day has hundreds of visits but a handful of providers and types: load those once.
    providers = {block.provider_id: block.provider for block in blocks}
    booked = {visit.provider_id for visit in visits} - providers.keys()
    providers.update(Provider.objects.select_related("user").in_bulk(booked))
    types = AppointmentType.objects.in_bulk({visit.appointment_type_id for visit in visits})
    for visit in visits:
        visit.provider = providers[visit.provider_id]
        visit.appointment_type = types[visit.appointment_type_id]
        visit.location = location
    columns = {
        pk: BoardColumn(provider)
        for pk, provider in sorted(providers.items(), key=lambda item: str(item[1]))
    }
    for block in blocks:
        columns[block.provider_id].blocks.append((block.starts_at, block.ends_at))
    zone = practice_zone()
    starting = defaultdict(list)  # (provider, row) -> visits starting in that row
    for visit in visits:
        columns[visit.provider_id].appointments.append(visit)
        # The wall-clock times, worked out once: the grid places them, the cards print them.
        visit.local_start = visit.starts_at.astimezone(zone).time()
        visit.local_end = visit.ends_at.astimezone(zone).time()
        visit.start_label, visit.end_label = (
            f"{visit.local_start:%H:%M}",
            f"{visit.local_end:%H:%M}",
        )
        starting[(visit.provider_id, _floor(visit.local_start))].append(visit)
    times = [at for block in blocks for at in (block.starts_at, block.ends_at)]
    times += [at for visit in visits for at in (visit.local_start, visit.local_end)]
    first = _floor(min(times)) if times else DAY_START
    last = max(times) if times else DAY_END
    rows = []
    moment = datetime.combine(day, first)
    while moment.time() < last or not rows:
        at = moment.time()
        cells = [
            (column.works_at(at), starting.get((pk, at), [])) for pk, column in columns.items()
        ]
        rows.append(BoardRow(at, cells))
        moment += timedelta(minutes=ROW_MINUTES)
        if moment.date() != day:
            break
    return DayBoard(location=location, day=day, columns=list(columns.values()), rows=rows)


@dataclass
class ProviderDay:
    day: date
    blocks: list[ScheduleBlock]
    appointments: list[Appointment]


def appointment_provider_week(
    *, actor: User, provider: Provider, monday: date
) -> list[ProviderDay]:
    """A provider's week, Monday to Sunday: the blocks worked and the visits booked each day."""
    start, _ = _day_window(monday)
    _, end = _day_window(monday + timedelta(days=6))
    visits = list(
        visible(actor, Capability.VIEW_SCHEDULE, _visits()).filter(
            provider=provider, starts_at__gte=start, starts_at__lt=end
        )
    )
    zone = practice_zone()
    week = []
    for offset in range(7):
        day = monday + timedelta(days=offset)
        blocks = list(
            _blocks_on(day)
            .filter(provider=provider)
            .select_related("location")
            .order_by("starts_at")
        )
        appointments = [visit for visit in visits if visit.starts_at.astimezone(zone).date() == day]
        week.append(ProviderDay(day, blocks, appointments))
    return week


def appointment_day_list(*, actor: User, location: Location, day: date) -> list[BoardColumn]:
    """The day at one location as a list per provider (the printed schedule)."""
    return [
        column
        for column in appointment_day_board(actor=actor, location=location, day=day).columns
        if column.appointments
    ]


def appointment_get(*, actor: User, appointment_id) -> Appointment:
    """One appointment, or NotFound (the same for missing and not the actor's to see)."""
    try:
        return visible(actor, Capability.VIEW_SCHEDULE, _visits_all()).get(pk=appointment_id)
    except (Appointment.DoesNotExist, ValueError, ValidationError):
        raise NotFound from None


def _visits_all() -> QuerySet[Appointment]:
    return Appointment.objects.select_related(
        "patient", "appointment_type", "provider__user", "location"
    )


def provider_get(*, actor: User, provider_id) -> Provider:
    try:
        return visible(
            actor, Capability.VIEW_SCHEDULE, Provider.objects.select_related("user")
        ).get(pk=provider_id)
    except (Provider.DoesNotExist, ValueError, ValidationError):
        raise NotFound from None


def provider_list(*, actor: User) -> QuerySet[Provider]:
    return (
        visible(actor, Capability.VIEW_SCHEDULE, Provider.objects.filter(is_active=True))
        .select_related("user")
        .order_by("user__full_name")
    )


def appointment_type_list(*, actor: User) -> QuerySet[AppointmentType]:
    return AppointmentType.objects.filter(is_active=True).order_by("name")


# --- The set-up pages' reads (no PHI, except the appointments a change would affect) ----------


def _one(queryset: QuerySet, pk):
    """One row, or NotFound for missing and malformed ids alike."""
    try:
        return queryset.get(pk=pk)
    except (queryset.model.DoesNotExist, ValueError, ValidationError):
        raise NotFound from None


def setup_location_list(*, actor: User) -> QuerySet[Location]:
    """Every location, open ones first, with its hours and rooms and equipment."""
    return visible(
        actor,
        Capability.MANAGE_PRACTICE,
        Location.objects.prefetch_related("hours", "resources").order_by("-is_active", "name"),
    )


def setup_location_get(*, actor: User, location_id) -> Location:
    return _one(setup_location_list(actor=actor), location_id)


def setup_provider_list(*, actor: User) -> QuerySet[Provider]:
    """Every provider, active ones first, with their weekly blocks."""
    return visible(
        actor,
        Capability.MANAGE_PRACTICE,
        Provider.objects.select_related("user")
        .prefetch_related("blocks")
        .order_by("-is_active", "user__full_name"),
    )


def setup_provider_get(*, actor: User, provider_id) -> Provider:
    return _one(setup_provider_list(actor=actor), provider_id)


def setup_type_list(*, actor: User) -> QuerySet[AppointmentType]:
    """Every appointment type, active ones first, with the equipment each needs."""
    return visible(
        actor,
        Capability.MANAGE_PRACTICE,
        AppointmentType.objects.prefetch_related("equipment").order_by("-is_active", "name"),
    )


def setup_type_get(*, actor: User, appointment_type_id) -> AppointmentType:
    return _one(setup_type_list(actor=actor), appointment_type_id)


def setup_resource_get(*, actor: User, resource_id) -> Resource:
    return _one(
        visible(actor, Capability.MANAGE_PRACTICE, Resource.objects.select_related("location")),
        resource_id,
    )


def setup_block_get(*, actor: User, block_id) -> ScheduleBlock:
    return _one(
        visible(
            actor,
            Capability.MANAGE_PRACTICE,
            ScheduleBlock.objects.select_related("provider__user", "location"),
        ),
        block_id,
    )


def provider_candidate_list(*, actor: User) -> QuerySet[User]:
    """Active physicians and nurses who have no provider profile yet."""
    return visible(
        actor,
        Capability.MANAGE_PRACTICE,
        User.objects.filter(
            is_active=True,
            provider_profile__isnull=True,
            role_assignments__role__in=PROVIDER_ROLES,
        )
        .distinct()
        .order_by("full_name"),
    )


@dataclass
class TemplateDay:
    weekday: int
    label: str
    blocks: list[ScheduleBlock]


def provider_template(*, actor: User, provider: Provider, today: date) -> list[TemplateDay]:
    """The provider's weekly template, Monday to Sunday: the blocks valid today or later."""
    blocks = (
        visible(actor, Capability.MANAGE_PRACTICE, provider.blocks.all())
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=today))
        .select_related("location")
        .prefetch_related("appointment_types")
        .order_by("weekday", "starts_at")
    )
    days = [TemplateDay(value, label, []) for value, label in ScheduleBlock.Weekday.choices]
    for block in blocks:
        days[block.weekday].blocks.append(block)
    return days


def upcoming_exception_list(*, actor: User, since: datetime) -> QuerySet[ScheduleException]:
    """Time off, holidays and closures not yet over, soonest first."""
    return visible(
        actor,
        Capability.MANAGE_SCHEDULE,
        ScheduleException.objects.filter(ends_at__gt=since)
        .select_related("provider__user", "location")
        .order_by("starts_at"),
    )


def exception_get(*, actor: User, exception_id) -> ScheduleException:
    return _one(
        visible(actor, Capability.MANAGE_SCHEDULE, ScheduleException.objects.all()), exception_id
    )


def appointment_list_by_ids(*, actor: User, appointment_ids) -> list[Appointment]:
    """The named appointments with their patients, soonest first (a change's warning list)."""
    return list(
        visible(actor, Capability.VIEW_SCHEDULE, _visits_all())
        .filter(pk__in=appointment_ids)
        .order_by("starts_at")
    )
