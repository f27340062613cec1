from datetime import date, datetime, time

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.timezone import get_current_timezone, localtime
from django.utils.timezone import now as timezone_now
from django.utils.translation import gettext_lazy as _

from ambula.accounts.models import User
from ambula.accounts.policy import Capability, require
from ambula.audit.services import record
from ambula.scheduling.models import (
    Appointment,
    AppointmentType,
    Location,
    Provider,
    Resource,
    ScheduleBlock,
    ScheduleException,
)


@transaction.atomic
def location_create(
    *,
    actor: User | None,
    name: str,
    address_line: str,
    city: str,
    state: str,
    postal_code: str,
    phone: str = "",
) -> Location:
    """Open a new location where the practice sees patients."""
    location = Location(
        name=name.strip(),
        address_line=address_line.strip(),
        city=city.strip(),
        state=state.strip().upper(),
        postal_code=postal_code.strip(),
        phone=phone.strip(),
    )
    location.full_clean()
    location.save()
    return location


# --- Providers, resources, appointment types: the practice's set-up ---------------------------


def _saved(instance, *, actor: User, action: str, changes: dict | None = None):
    """Validate, save and audit a set-up record (none of these hold PHI)."""
    instance.full_clean()
    instance.save()
    record(actor=actor, action=action, category="schedule set-up", target=instance, changes=changes)
    return instance


@transaction.atomic
def provider_create(
    *, actor: User, user: User, credentials: str, specialty: str, npi: str, taxonomy_code: str
) -> Provider:
    """Make a staff user bookable: their credentials, specialty, NPI and taxonomy code."""
    require(actor, Capability.MANAGE_SCHEDULE)
    if Provider.objects.filter(user=user).exists():
        raise ValidationError(_("This user is already a provider."), code="provider_exists")
    provider = Provider(
        user=user,
        credentials=credentials.strip(),
        specialty=specialty.strip(),
        npi=npi.strip(),
        taxonomy_code=taxonomy_code.strip().upper(),
    )
    return _saved(provider, actor=actor, action="scheduling.provider_created")


@transaction.atomic
def provider_set_active(*, actor: User, provider: Provider, active: bool) -> Provider:
    """Take a provider off the schedule (their booked appointments stay) or back on."""
    require(actor, Capability.MANAGE_SCHEDULE)
    provider = Provider.objects.select_for_update().get(pk=provider.pk)
    provider.is_active = active
    return _saved(
        provider,
        actor=actor,
        action="scheduling.provider_updated",
        changes={"is_active": active},
    )


@transaction.atomic
def resource_create(*, actor: User, location: Location, name: str, kind: str) -> Resource:
    require(actor, Capability.MANAGE_SCHEDULE)
    resource = Resource(location=location, name=name.strip(), kind=kind)
    return _saved(resource, actor=actor, action="scheduling.resource_created")


@transaction.atomic
def appointment_type_create(
    *,
    actor: User,
    name: str,
    duration_minutes: int,
    buffer_minutes: int = 0,
    colour: str = "#2e90fa",
    needs_room: bool = True,
    equipment: list[Resource] = (),
    patient_bookable: bool = False,
) -> AppointmentType:
    require(actor, Capability.MANAGE_SCHEDULE)
    appointment_type = AppointmentType(
        name=name.strip(),
        duration_minutes=duration_minutes,
        buffer_minutes=buffer_minutes,
        colour=colour,
        needs_room=needs_room,
        patient_bookable=patient_bookable,
    )
    _saved(appointment_type, actor=actor, action="scheduling.appointment_type_created")
    if any(resource.kind != Resource.Kind.EQUIPMENT for resource in equipment):
        raise ValidationError({"equipment": _("Only equipment can be required by a type.")})
    appointment_type.equipment.set(equipment)
    return appointment_type


# --- The schedule template and its exceptions -------------------------------------------------


def _local(day: date, moment: time) -> datetime:
    return datetime.combine(day, moment, tzinfo=get_current_timezone())


def appointments_outside_blocks(provider: Provider, *, since: datetime) -> list[Appointment]:
    """The provider's upcoming active appointments no current block covers any more."""
    blocks = list(provider.blocks.prefetch_related("appointment_types"))
    upcoming = provider.appointments.filter(
        starts_at__gte=since, status__in=["scheduled", "arrived"]
    ).select_related("location", "appointment_type", "patient")
    orphaned = []
    for appointment in upcoming:
        start = localtime(appointment.starts_at)
        end = localtime(appointment.ends_at)
        if not any(_block_covers(block, appointment, start, end) for block in blocks):
            orphaned.append(appointment)
    return orphaned


