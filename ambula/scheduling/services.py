"""The practice's set-up: locations and their opening hours, providers, rooms and equipment,
appointment types. The weekly template and its exceptions are in `schedule_templates`."""

from datetime import time

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from ambula.accounts.models import User
from ambula.accounts.policy import Capability, require
from ambula.accounts.roles import Role
from ambula.audit.services import record
from ambula.scheduling.models import (
    AppointmentType,
    Location,
    LocationHours,
    Provider,
    Resource,
)

SETUP_CATEGORY = "schedule set-up"
LOCATION_FIELDS = ("name", "address_line", "city", "state", "postal_code", "phone", "is_active")
PROVIDER_FIELDS = ("credentials", "specialty", "npi", "taxonomy_code")
TYPE_FIELDS = (
    "name",
    "duration_minutes",
    "buffer_minutes",
    "colour",
    "needs_room",
    "patient_bookable",
    "is_active",
)
# Who may have a provider profile: the clinicians who see patients.
PROVIDER_ROLES = frozenset({Role.PHYSICIAN, Role.NURSE})


def _saved(instance, *, actor: User | None, action: str, changes: dict | None = None):
    """Validate, save and audit a set-up record (none of these hold PHI)."""
    instance.full_clean()
    instance.save()
    record(actor=actor, action=action, category=SETUP_CATEGORY, target=instance, changes=changes)
    return instance


def _snapshot(instance, fields: tuple[str, ...]) -> dict:
    return {name: getattr(instance, name) for name in fields}


def _changes(before: dict, instance) -> dict:
    """Old and new value of each field that changed, for the audit event."""
    return {
        name: {"old": old, "new": getattr(instance, name)}
        for name, old in before.items()
        if old != getattr(instance, name)
    }


# --- Locations and their opening hours ---------------------------------------------------------


def _location_details(
    *, name: str, address_line: str, city: str, state: str, postal_code: str, phone: str
) -> dict:
    return {
        "name": name.strip(),
        "address_line": address_line.strip(),
        "city": city.strip(),
        "state": state.strip().upper(),
        "postal_code": postal_code.strip(),
        "phone": phone.strip(),
    }


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
    """Open a new location where the practice sees patients (`actor` None: installation set-up)."""
    if actor is not None:
        require(actor, Capability.MANAGE_PRACTICE)
    location = Location(
        **_location_details(
            name=name,
            address_line=address_line,
            city=city,
            state=state,
            postal_code=postal_code,
            phone=phone,
        )
    )
    return _saved(location, actor=actor, action="scheduling.location_created")


@transaction.atomic
def location_update(
    *,
    actor: User,
    location: Location,
    name: str,
    address_line: str,
    city: str,
    state: str,
    postal_code: str,
    phone: str = "",
    is_active: bool = True,
) -> Location:
    """Change a location's name, address or phone, or close it to new bookings."""
    require(actor, Capability.MANAGE_PRACTICE)
    location = Location.objects.select_for_update().get(pk=location.pk)
    before = _snapshot(location, LOCATION_FIELDS)
    details = _location_details(
        name=name,
        address_line=address_line,
        city=city,
        state=state,
        postal_code=postal_code,
        phone=phone,
    )
    for field, value in {**details, "is_active": is_active}.items():
        setattr(location, field, value)
    return _saved(
        location,
        actor=actor,
        action="scheduling.location_updated",
        changes=_changes(before, location),
    )


def _hours_text(rows) -> list[str]:
    return [f"{row.get_weekday_display()} {row.opens:%H:%M}-{row.closes:%H:%M}" for row in rows]


@transaction.atomic
def location_hours_set(
    *, actor: User, location: Location, hours: list[tuple[int, time, time]]
) -> list[LocationHours]:
    """Replace a location's weekly opening hours: (weekday, opens, closes); a missing day is
    closed. Informational only: booking follows the providers' blocks."""
    require(actor, Capability.MANAGE_PRACTICE)
    location = Location.objects.select_for_update().get(pk=location.pk)
    weekdays = [weekday for weekday, _opens, _closes in hours]
    if len(weekdays) != len(set(weekdays)):
        raise ValidationError(_("Give each day's hours once."), code="hours_day_listed")
    before = _hours_text(location.hours.all())
    location.hours.all().delete()
    rows = []
    for weekday, opens, closes in sorted(hours):
        row = LocationHours(location=location, weekday=weekday, opens=opens, closes=closes)
        try:
            row.full_clean()
        except ValidationError as error:
            raise ValidationError(
                _("%(day)s: %(problem)s")
                % {"day": row.get_weekday_display(), "problem": " ".join(error.messages)},
                code="hours_invalid",
            ) from None
        row.save()
        rows.append(row)
    record(
        actor=actor,
        action="scheduling.location_hours_set",
        category=SETUP_CATEGORY,
        target=location,
        changes={"hours": {"old": before, "new": _hours_text(rows)}},
    )
    return rows


# --- Providers, resources, appointment types: the practice's set-up ---------------------------


def may_be_provider(user: User) -> bool:
    """Whether the user can be given a provider profile: an active clinician."""
    return user.is_active and bool(PROVIDER_ROLES.intersection(user.roles))


