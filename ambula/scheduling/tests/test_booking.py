from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils.timezone import localdate

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.core.errors import AccessDenied
from ambula.patients.models import Patient
from ambula.patients.tests.factories import registered_patient
from ambula.scheduling import booking
from ambula.scheduling.availability import problems_with
from ambula.scheduling.booking import (
    SlotTaken,
    appointment_book,
    appointment_cancel,
    appointment_check_in,
    appointment_complete,
    appointment_no_show,
    appointment_reschedule,
    appointment_room,
    appointment_series_book,
)
from ambula.scheduling.models import Appointment, ResourceBooking, ScheduleException
from ambula.scheduling.tests.factories import (
    make_block,
    make_equipment,
    make_exception,
    make_location,
    make_provider,
    make_room,
    make_type,
)

pytestmark = pytest.mark.django_db
CHICAGO = ZoneInfo("America/Chicago")


@pytest.fixture(autouse=True)
def chicago(settings):
    settings.TIME_ZONE = "America/Chicago"


def next_monday(weeks_ahead: int = 2) -> date:
    today = localdate()
    return today + timedelta(days=7 * weeks_ahead - today.weekday())


MONDAY = next_monday()


def at(day: date, clock: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(clock), tzinfo=CHICAGO)


@pytest.fixture
def front_desk(db):
    return UserFactory(username="desk", full_name="Frankie Desk", roles=[Role.FRONT_DESK])


@pytest.fixture
def clinic(db):
    return make_location("Main Clinic")


@pytest.fixture
def room(clinic):
    return make_room(clinic, "Room 1")


@pytest.fixture
def provider(physician):
    return make_provider(physician)


@pytest.fixture
def visit(db):
    return make_type("Follow-up", duration=30, buffer=10)


@pytest.fixture
def template(provider, clinic, room):
    return make_block(provider, clinic, weekdays=range(5), starts_at=time(9), ends_at=time(12))


@pytest.fixture
def patient(front_desk):
    return registered_patient(actor=front_desk)


@pytest.fixture
def book(front_desk, patient, provider, clinic, visit, template):
    def book_it(starts_at, **overrides):
        arguments = {
            "actor": front_desk,
            "patient": patient,
            "provider": provider,
            "location": clinic,
            "appointment_type": visit,
            "starts_at": starts_at,
        } | overrides
        return appointment_book(**arguments)

    return book_it


def refused(book, starts_at, **overrides) -> list[str]:
    with pytest.raises(ValidationError) as error:
        book(starts_at, **overrides)
    return error.value.messages


def events(action: str):
    return AuditEvent.objects.filter(action=action)


def test_booking_holds_the_provider_and_a_room_and_is_audited(book, patient, room, front_desk):
    appointment = book(at(MONDAY, "09:00"), note="Cough")

    assert appointment.status == Appointment.Status.SCHEDULED
    assert appointment.ends_at - appointment.starts_at == timedelta(minutes=30)
    assert appointment.blocked_until - appointment.ends_at == timedelta(minutes=10)
    assert appointment.booked_by == front_desk
    held = ResourceBooking.objects.get(appointment=appointment)
    assert (held.resource, held.blocked_until, held.active) == (
        room,
        appointment.blocked_until,
        True,
    )
    event = events("scheduling.appointment_booked").get()
    assert event.patient_id == patient.pk
    assert event.category == "schedule"


def test_outside_the_template_is_refused(book):
    assert refused(book, at(MONDAY, "08:30")) == [
        "Dr. Jamie Rivera does not see patients at this time."
    ]
    # Starts inside, ends after the block.
    assert refused(book, at(MONDAY, "11:45")) == [
        "Dr. Jamie Rivera does not see patients at this time."
    ]
    assert refused(book, at(MONDAY + timedelta(days=5), "09:00"))  # Saturday: no block


def test_a_block_for_other_types_refuses_this_one(provider, clinic, book, visit):
    other = make_type("Physical", duration=60)
    make_block(provider, clinic, weekdays=[0], starts_at=time(13), ends_at=time(17), types=[other])
    assert refused(book, at(MONDAY, "13:00")) == [
        "Dr. Jamie Rivera does not see Follow-up visits at this time."
    ]
    assert book(at(MONDAY, "13:00"), appointment_type=other).appointment_type == other


def test_the_past_is_refused(book):
    assert "That time has already passed." in refused(
        book, at(MONDAY - timedelta(weeks=3), "09:00")
    )


