"""The schedule pages through the test client: access, booking, the day's flow, the board."""

from datetime import date, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.patients.models import Patient
from ambula.patients.tests.factories import registered_patient
from ambula.scheduling import booking
from ambula.scheduling.availability import practice_zone, wall_clock
from ambula.scheduling.booking import SlotTaken, appointment_book
from ambula.scheduling.models import Appointment
from ambula.scheduling.tests.factories import (
    make_block,
    make_location,
    make_provider,
    make_room,
    make_type,
)

pytestmark = pytest.mark.django_db


def next_monday() -> date:
    """A Monday at least two days ahead, whatever today is."""
    day = timezone.localdate() + timedelta(days=2)
    return day + timedelta(days=(7 - day.weekday()) % 7)


@pytest.fixture
def clinic(practice):
    location = make_location("Lakeside Main")
    make_room(location, "Room 1")
    make_room(location, "Room 2")
    provider = make_provider(full_name="Dr. Ada Quill")
    make_block(provider, location, weekdays=range(7), starts_at=time(9), ends_at=time(12))
    visit = make_type("Follow-up", duration=30, colour="#7a5af8")
    clerk = UserFactory(username="desk9", roles=[Role.FRONT_DESK])
    patient = registered_patient(actor=clerk, given_name="Mira", family_name="Holt")
    return {
        "location": location,
        "provider": provider,
        "type": visit,
        "clerk": clerk,
        "patient": patient,
    }


def book_at(clinic, day: date, at: time = time(9, 30)) -> Appointment:
    return appointment_book(
        actor=clinic["clerk"],
        patient=clinic["patient"],
        provider=clinic["provider"],
        location=clinic["location"],
        appointment_type=clinic["type"],
        starts_at=wall_clock(day, at, practice_zone()),
    )


def board_url(clinic, day):
    return f"{reverse('scheduling:day_board')}?location={clinic['location'].pk}&date={day}"


@pytest.mark.parametrize("role", list(Role))
def test_the_board_and_week_are_for_every_staff_role(client, sign_in, clinic, role):
    user = UserFactory(username="someone", roles=[role])
    sign_in(client, user)
    day = next_monday()
    book_at(clinic, day)
    board = client.get(board_url(clinic, day))
    week = client.get(
        reverse("scheduling:provider_week", kwargs={"provider_id": clinic["provider"].pk})
        + f"?week={day}"
    )
    book = client.get(reverse("scheduling:book") + f"?patient={clinic['patient'].pk}")
    if role == Role.PATIENT:
        assert board.status_code == week.status_code == book.status_code == 403
        return
    assert board.status_code == 200
    assert "Holt, Mira" in board.content.decode()
    assert week.status_code == 200
    assert "Holt, Mira" in week.content.decode()
    manages = role in (Role.FRONT_DESK, Role.ADMIN)
    assert book.status_code == (200 if manages else 403)
    assert ("Check in" in board.content.decode()) == manages


def test_the_board_read_is_audited_and_refreshes_as_a_fragment(client, sign_in, clinic):
    sign_in(client, clinic["clerk"])
    day = next_monday()
    book_at(clinic, day)
    client.get(board_url(clinic, day))
    assert AuditEvent.objects.filter(action="scheduling.day_board_viewed").count() == 1
    fragment = client.get(board_url(clinic, day), headers={"HX-Request": "true"})
    html = fragment.content.decode()
    assert html.lstrip().startswith('<div id="day-board"') or 'id="day-board"' in html[:300]
    assert "<nav" not in html and 'hx-trigger="every 15s"' in html
    assert "Holt, Mira" in html
    assert AuditEvent.objects.filter(action="scheduling.day_board_viewed").count() == 2


def test_an_empty_day_says_so(client, sign_in, clinic):
    sign_in(client, clinic["clerk"])
    clinic["provider"].blocks.all().delete()
    response = client.get(board_url(clinic, next_monday()))
    assert "Nobody is scheduled here this day" in response.content.decode()


