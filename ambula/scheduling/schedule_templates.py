"""The weekly schedule template and its exceptions: blocks, time off, holidays and closures.

Neither may silently leave booked appointments outside the schedule: a change that would is
refused with `TemplateChange`, listing them, until the caller confirms it.
"""

from datetime import datetime
from typing import Literal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils.timezone import localtime
from django.utils.timezone import now as timezone_now
from django.utils.translation import gettext_lazy as _

from ambula.accounts.models import User
from ambula.accounts.policy import Capability, require
from ambula.audit.services import record
from ambula.scheduling.models import (
    Appointment,
    AppointmentType,
    Provider,
    ScheduleBlock,
    ScheduleException,
    TemplateRevision,
)
from ambula.scheduling.services import SETUP_CATEGORY


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


def _refuse_overlap(block: ScheduleBlock) -> None:
    """A provider is in one place at a time: refuse a block overlapping another of theirs on
    the same weekday while both are valid. The caller holds the provider's row lock."""
    overlapping = (
        ScheduleBlock.objects.filter(
            provider_id=block.provider_id,
            weekday=block.weekday,
            starts_at__lt=block.ends_at,
            ends_at__gt=block.starts_at,
        )
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=block.valid_from))
        .exclude(pk=block.pk)
        .select_related("location")
    )
    if block.valid_until is not None:
        overlapping = overlapping.filter(valid_from__lte=block.valid_until)
    other = overlapping.first()
    if other is not None:
        raise ValidationError(
            _("This overlaps the %(start)s-%(end)s block at %(location)s on that day.")
            % {
                "start": f"{other.starts_at:%H:%M}",
                "end": f"{other.ends_at:%H:%M}",
                "location": other.location.name,
            },
            code="block_overlap",
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
    require(actor, Capability.MANAGE_PRACTICE)
    Provider.objects.select_for_update().get(pk=block.provider_id)
    adding = block._state.adding
    block.full_clean()
    _refuse_overlap(block)
    block.save()
    TemplateRevision.advance()
    block.appointment_types.set(appointment_types)
    orphaned = _refuse_orphans(block.provider, allow_orphans=allow_orphans)
    record(
        actor=actor,
        action="scheduling.block_created" if adding else "scheduling.block_updated",
        category=SETUP_CATEGORY,
        target=block,
        changes={"orphaned_appointments": [str(a.pk) for a in orphaned]} if orphaned else None,
    )
    return block


@transaction.atomic
def schedule_block_delete(
    *, actor: User, block: ScheduleBlock, allow_orphans: bool = False
) -> None:
    """Remove a weekly block; refused (listing them) if it orphans booked appointments,
    unless confirmed."""
    require(actor, Capability.MANAGE_PRACTICE)
    provider = Provider.objects.select_for_update().get(pk=block.provider_id)
    block_id = block.pk
    block.delete()
    TemplateRevision.advance()
    orphaned = _refuse_orphans(provider, allow_orphans=allow_orphans)
    record(
        actor=actor,
        action="scheduling.block_deleted",
        category=SETUP_CATEGORY,
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
        category=SETUP_CATEGORY,
        target=exception,
        changes={"kind": kind, "covers_appointments": [str(a.pk) for a in conflicts]},
    )
    return exception


@transaction.atomic
def schedule_exception_delete(
    *, actor: User, exception: ScheduleException
) -> Literal["ended", "deleted"]:
    """Remove upcoming time off, a holiday or a closure, or end a running one now.

    The part already passed stays as history: a running exception is cut short at this
    moment rather than deleted, and one wholly past is refused.
    """
    require(actor, Capability.MANAGE_SCHEDULE)
    exception = ScheduleException.objects.select_for_update().get(pk=exception.pk)
    moment = timezone_now()
    if exception.ends_at <= moment:
        raise ValidationError(
            _("This has already passed; it stays on record."), code="exception_past"
        )
    if exception.starts_at < moment:
        _exception_end(actor=actor, exception=exception, at=moment)
        return "ended"
    record(
        actor=actor,
        action="scheduling.exception_deleted",
        category=SETUP_CATEGORY,
        target=exception,
        changes={
            "kind": exception.kind,
            "starts_at": exception.starts_at,
            "ends_at": exception.ends_at,
        },
    )
    exception.delete()
    return "deleted"


def _exception_end(*, actor: User, exception: ScheduleException, at: datetime) -> None:
    """Cut a running exception short: the time from `at` on can be booked again."""
    planned_end = exception.ends_at
    exception.ends_at = at
    exception.full_clean()
    exception.save(update_fields=["ends_at"])
    record(
        actor=actor,
        action="scheduling.exception_ended",
        category=SETUP_CATEGORY,
        target=exception,
        changes={
            "kind": exception.kind,
            "starts_at": exception.starts_at,
            "ends_at": {"old": planned_end, "new": at},
        },
    )