@pytest.mark.parametrize(
    ("kind", "scope", "message"),
    [
        ("closure", "location", "The location is closed then."),
        ("time_off", "provider", "Dr. Jamie Rivera is away then."),
        ("holiday", None, "The practice is closed for a holiday then."),
    ],
)
def test_exceptions_refuse_the_time_they_cover(book, provider, clinic, kind, scope, message):
    make_exception(
        kind,
        at(MONDAY, "10:00"),
        at(MONDAY, "11:00"),
        **({scope: {"provider": provider, "location": clinic}[scope]} if scope else {}),
    )
    assert refused(book, at(MONDAY, "10:30")) == [message]
    # The buffer after a 09:30 visit runs into the exception too.
    assert refused(book, at(MONDAY, "09:30")) == [message]
    assert book(at(MONDAY, "09:00"))
    assert book(at(MONDAY, "11:00"))


def test_a_closure_elsewhere_or_time_off_of_another_provider_does_not_matter(book):
    make_exception("closure", at(MONDAY, "09:00"), at(MONDAY, "12:00"), location=make_location())
    make_exception("time_off", at(MONDAY, "09:00"), at(MONDAY, "12:00"), provider=make_provider())
    assert book(at(MONDAY, "09:00"))


def test_the_provider_cannot_be_double_booked_including_the_buffer(book):
    book(at(MONDAY, "09:00"))
    with pytest.raises(SlotTaken) as error:
        book(at(MONDAY, "09:30"))  # inside the 10-minute buffer
    # The one room is held too.
    assert error.value.message == (
        "The provider already has an appointment then. No exam room is free then."
    )
    assert book(at(MONDAY, "09:40"))


def test_no_free_room_is_refused(book, clinic, patient, visit):
    other = make_provider()
    make_block(other, clinic, weekdays=[0], starts_at=time(9), ends_at=time(12))
    book(at(MONDAY, "09:00"))
    with pytest.raises(SlotTaken) as error:
        book(at(MONDAY, "09:15"), provider=other)
    assert error.value.message == "No exam room is free then."
    second = make_room(clinic, "Room 2")
    appointment = book(at(MONDAY, "09:15"), provider=other)
    assert appointment.resource_bookings.get().resource == second


def test_rooms_are_chosen_by_name(book, clinic):
    make_room(clinic, "A room")
    appointment = book(at(MONDAY, "09:00"))
    assert appointment.resource_bookings.get().resource.name == "A room"


def test_equipment_must_be_free(book, clinic, visit):
    ecg = make_equipment(clinic, "ECG cart")
    visit.equipment.add(ecg)
    visit.needs_room = False
    visit.save()
    other = make_provider()
    make_block(other, clinic, weekdays=[0], starts_at=time(9), ends_at=time(12))
    first = book(at(MONDAY, "09:00"))
    assert first.resource_bookings.get().resource == ecg
    with pytest.raises(SlotTaken) as error:
        book(at(MONDAY, "09:20"), provider=other)
    assert error.value.message == "The ECG cart is in use then."
    ecg.is_active = False
    ecg.save()
    assert refused(book, at(MONDAY, "10:00"), provider=other) == ["The ECG cart is out of service."]


def test_a_deactivated_provider_or_type_is_refused(book, provider, visit):
    provider.is_active = False
    provider.save()
    assert "Dr. Jamie Rivera is not taking appointments." in refused(book, at(MONDAY, "09:00"))
    provider.is_active = True
    provider.save()
    visit.is_active = False
    visit.save()
    assert refused(book, at(MONDAY, "09:00")) == ["Follow-up visits are no longer offered."]


@pytest.mark.parametrize("status", ["deceased", "merged"])
def test_a_deceased_or_merged_patient_cannot_be_booked(book, patient, status):
    survivor = registered_patient(actor=booking_actor(book))
    Patient.objects.filter(pk=patient.pk).update(
        status=status,
        deceased_date=date(2020, 1, 1) if status == "deceased" else None,
        merged_into=survivor if status == "merged" else None,
    )
    with pytest.raises(ValidationError) as error:
        book(at(MONDAY, "09:00"))
    assert error.value.code == f"patient_{status}"
    assert not Appointment.objects.exists()


def booking_actor(book):
    return UserFactory(roles=[Role.FRONT_DESK])