@transaction.atomic
def provider_create(
    *, actor: User, user: User, credentials: str, specialty: str, npi: str, taxonomy_code: str
) -> Provider:
    """Make a staff user bookable: their credentials, specialty, NPI and taxonomy code."""
    require(actor, Capability.MANAGE_PRACTICE)
    if Provider.objects.filter(user=user).exists():
        raise ValidationError(
            {"user": _("This user is already a provider.")}, code="provider_exists"
        )
    if not may_be_provider(user):
        raise ValidationError(
            {"user": _("Only an active physician or nurse can be a provider.")},
            code="not_a_clinician",
        )
    provider = Provider(
        user=user,
        credentials=credentials.strip(),
        specialty=specialty.strip(),
        npi=npi.strip(),
        taxonomy_code=taxonomy_code.strip().upper(),
    )
    return _saved(provider, actor=actor, action="scheduling.provider_created")


@transaction.atomic
def provider_update(
    *,
    actor: User,
    provider: Provider,
    credentials: str,
    specialty: str,
    npi: str,
    taxonomy_code: str,
) -> Provider:
    """Change a provider's credentials, specialty, NPI or taxonomy code."""
    require(actor, Capability.MANAGE_PRACTICE)
    provider = Provider.objects.select_for_update().select_related("user").get(pk=provider.pk)
    before = _snapshot(provider, PROVIDER_FIELDS)
    provider.credentials = credentials.strip()
    provider.specialty = specialty.strip()
    provider.npi = npi.strip()
    provider.taxonomy_code = taxonomy_code.strip().upper()
    return _saved(
        provider,
        actor=actor,
        action="scheduling.provider_updated",
        changes=_changes(before, provider),
    )


@transaction.atomic
def provider_set_active(*, actor: User, provider: Provider, active: bool) -> Provider:
    """Take a provider off the schedule (their booked appointments stay) or back on."""
    require(actor, Capability.MANAGE_PRACTICE)
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
    """Add an exam room or a piece of equipment at a location."""
    require(actor, Capability.MANAGE_PRACTICE)
    resource = Resource(location=location, name=name.strip(), kind=kind)
    return _saved(resource, actor=actor, action="scheduling.resource_created")


@transaction.atomic
def resource_update(*, actor: User, resource: Resource, name: str, is_active: bool) -> Resource:
    """Rename a room or piece of equipment, or take it out of use (its bookings stay)."""
    require(actor, Capability.MANAGE_PRACTICE)
    resource = Resource.objects.select_for_update().get(pk=resource.pk)
    if resource.is_active and not is_active:
        _refuse_retiring_needed_equipment(resource)
    before = _snapshot(resource, ("name", "is_active"))
    resource.name = name.strip()
    resource.is_active = is_active
    return _saved(
        resource,
        actor=actor,
        action="scheduling.resource_updated",
        changes=_changes(before, resource),
    )


def _refuse_retiring_needed_equipment(resource: Resource) -> None:
    # Availability refuses an inactive resource, so a type needing it could never be booked.
    needing = AppointmentType.objects.filter(equipment=resource, is_active=True)
    names = ", ".join(sorted(needing.values_list("name", flat=True)))
    if names:
        raise ValidationError(
            {
                "is_active": _(
                    "Still needed by %(types)s: change or retire those appointment types first."
                )
                % {"types": names}
            },
            code="equipment_needed",
        )


def _check_equipment(equipment) -> None:
    if any(resource.kind != Resource.Kind.EQUIPMENT for resource in equipment):
        raise ValidationError(
            {"equipment": _("Only equipment can be required by a type.")}, code="not_equipment"
        )


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
    """Add a kind of visit: its length, buffer, colour and what it needs."""
    require(actor, Capability.MANAGE_PRACTICE)
    _check_equipment(equipment)
    appointment_type = AppointmentType(
        name=name.strip(),
        duration_minutes=duration_minutes,
        buffer_minutes=buffer_minutes,
        colour=colour.lower(),
        needs_room=needs_room,
        patient_bookable=patient_bookable,
    )
    _saved(appointment_type, actor=actor, action="scheduling.appointment_type_created")
    appointment_type.equipment.set(equipment)
    return appointment_type


@transaction.atomic
def appointment_type_update(
    *,
    actor: User,
    appointment_type: AppointmentType,
    name: str,
    duration_minutes: int,
    buffer_minutes: int,
    colour: str,
    needs_room: bool,
    equipment: list[Resource],
    patient_bookable: bool,
    is_active: bool,
) -> AppointmentType:
    """Change a kind of visit, or retire it (booked visits of the type stay as they are)."""
    require(actor, Capability.MANAGE_PRACTICE)
    _check_equipment(equipment)
    appointment_type = AppointmentType.objects.select_for_update().get(pk=appointment_type.pk)
    before = _snapshot(appointment_type, TYPE_FIELDS)
    before_equipment = sorted(resource.name for resource in appointment_type.equipment.all())
    appointment_type.name = name.strip()
    appointment_type.duration_minutes = duration_minutes
    appointment_type.buffer_minutes = buffer_minutes
    appointment_type.colour = colour.lower()
    appointment_type.needs_room = needs_room
    appointment_type.patient_bookable = patient_bookable
    appointment_type.is_active = is_active
    changes = _changes(before, appointment_type)
    after_equipment = sorted(resource.name for resource in equipment)
    if after_equipment != before_equipment:
        changes["equipment"] = {"old": before_equipment, "new": after_equipment}
    _saved(
        appointment_type,
        actor=actor,
        action="scheduling.appointment_type_updated",
        changes=changes,
    )
    appointment_type.equipment.set(equipment)
    return appointment_type