def _block_covers(block: ScheduleBlock, appointment: Appointment, start, end) -> bool:
    types = list(block.appointment_types.all())
    return (
        block.location_id == appointment.location_id
        and block.weekday == start.weekday()
        and block.valid_from <= start.date()
        and (block.valid_until is None or start.date() <= block.valid_until)
        and block.starts_at <= start.time()
        and end.time() <= block.ends_at
        and end.date() == start.date()
        and (not types or appointment.appointment_type in types)
    )


class TemplateChange(ValidationError):
    """The change would leave booked appointments outside the template: confirm first."""


def _refuse_orphans(provider: Provider, *, allow_orphans: bool) -> list[Appointment]:
    orphaned = appointments_outside_blocks(provider, since=timezone_now())
    if orphaned and not allow_orphans:
        raise TemplateChange(
            _(
                "%(count)d booked appointment(s) would fall outside the schedule. Move them, "
                "or confirm to keep them as they are."
            ),
            code="orphaned_appointments",
            params={"count": len(orphaned), "appointments": [a.pk for a in orphaned]},
        )
    return orphaned


@transaction.atomic
def schedule_block_save(
    *,
    actor: User,
    block: ScheduleBlock,
    appointment_types: list[AppointmentType] = (),
    allow_orphans: bool = False,
) -> ScheduleBlock:
    """Add or change a weekly block. Never silently orphans booked appointments: if the
    change leaves some outside every block, it is refused (listing them) unless confirmed."""
    require(actor, Capability.MANAGE_SCHEDULE)
    Provider.objects.select_for_update().get(pk=block.provider_id)
    adding = block._state.adding
    block.full_clean()
    block.save()
    block.appointment_types.set(appointment_types)
    orphaned = _refuse_orphans(block.provider, allow_orphans=allow_orphans)
    record(
        actor=actor,
        action="scheduling.block_created" if adding else "scheduling.block_updated",
        category="schedule set-up",
        target=block,
        changes={"orphaned_appointments": [str(a.pk) for a in orphaned]} if orphaned else None,
    )
    return block


@transaction.atomic
def schedule_block_delete(
    *, actor: User, block: ScheduleBlock, allow_orphans: bool = False
) -> None:
    require(actor, Capability.MANAGE_SCHEDULE)
    provider = Provider.objects.select_for_update().get(pk=block.provider_id)
    block_id = block.pk
    block.delete()
    orphaned = _refuse_orphans(provider, allow_orphans=allow_orphans)
    record(
        actor=actor,
        action="scheduling.block_deleted",
        category="schedule set-up",
        changes={
            "block": str(block_id),
            "orphaned_appointments": [str(a.pk) for a in orphaned],
        },
    )


def appointments_during(exception: ScheduleException) -> list[Appointment]:
    """Active appointments an exception would cover: its provider's, its location's, or all."""
    appointments = Appointment.objects.filter(
        status__in=["scheduled", "arrived"],
        starts_at__lt=exception.ends_at,
        blocked_until__gt=exception.starts_at,
    )
    if exception.provider_id:
        appointments = appointments.filter(provider_id=exception.provider_id)
    if exception.location_id:
        appointments = appointments.filter(location_id=exception.location_id)
    return list(appointments.select_related("patient", "provider__user"))


@transaction.atomic
def schedule_exception_create(
    *, actor: User, exception: ScheduleException, allow_conflicts: bool = False
) -> ScheduleException:
    """Block out time off, a holiday or a closure; refuses (listing them) to silently cover
    booked appointments unless confirmed, so the front desk can move them first."""
    require(actor, Capability.MANAGE_SCHEDULE)
    kind = exception.kind
    if kind == ScheduleException.Kind.TIME_OFF and not exception.provider_id:
        raise ValidationError({"provider": _("Time off is for a provider: choose one.")})
    if kind == ScheduleException.Kind.CLOSURE and not exception.location_id:
        raise ValidationError({"location": _("A closure is for a location: choose one.")})
    exception.full_clean()
    conflicts = appointments_during(exception)
    if conflicts and not allow_conflicts:
        raise TemplateChange(
            _("%(count)d booked appointment(s) fall in this time. Move them, or confirm."),
            code="appointments_during_exception",
            params={"count": len(conflicts), "appointments": [a.pk for a in conflicts]},
        )
    exception.save()
    record(
        actor=actor,
        action="scheduling.exception_created",
        category="schedule set-up",
        target=exception,
        changes={"kind": kind, "covers_appointments": [str(a.pk) for a in conflicts]},
    )
    return exception