def test_a_start_in_the_spring_forward_gap_is_refused(provider, clinic, book):
    change_day = date(2027, 3, 14)  # US clocks go from 02:00 to 03:00
    make_block(provider, clinic, weekdays=[6], starts_at=time(0), ends_at=time(8))
    messages = refused(book, datetime(2027, 3, 14, 2, 30, tzinfo=CHICAGO))
    assert messages == [
        "That time does not exist: the clocks go forward then. Choose another time."
    ]
    assert book(at(change_day, "03:00")).starts_at == datetime(
        2027, 3, 14, 8, tzinfo=ZoneInfo("UTC")
    )


def test_wall_clock_blocks_hold_across_the_dst_change(provider, clinic, book):
    before, after = date(2027, 3, 8), date(2027, 3, 15)  # Mondays either side of the change
    assert book(at(before, "09:00")).starts_at.hour == 15  # CST: UTC-6
    assert book(at(after, "09:00")).starts_at.hour == 14  # CDT: UTC-5
    assert refused(book, at(after, "08:30"))


def test_problems_with_lists_every_reason(provider, clinic, visit, template):
    make_exception("holiday", at(MONDAY, "00:00"), at(MONDAY, "23:59"))
    assert problems_with(
        provider=provider, location=clinic, appointment_type=visit, starts_at=at(MONDAY, "08:00")
    ) == [
        "Dr. Jamie Rivera does not see patients at this time.",
        "The practice is closed for a holiday then.",
    ]


# Reschedule and cancel


def test_reschedule_books_the_new_time_and_cancels_the_old(book, front_desk):
    old = book(at(MONDAY, "09:00"))
    new = appointment_reschedule(actor=front_desk, appointment=old, starts_at=at(MONDAY, "09:15"))
    old.refresh_from_db()
    assert (old.status, old.cancel_reason) == ("cancelled", "Rescheduled")
    assert new.rescheduled_from == old
    assert new.starts_at == at(MONDAY, "09:15")
    assert not old.resource_bookings.filter(active=True).exists()
    assert events("scheduling.appointment_rescheduled").get().patient_id == old.patient_id


def test_reschedule_onto_a_taken_time_changes_nothing(book, front_desk, patient):
    first = book(at(MONDAY, "09:00"))
    second = book(at(MONDAY, "10:00"))
    with pytest.raises(SlotTaken):
        appointment_reschedule(actor=front_desk, appointment=second, starts_at=at(MONDAY, "09:20"))
    second.refresh_from_db()
    assert second.status == "scheduled"
    assert second.resource_bookings.get().active
    assert Appointment.objects.count() == 2
    assert first.status == "scheduled"


def test_cancel_needs_a_reason_and_frees_the_slot(book, front_desk):
    appointment = book(at(MONDAY, "09:00"))
    with pytest.raises(ValidationError):
        appointment_cancel(actor=front_desk, appointment=appointment, reason=" ")
    appointment_cancel(actor=front_desk, appointment=appointment, reason="Patient called")
    appointment.refresh_from_db()
    assert appointment.status == "cancelled"
    assert appointment.cancelled_by == front_desk
    assert not appointment.resource_bookings.filter(active=True).exists()
    event = events("scheduling.appointment_cancelled").get()
    assert event.patient_id == appointment.patient_id
    assert book(at(MONDAY, "09:00"))


# The day's flow


def test_status_flow_is_stamped_and_audited(book, front_desk, physician):
    appointment = book(at(MONDAY, "09:00"))
    appointment = appointment_check_in(actor=front_desk, appointment=appointment)
    assert appointment.status == "arrived" and appointment.arrived_at
    appointment = appointment_room(actor=physician, appointment=appointment)
    assert appointment.status == "in_room" and appointment.roomed_at
    appointment = appointment_complete(actor=physician, appointment=appointment)
    assert appointment.status == "completed" and appointment.completed_at
    for action in (
        "scheduling.patient_checked_in",
        "scheduling.patient_roomed",
        "scheduling.appointment_completed",
    ):
        assert events(action).get().patient_id == appointment.patient_id


def test_wrong_transitions_are_refused(book, front_desk):
    appointment = book(at(MONDAY, "09:00"))
    with pytest.raises(ValidationError) as error:
        appointment_complete(actor=front_desk, appointment=appointment)
    assert error.value.messages == ["A scheduled appointment cannot be marked completed."]
    with pytest.raises(ValidationError):
        appointment_room(actor=front_desk, appointment=appointment)
    appointment_cancel(actor=front_desk, appointment=appointment, reason="Ill")
    with pytest.raises(ValidationError):
        appointment_check_in(actor=front_desk, appointment=appointment)