def test_the_picker_lists_slots_and_booking_creates_the_appointment(client, sign_in, clinic):
    sign_in(client, clinic["clerk"])
    picker = client.get(
        reverse("scheduling:slots"),
        {"patient": clinic["patient"].pk, "appointment_type": clinic["type"].pk},
    )
    assert picker.status_code == 200 and b"data-slot" in picker.content
    day = next_monday()
    start = wall_clock(day, time(10), practice_zone()).astimezone(practice_zone())
    response = client.post(
        reverse("scheduling:book"),
        {
            "patient": clinic["patient"].pk,
            "appointment_type": clinic["type"].pk,
            "provider": clinic["provider"].pk,
            "location": clinic["location"].pk,
            "start": start.isoformat(),
            "note": "Knee pain",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == board_url(clinic, day)
    appointment = Appointment.objects.get()
    assert appointment.starts_at == start and appointment.note == "Knee pain"
    assert AuditEvent.objects.filter(
        action="scheduling.appointment_booked", patient_id=clinic["patient"].pk
    ).exists()


def test_a_slot_taken_meanwhile_reloads_the_picker(client, sign_in, clinic, monkeypatch):
    sign_in(client, clinic["clerk"])

    def taken(**kwargs):
        raise SlotTaken()

    monkeypatch.setattr(booking, "appointment_book", taken)
    start = wall_clock(next_monday(), time(10), practice_zone())
    response = client.post(
        reverse("scheduling:book"),
        {
            "patient": clinic["patient"].pk,
            "appointment_type": clinic["type"].pk,
            "provider": clinic["provider"].pk,
            "location": clinic["location"].pk,
            "start": start.isoformat(),
        },
    )
    assert response.status_code == 409
    html = response.content.decode()
    assert "That time was just taken. Choose another slot." in html
    assert "data-slot" in html
    assert not Appointment.objects.exists()


def test_a_really_taken_slot_books_nothing(client, sign_in, clinic):
    sign_in(client, clinic["clerk"])
    day = next_monday()
    book_at(clinic, day, time(10))
    other = registered_patient(actor=clinic["clerk"], given_name="Tom", family_name="Reed")
    response = client.post(
        reverse("scheduling:book"),
        {
            "patient": other.pk,
            "appointment_type": clinic["type"].pk,
            "provider": clinic["provider"].pk,
            "location": clinic["location"].pk,
            "start": wall_clock(day, time(10), practice_zone()).isoformat(),
        },
    )
    assert "That time was just taken. Choose another slot." in response.content.decode()
    assert Appointment.objects.filter(patient=other).count() == 0


def test_the_day_flow_buttons_move_the_status(client, sign_in, clinic):
    sign_in(client, clinic["clerk"])
    appointment = book_at(clinic, next_monday())
    for name, status in (("check_in", "arrived"), ("room", "in_room"), ("complete", "completed")):
        response = client.post(
            reverse(f"scheduling:{name}", kwargs={"appointment_id": appointment.pk}),
            headers={"HX-Request": "true"},
        )
        assert response.status_code == 200
        assert 'id="day-board"' in response.content.decode()
        appointment.refresh_from_db()
        assert appointment.status == status


def test_no_show_once_the_time_has_come(client, sign_in, clinic):
    sign_in(client, clinic["clerk"])
    now = timezone.localtime()
    # Book in the future, then let the clock pass it: the service refuses early no-shows.
    appointment = book_at(clinic, next_monday())
    future = client.post(reverse("scheduling:no_show", kwargs={"appointment_id": appointment.pk}))
    assert future.status_code == 302
    appointment.refresh_from_db()
    assert appointment.status == "scheduled"
    Appointment.objects.filter(pk=appointment.pk).update(
        starts_at=now - timedelta(hours=1),
        ends_at=now - timedelta(minutes=30),
        blocked_until=now - timedelta(minutes=30),
    )
    client.post(reverse("scheduling:no_show", kwargs={"appointment_id": appointment.pk}))
    appointment.refresh_from_db()
    assert appointment.status == "no_show"


def test_cancel_needs_a_reason(client, sign_in, clinic):
    sign_in(client, clinic["clerk"])
    appointment = book_at(clinic, next_monday())
    url = reverse("scheduling:cancel", kwargs={"appointment_id": appointment.pk})
    refused = client.post(url, {"reason": "  "})
    assert refused.status_code == 400
    assert "Say why the appointment is cancelled." in refused.content.decode()
    appointment.refresh_from_db()
    assert appointment.status == "scheduled"
    client.post(url, {"reason": "Patient called"})
    appointment.refresh_from_db()
    assert appointment.status == "cancelled" and appointment.cancel_reason == "Patient called"


def test_reschedule_moves_the_visit(client, sign_in, clinic):
    sign_in(client, clinic["clerk"])
    day = next_monday()
    appointment = book_at(clinic, day)
    url = reverse("scheduling:reschedule", kwargs={"appointment_id": appointment.pk})
    assert b"data-slot" in client.get(url).content
    new_start = wall_clock(day + timedelta(days=1), time(11), practice_zone())
    response = client.post(
        url,
        {
            "provider": clinic["provider"].pk,
            "location": clinic["location"].pk,
            "start": new_start.isoformat(),
        },
    )
    assert response.status_code == 302
    moved = Appointment.objects.get(rescheduled_from=appointment)
    assert moved.starts_at == new_start


def test_print_view_lists_the_day(client, sign_in, clinic):
    sign_in(client, clinic["clerk"])
    day = next_monday()
    book_at(clinic, day)
    response = client.get(
        reverse("scheduling:day_print") + f"?location={clinic['location'].pk}&date={day}"
    )
    assert "Holt, Mira" in response.content.decode()
    assert AuditEvent.objects.filter(action="scheduling.day_schedule_printed").exists()


def test_the_chart_offers_booking_to_the_front_desk(client, sign_in, clinic):
    sign_in(client, clinic["clerk"])
    response = client.get(reverse("patients:chart", kwargs={"patient_id": clinic["patient"].pk}))
    assert "Book an appointment" in response.content.decode()


def test_the_board_costs_the_same_queries_for_one_visit_or_many(
    client, sign_in, clinic, django_assert_max_num_queries
):
    """A busy board must not load each visit's provider, type or patient on its own."""
    sign_in(client, clinic["clerk"])
    day = next_monday()
    first = book_at(clinic, day, time(9))
    client.get(board_url(clinic, day))  # the session and the practice, read once
    with CaptureQueriesContext(connection) as one_visit:
        client.get(board_url(clinic, day), headers={"HX-Request": "true"})
    second = make_provider(full_name="Dr. Basil Reed")
    make_block(second, clinic["location"], weekdays=range(7), starts_at=time(9), ends_at=time(12))
    other_type = make_type("Physical", duration=15, colour="#12b76a")
    for index, at in enumerate((time(9, 30), time(10), time(10, 30), time(11))):
        book_at(clinic, day, at)
        appointment_book(
            actor=clinic["clerk"],
            patient=registered_patient(actor=clinic["clerk"], given_name=f"Pat{index}"),
            provider=second,
            location=clinic["location"],
            appointment_type=other_type,
            starts_at=wall_clock(day, at, practice_zone()),
        )
    with django_assert_max_num_queries(len(one_visit.captured_queries)):
        response = client.get(board_url(clinic, day), headers={"HX-Request": "true"})
    page = response.content.decode()
    assert page.count('class="appt appt-scheduled"') == 9
    # The cards' links are the ones {% url %} would give.
    assert reverse("scheduling:check_in", kwargs={"appointment_id": first.pk}) in page
    assert reverse("scheduling:cancel", kwargs={"appointment_id": first.pk}) in page
    assert reverse("patients:chart", kwargs={"patient_id": first.patient_id}) in page


def test_moving_a_restricted_patients_visit_asks_for_emergency_access_first(
    client, sign_in, clinic
):
    appointment = book_at(clinic, next_monday())
    Patient.objects.filter(pk=clinic["patient"].pk).update(restricted=True)
    sign_in(client, clinic["clerk"])
    emergency = reverse("patients:emergency_access", args=[clinic["patient"].pk])

    page = client.get(reverse("scheduling:reschedule", kwargs={"appointment_id": appointment.pk}))
    picker = client.get(reverse("scheduling:slots"), {"appointment": appointment.pk})

    assert page.status_code == picker.status_code == 302
    assert page["Location"].startswith(emergency) and picker["Location"].startswith(emergency)
    assert AuditEvent.objects.filter(action="patients.restricted_record_refused").count() == 2
    assert not AuditEvent.objects.filter(action="scheduling.booking_opened").exists()
