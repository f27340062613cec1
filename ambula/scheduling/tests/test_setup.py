from datetime import date, datetime, time, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils.timezone import get_current_timezone, now

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.core.errors import AccessDenied
from ambula.patients.tests.factories import registered_patient
from ambula.scheduling.models import (
    Appointment,
    AppointmentType,
    Location,
    Provider,
    Resource,
    ScheduleBlock,
    ScheduleException,
    npi_is_valid,
)
from ambula.scheduling.services import (
    TemplateChange,
    appointment_type_create,
    provider_create,
    provider_set_active,
    resource_create,
    schedule_block_delete,
    schedule_block_save,
    schedule_exception_create,
)

pytestmark = pytest.mark.django_db
VALID_NPI = "1234567893"  # the check-digit example CMS publishes


@pytest.fixture
def manager():
    return UserFactory(username="admin1", roles=[Role.ADMIN])


@pytest.fixture
def doctor():
    return UserFactory(username="drsmith", full_name="Dana Smith", roles=[Role.PHYSICIAN])


@pytest.fixture
def location():
    return Location.objects.create(
        name="Main", address_line="1 Main St", city="Springfield", state="IL", postal_code="62701"
    )


@pytest.fixture
def provider(manager, doctor):
    return provider_create(
        actor=manager,
        user=doctor,
        credentials="MD",
        specialty="Family medicine",
        npi=VALID_NPI,
        taxonomy_code="207q00000x",
    )


@pytest.mark.parametrize(
    ("npi", "valid"),
    [("1234567893", True), ("1234567890", False), ("123456789", False), ("12345678a3", False)],
)
def test_npi_check_digit(npi, valid):
    assert npi_is_valid(npi) is valid


def test_a_provider_needs_a_valid_npi_and_taxonomy_code(manager, doctor):
    with pytest.raises(ValidationError) as caught:
        provider_create(
            actor=manager,
            user=doctor,
            credentials="MD",
            specialty="Family medicine",
            npi="1234567890",
            taxonomy_code="family",
        )
    assert set(caught.value.message_dict) == {"npi", "taxonomy_code"}
    assert not Provider.objects.exists()


def test_creating_a_provider_is_audited_and_only_once(manager, doctor, provider):
    assert provider.taxonomy_code == "207Q00000X"
    assert AuditEvent.objects.filter(action="scheduling.provider_created").count() == 1
    with pytest.raises(ValidationError):
        provider_create(
            actor=manager,
            user=doctor,
            credentials="MD",
            specialty="x",
            npi=VALID_NPI,
            taxonomy_code="207Q00000X",
        )


@pytest.mark.parametrize("role", [Role.NURSE, Role.BILLER, Role.PRIVACY_OFFICER])
def test_only_schedulers_set_up(location, doctor, role):
    someone = UserFactory(username="someone", roles=[role])
    with pytest.raises(AccessDenied):
        resource_create(actor=someone, location=location, name="Room 1", kind="room")
    with pytest.raises(AccessDenied):
        appointment_type_create(actor=someone, name="Visit", duration_minutes=20)


def test_appointment_types_need_a_sane_length_and_only_equipment(manager, location):
    with pytest.raises(ValidationError):
        appointment_type_create(actor=manager, name="Instant", duration_minutes=0)
    room = resource_create(actor=manager, location=location, name="Room 1", kind="room")
    with pytest.raises(ValidationError):
        appointment_type_create(actor=manager, name="Scan", duration_minutes=30, equipment=[room])
    assert not AppointmentType.objects.exists()  # the whole creation rolled back


def test_resource_names_are_unique_per_location(manager, location):
    resource_create(actor=manager, location=location, name="Room 1", kind="room")
    with pytest.raises(ValidationError):
        resource_create(actor=manager, location=location, name="room 1", kind="room")
    assert Resource.objects.count() == 1