def test_no_show_only_once_the_time_has_come(book, front_desk, monkeypatch):
    appointment = book(at(MONDAY, "09:00"))
    with pytest.raises(ValidationError) as error:
        appointment_no_show(actor=front_desk, appointment=appointment)
    assert error.value.code == "too_early"
    monkeypatch.setattr(booking, "timezone_now", lambda: at(MONDAY, "09:20"))
    appointment = appointment_no_show(actor=front_desk, appointment=appointment)
    assert appointment.status == "no_show"
    assert not appointment.resource_bookings.filter(active=True).exists()
    assert events("scheduling.appointment_no_show").exists()


def test_the_flow_needs_a_scheduling_or_clinical_role(book):
    appointment = book(at(MONDAY, "09:00"))
    biller = UserFactory(roles=[Role.BILLER])
    with pytest.raises(AccessDenied):
        appointment_check_in(actor=biller, appointment=appointment)
    with pytest.raises(AccessDenied):
        appointment_cancel(actor=biller, appointment=appointment, reason="x")


# Overbooking


def test_a_physician_may_overbook_with_a_reason(book, physician, room, clinic):
    make_room(clinic, "Room 2")
    book(at(MONDAY, "09:00"))
    extra = book(
        at(MONDAY, "09:00"), actor=physician, overbook_reason="Dr. Quill agreed to fit in today"
    )
    assert extra.overbooked and extra.overbook_reason == "Dr. Quill agreed to fit in today"
    changes = events("scheduling.appointment_booked").order_by("-sequence").first()
    assert changes.patient_id == extra.patient_id


def test_overbooking_still_keeps_to_the_template(book, physician):
    assert refused(book, at(MONDAY, "07:00"), actor=physician, overbook_reason="Urgent")


def test_front_desk_cannot_overbook_and_physicians_cannot_book_plainly(book, physician):
    book(at(MONDAY, "09:00"))
    with pytest.raises(AccessDenied):
        book(at(MONDAY, "09:00"), overbook_reason="Squeeze in")
    with pytest.raises(AccessDenied):
        book(at(MONDAY, "10:00"), actor=physician)


# Series


def test_series_all_or_nothing_books_every_visit(
    book, front_desk, patient, provider, clinic, visit
):
    report = appointment_series_book(
        actor=front_desk,
        patient=patient,
        provider=provider,
        location=clinic,
        appointment_type=visit,
        starts_at=at(MONDAY, "09:00"),
        every_weeks=2,
        times=3,
        all_or_nothing=True,
    )
    assert [appointment.starts_at for appointment in report.booked] == [
        at(MONDAY + timedelta(weeks=weeks), "09:00") for weeks in (0, 2, 4)
    ]
    assert {appointment.series for appointment in report.booked} == {report.series}
    assert events("scheduling.appointment_booked").count() == 3


def test_series_all_or_nothing_books_none_and_names_the_collision(
    book, front_desk, patient, provider, clinic, visit
):
    book(at(MONDAY + timedelta(weeks=1), "09:15"))
    with pytest.raises(ValidationError) as error:
        appointment_series_book(
            actor=front_desk,
            patient=patient,
            provider=provider,
            location=clinic,
            appointment_type=visit,
            starts_at=at(MONDAY, "09:00"),
            every_weeks=1,
            times=3,
            all_or_nothing=True,
        )
    day = MONDAY + timedelta(weeks=1)
    assert error.value.messages == [
        f"{day:%Y-%m-%d} 09:00: The provider already has an appointment then. "
        "No exam room is free then."
    ]
    assert Appointment.objects.count() == 1


def test_series_partial_books_what_it_can(book, front_desk, patient, provider, clinic, visit):
    make_exception("closure", at(MONDAY, "00:00"), at(MONDAY, "23:00"), location=clinic)
    report = appointment_series_book(
        actor=front_desk,
        patient=patient,
        provider=provider,
        location=clinic,
        appointment_type=visit,
        starts_at=at(MONDAY, "09:00"),
        every_weeks=1,
        times=3,
        all_or_nothing=False,
    )
    assert len(report.booked) == 2
    assert list(report.refused.values()) == [["The location is closed then."]]
    assert next(iter(report.refused)) == at(MONDAY, "09:00")
    assert ScheduleException.objects.count() == 1
