from datetime import date, datetime, time, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.timezone import get_current_timezone, now

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.core.errors import AccessDenied
from ambula.patients.tests.factories import registered_patient
from ambula.scheduling.models import (
    Appointment,
    AppointmentType,
    Location,
    LocationHours,
    Provider,
    Resource,
    ScheduleBlock,
    ScheduleException,
    npi_is_valid,
)
from ambula.scheduling.schedule_templates import (
    TemplateChange,
    schedule_block_delete,
    schedule_block_save,
    schedule_exception_create,
    schedule_exception_delete,
)
from ambula.scheduling.services import (
    appointment_type_create,
    appointment_type_update,
    location_create,
    location_hours_set,
    location_update,
    provider_create,
    provider_set_active,
    provider_update,
    resource_create,
    resource_update,
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


@pytest.mark.parametrize("role", [Role.FRONT_DESK, Role.NURSE, Role.BILLER, Role.PRIVACY_OFFICER])
def test_only_the_administrator_sets_up(location, doctor, role):
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


# --- Set-up edits: locations, hours, providers, resources, types ---------------------------------


def _event(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).latest("sequence")


def test_a_location_is_created_by_an_administrator_and_audited(manager):
    location = location_create(
        actor=manager,
        name="North",
        address_line="2 North Rd",
        city="Springfield",
        state="il",
        postal_code="62702",
    )
    assert _event("scheduling.location_created").target_id == str(location.pk)
    desk = UserFactory(username="desk2", roles=[Role.FRONT_DESK])
    with pytest.raises(AccessDenied):
        location_create(
            actor=desk,
            name="South",
            address_line="3 South Rd",
            city="Springfield",
            state="IL",
            postal_code="62703",
        )


def test_updating_a_location_records_what_changed(manager, location):
    location_update(
        actor=manager,
        location=location,
        name="Main Street",
        address_line="1 Main St",
        city="Springfield",
        state="il",
        postal_code="62701",
        phone="217-555-0100",
        is_active=False,
    )
    location.refresh_from_db()
    assert (location.name, location.phone, location.is_active) == (
        "Main Street",
        "217-555-0100",
        False,
    )
    assert _event("scheduling.location_updated").changed_fields == ["is_active", "name", "phone"]


def test_a_location_cannot_take_another_ones_name(manager, location):
    other = location_create(
        actor=manager,
        name="North",
        address_line="2 North Rd",
        city="Springfield",
        state="IL",
        postal_code="62702",
    )
    with pytest.raises(ValidationError):
        location_update(
            actor=manager,
            location=other,
            name="MAIN",
            address_line="2 North Rd",
            city="Springfield",
            state="IL",
            postal_code="62702",
        )
    other.refresh_from_db()
    assert other.name == "North"


def test_opening_hours_replace_the_week(manager, location):
    location_hours_set(actor=manager, location=location, hours=[(0, time(8), time(17))])
    location_hours_set(
        actor=manager, location=location, hours=[(1, time(9), time(13)), (2, time(9), time(18))]
    )
    assert list(location.hours.values_list("weekday", "opens")) == [(1, time(9)), (2, time(9))]
    changes = _event("scheduling.location_hours_set").changed_fields
    assert changes == ["hours"]


@pytest.mark.parametrize(
    "hours",
    [
        [(0, time(17), time(8))],
        [(0, time(8), time(8))],
        [(0, time(8), time(12)), (0, time(13), time(17))],
        [(7, time(8), time(12))],
    ],
)
def test_bad_opening_hours_change_nothing(manager, location, hours):
    location_hours_set(actor=manager, location=location, hours=[(4, time(8), time(12))])
    with pytest.raises(ValidationError):
        location_hours_set(actor=manager, location=location, hours=hours)
    assert list(LocationHours.objects.values_list("weekday", flat=True)) == [4]


def test_only_the_administrator_sets_hours(location):
    desk = UserFactory(username="desk3", roles=[Role.FRONT_DESK])
    with pytest.raises(AccessDenied):
        location_hours_set(actor=desk, location=location, hours=[])


def test_a_provider_profile_is_updated_and_audited(manager, provider):
    provider_update(
        actor=manager,
        provider=provider,
        credentials="DO",
        specialty="Pediatrics",
        npi=VALID_NPI,
        taxonomy_code="208000000x",
    )
    provider.refresh_from_db()
    assert (provider.credentials, provider.taxonomy_code) == ("DO", "208000000X")
    assert _event("scheduling.provider_updated").changed_fields == [
        "credentials",
        "specialty",
        "taxonomy_code",
    ]


def test_a_provider_cannot_take_another_ones_npi(manager, provider):
    other = provider_create(
        actor=manager,
        user=UserFactory(username="drjones", roles=[Role.NURSE]),
        credentials="NP",
        specialty="Family medicine",
        npi="1245319599",
        taxonomy_code="363LF0000X",
    )
    with pytest.raises(ValidationError) as caught:
        provider_update(
            actor=manager,
            provider=other,
            credentials="NP",
            specialty="Family medicine",
            npi=VALID_NPI,
            taxonomy_code="363LF0000X",
        )
    assert "npi" in caught.value.message_dict
    other.refresh_from_db()
    assert other.npi == "1245319599"


def test_only_clinicians_become_providers(manager):
    biller = UserFactory(username="biller1", roles=[Role.BILLER])
    with pytest.raises(ValidationError) as caught:
        provider_create(
            actor=manager,
            user=biller,
            credentials="MD",
            specialty="x",
            npi=VALID_NPI,
            taxonomy_code="207Q00000X",
        )
    assert "user" in caught.value.message_dict
    assert not Provider.objects.exists()


def test_the_front_desk_cannot_change_providers(provider):
    desk = UserFactory(username="desk4", roles=[Role.FRONT_DESK])
    with pytest.raises(AccessDenied):
        provider_set_active(actor=desk, provider=provider, active=False)
    with pytest.raises(AccessDenied):
        provider_update(
            actor=desk,
            provider=provider,
            credentials="MD",
            specialty="x",
            npi=VALID_NPI,
            taxonomy_code="207Q00000X",
        )


def test_a_resource_is_renamed_and_taken_out_of_use(manager, location):
    room = resource_create(actor=manager, location=location, name="Room 1", kind="room")
    resource_update(actor=manager, resource=room, name="Exam 1", is_active=False)
    room.refresh_from_db()
    assert (room.name, room.is_active) == ("Exam 1", False)
    assert _event("scheduling.resource_updated").changed_fields == ["is_active", "name"]


def test_equipment_an_active_type_needs_stays_in_use(manager, location):
    ecg = resource_create(actor=manager, location=location, name="ECG", kind="equipment")
    appointment_type_create(actor=manager, name="ECG check", duration_minutes=20, equipment=[ecg])
    with pytest.raises(ValidationError) as caught:
        resource_update(actor=manager, resource=ecg, name="ECG", is_active=False)
    assert "ECG check" in str(caught.value)
    ecg.refresh_from_db()
    assert ecg.is_active


def test_an_appointment_type_is_changed_and_retired(manager, location):
    ecg = resource_create(actor=manager, location=location, name="ECG", kind="equipment")
    visit = appointment_type_create(actor=manager, name="Visit", duration_minutes=20)
    appointment_type_update(
        actor=manager,
        appointment_type=visit,
        name="Visit",
        duration_minutes=30,
        buffer_minutes=5,
        colour="#12B76A",
        needs_room=True,
        equipment=[ecg],
        patient_bookable=True,
        is_active=False,
    )
    visit.refresh_from_db()
    assert (visit.duration_minutes, visit.colour, visit.is_active) == (30, "#12b76a", False)
    assert list(visit.equipment.all()) == [ecg]
    assert set(_event("scheduling.appointment_type_updated").changed_fields) == {
        "buffer_minutes",
        "colour",
        "duration_minutes",
        "equipment",
        "is_active",
        "patient_bookable",
    }


def test_appointment_type_names_are_unique_whatever_the_case(manager):
    appointment_type_create(actor=manager, name="Follow-up", duration_minutes=20)
    with pytest.raises(ValidationError):
        appointment_type_create(actor=manager, name="FOLLOW-UP", duration_minutes=20)
    assert AppointmentType.objects.count() == 1


def test_a_type_update_is_refused_whole_when_bad(manager, location):
    room = resource_create(actor=manager, location=location, name="Room 1", kind="room")
    visit = appointment_type_create(actor=manager, name="Visit", duration_minutes=20)
    details = {
        "name": "Visit",
        "buffer_minutes": 0,
        "colour": "#2e90fa",
        "needs_room": True,
        "patient_bookable": False,
        "is_active": True,
    }
    with pytest.raises(ValidationError):
        appointment_type_update(
            actor=manager, appointment_type=visit, duration_minutes=600, equipment=[], **details
        )
    with pytest.raises(ValidationError):
        appointment_type_update(
            actor=manager, appointment_type=visit, duration_minutes=30, equipment=[room], **details
        )
    visit.refresh_from_db()
    assert visit.duration_minutes == 20


# --- Blocks never overlap; the front desk handles exceptions ------------------------------------


def _block(provider, location, weekday=2, starts=time(9), ends=time(12), **dates):
    return ScheduleBlock(
        provider=provider,
        location=location,
        weekday=weekday,
        starts_at=starts,
        ends_at=ends,
        valid_from=dates.get("valid_from", now().date()),
        valid_until=dates.get("valid_until"),
    )


def test_a_providers_blocks_never_overlap(manager, provider, location):
    schedule_block_save(actor=manager, block=_block(provider, location))
    with pytest.raises(ValidationError) as caught:
        schedule_block_save(
            actor=manager, block=_block(provider, location, starts=time(11), ends=time(14))
        )
    assert caught.value.code == "block_overlap"
    # Back to back, another day, or after the first one ends: all fine.
    schedule_block_save(
        actor=manager, block=_block(provider, location, starts=time(12), ends=time(15))
    )
    schedule_block_save(actor=manager, block=_block(provider, location, weekday=3))
    block = ScheduleBlock.objects.get(weekday=3)
    block.valid_until = now().date() + timedelta(days=30)
    schedule_block_save(actor=manager, block=block)
    schedule_block_save(
        actor=manager,
        block=_block(provider, location, weekday=3, valid_from=now().date() + timedelta(days=31)),
    )
    assert ScheduleBlock.objects.count() == 4


def test_the_front_desk_blocks_out_time_but_does_not_set_up(provider, location):
    desk = UserFactory(username="desk5", roles=[Role.FRONT_DESK])
    start = now() + timedelta(days=3)
    day_off = schedule_exception_create(
        actor=desk,
        exception=ScheduleException(
            kind="time_off", provider=provider, starts_at=start, ends_at=start + timedelta(hours=4)
        ),
    )
    with pytest.raises(AccessDenied):
        schedule_block_save(actor=desk, block=_block(provider, location))
    schedule_exception_delete(actor=desk, exception=day_off)
    assert not ScheduleException.objects.exists()
    event = _event("scheduling.exception_deleted")
    assert event.target_id == str(day_off.pk) and event.actor_username == "desk5"


def test_past_exceptions_stay_on_record(manager):
    past = ScheduleException.objects.create(
        kind="holiday", starts_at=now() - timedelta(days=2), ends_at=now() - timedelta(days=1)
    )
    with pytest.raises(ValidationError):
        schedule_exception_delete(actor=manager, exception=past)
    assert ScheduleException.objects.filter(pk=past.pk).exists()


def test_removing_a_running_exception_ends_it_now_and_keeps_its_past(manager, provider):
    started = now() - timedelta(hours=2)
    planned_end = now() + timedelta(days=1)
    running = ScheduleException.objects.create(
        kind="time_off", provider=provider, starts_at=started, ends_at=planned_end
    )
    before = now()

    outcome = schedule_exception_delete(actor=manager, exception=running)

    assert outcome == "ended"
    running.refresh_from_db()  # still there: the part already passed is history
    assert running.starts_at == started
    assert before <= running.ends_at <= now()
    event = _event("scheduling.exception_ended")
    assert (event.kind, event.target_id, event.actor_username) == (
        "update",
        str(running.pk),
        "admin1",
    )
    ends = changes_of(event)["ends_at"]  # JSON keeps milliseconds
    assert abs(datetime.fromisoformat(ends["old"]) - planned_end) < timedelta(milliseconds=1)
    assert abs(datetime.fromisoformat(ends["new"]) - running.ends_at) < timedelta(milliseconds=1)
    assert not AuditEvent.objects.filter(action="scheduling.exception_deleted").exists()
    # Ended, it is past: removing it again is refused and changes nothing.
    with pytest.raises(ValidationError) as caught:
        schedule_exception_delete(actor=manager, exception=running)
    assert caught.value.code == "exception_past"


def test_a_wholly_future_exception_is_deleted(manager):
    holiday = ScheduleException.objects.create(
        kind="holiday", starts_at=now() + timedelta(hours=1), ends_at=now() + timedelta(days=1)
    )
    assert schedule_exception_delete(actor=manager, exception=holiday) == "deleted"
    assert not ScheduleException.objects.exists()
    assert not AuditEvent.objects.filter(action="scheduling.exception_ended").exists()


def test_clinicians_cannot_remove_exceptions(provider):
    holiday = ScheduleException.objects.create(
        kind="holiday", starts_at=now() + timedelta(days=2), ends_at=now() + timedelta(days=3)
    )
    nurse = UserFactory(username="nurse9", roles=[Role.NURSE])
    with pytest.raises(AccessDenied):
        schedule_exception_delete(actor=nurse, exception=holiday)


@pytest.mark.parametrize("length", [{"duration_minutes": 481}, {"buffer_minutes": 121}])
def test_the_database_refuses_a_visit_longer_than_held_time_searches_look_back(length):
    fields = {"name": "Marathon", "duration_minutes": 30, "colour": "#2e90fa", **length}
    with pytest.raises(IntegrityError), transaction.atomic():
        AppointmentType.objects.create(**fields)