def _monday_after(days: int) -> date:
    day = now().date() + timedelta(days=days)
    return day + timedelta(days=(7 - day.weekday()) % 7)


@pytest.fixture
def booked(manager, provider, location):
    """A Monday 09:00-12:00 block and a 10:00 visit booked in it, next week."""
    visit = appointment_type_create(actor=manager, name="Visit", duration_minutes=20)
    block = schedule_block_save(
        actor=manager,
        block=ScheduleBlock(
            provider=provider,
            location=location,
            weekday=0,
            starts_at=time(9),
            ends_at=time(12),
            valid_from=now().date(),
        ),
    )
    starts = datetime.combine(_monday_after(7), time(10), tzinfo=get_current_timezone())
    appointment = Appointment.objects.create(
        patient=registered_patient(actor=UserFactory(username="desk1", roles=[Role.FRONT_DESK])),
        provider=provider,
        location=location,
        appointment_type=visit,
        starts_at=starts,
        ends_at=starts + timedelta(minutes=20),
        blocked_until=starts + timedelta(minutes=20),
        booked_by=manager,
    )
    return block, appointment


def test_shrinking_a_block_never_silently_orphans_a_booking(manager, booked):
    block, appointment = booked
    block.ends_at = time(10)
    with pytest.raises(TemplateChange) as caught:
        schedule_block_save(actor=manager, block=block)
    assert caught.value.params["appointments"] == [appointment.pk]
    block.refresh_from_db()
    assert block.ends_at == time(12)  # nothing changed
    # Confirmed: the change is made and the orphaned booking named in the audit trail.
    block.ends_at = time(10)
    schedule_block_save(actor=manager, block=block, allow_orphans=True)
    event = AuditEvent.objects.filter(action="scheduling.block_updated").get()
    assert "orphaned_appointments" in event.changed_fields


def test_deleting_a_block_with_bookings_asks_first(manager, booked):
    block, _ = booked
    block_id = block.pk
    with pytest.raises(TemplateChange):
        schedule_block_delete(actor=manager, block=block)
    assert ScheduleBlock.objects.filter(pk=block_id).exists()


def test_a_block_must_end_after_it_starts(manager, provider, location):
    with pytest.raises(ValidationError):
        schedule_block_save(
            actor=manager,
            block=ScheduleBlock(
                provider=provider,
                location=location,
                weekday=1,
                starts_at=time(12),
                ends_at=time(9),
                valid_from=now().date(),
            ),
        )


def test_time_off_over_a_booking_lists_it_before_saving(manager, provider, booked):
    _, appointment = booked
    day_off = ScheduleException(
        kind="time_off",
        provider=provider,
        starts_at=appointment.starts_at - timedelta(hours=2),
        ends_at=appointment.starts_at + timedelta(hours=6),
    )
    with pytest.raises(TemplateChange) as caught:
        schedule_exception_create(actor=manager, exception=day_off)
    assert caught.value.params["appointments"] == [appointment.pk]
    assert not ScheduleException.objects.exists()
    schedule_exception_create(actor=manager, exception=day_off, allow_conflicts=True)
    assert ScheduleException.objects.count() == 1


def test_time_off_names_a_provider_and_a_closure_a_location(manager):
    start = now() + timedelta(days=3)
    with pytest.raises(ValidationError):
        schedule_exception_create(
            actor=manager,
            exception=ScheduleException(
                kind="time_off", starts_at=start, ends_at=start + timedelta(hours=1)
            ),
        )
    with pytest.raises(ValidationError):
        schedule_exception_create(
            actor=manager,
            exception=ScheduleException(
                kind="closure", starts_at=start, ends_at=start + timedelta(hours=1)
            ),
        )


def test_a_deactivated_provider_keeps_their_bookings(manager, provider, booked):
    provider_set_active(actor=manager, provider=provider, active=False)
    provider.refresh_from_db()
    assert not provider.is_active
    assert provider.appointments.count() == 1
