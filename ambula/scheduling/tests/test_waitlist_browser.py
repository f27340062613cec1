"""The waitlist and overbooking in a real browser: a cancelled visit's time goes to the patient
waiting for it, and an overbooked visit shows its badge and reason on the board."""

from datetime import time

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.patients.tests.factories import registered_patient
from ambula.scheduling.availability import wall_clock
from ambula.scheduling.booking import appointment_book
from ambula.scheduling.models import Appointment, WaitlistEntry
from ambula.scheduling.tests.factories import (
    make_block,
    make_location,
    make_provider,
    make_room,
    make_type,
)
from ambula.scheduling.tests.test_pages_browser import next_monday, shot, sign_in
from ambula.scheduling.waitlist import waitlist_add

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def refused_with_400(page):
    """A refused form comes back with 400, which the browser logs once as a failed load."""
    assert page.console_errors == [
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
    page.console_errors.clear()


def shot_both(page, name):
    """The page as it is now at 1366 wide, then at a phone's 390."""
    shot(page, name)
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, f"{name}-narrow")
    page.set_viewport_size({"width": 1366, "height": 768})


@pytest.fixture
def clinic(practice):
    location = make_location("Lakeside Main")
    make_room(location, "Room 1")
    make_room(location, "Room 2")
    provider = make_provider(full_name="Dr. Ada Quill")
    make_block(provider, location, starts_at=time(9), ends_at=time(12))
    visit = make_type("Follow-up", duration=30, colour="#7a5af8")
    clerk = UserFactory(username="desk1", full_name="Dana Desk", roles=[Role.FRONT_DESK])
    return {"location": location, "provider": provider, "type": visit, "clerk": clerk}


def test_a_cancelled_time_is_booked_for_the_waiting_patient(page, live_server, clinic):
    clerk, day = clinic["clerk"], next_monday()
    tom = registered_patient(actor=clerk, given_name="Tom", family_name="Reed")
    cancelled = appointment_book(
        actor=clerk,
        patient=tom,
        provider=clinic["provider"],
        location=clinic["location"],
        appointment_type=clinic["type"],
        starts_at=wall_clock(day, time(9, 30)),
    )
    mira = registered_patient(actor=clerk, given_name="Mira", family_name="Holt")
    entry = waitlist_add(
        actor=clerk, patient=mira, appointment_type=clinic["type"], latest_time=time(11)
    )
    sign_in(page, live_server, clerk)

    page.goto(f"{live_server.url}/schedule/waitlist/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Waitlist")
    expect(page.locator(f"#waitlist-entry-{entry.pk}")).to_contain_text("Holt, Mira")
    shot_both(page, "waitlist")

    # Tom would rather come earlier too, but his wishes are contradictory at first.
    page.goto(f"{live_server.url}/schedule/waitlist/add/?patient={tom.pk}")
    page.get_by_label("Appointment type").select_option(label="Follow-up")
    page.get_by_label("Monday").check()
    page.get_by_label("Not before").fill("11:00")
    page.get_by_label("Not after").fill("10:00")
    page.get_by_role("button", name="Put on the waitlist").click()
    expect(page.get_by_text("The latest time must be after the earliest.")).to_be_visible()
    refused_with_400(page)
    shot_both(page, "waitlist-add-error")
    assert not WaitlistEntry.objects.filter(patient=tom).exists()

    page.goto(f"{live_server.url}/schedule/?location={clinic['location'].pk}&date={day}")
    card = page.locator(f"#appointment-{cancelled.pk}")
    card.get_by_role("link", name="Cancel…").click()
    page.get_by_label("Reason").fill("Patient called to cancel")
    page.get_by_role("button", name="Cancel appointment").click()
    notice = page.get_by_role("status").filter(has_text="on the waitlist")
    expect(notice).to_contain_text("1 patient on the waitlist wants this time.")
    notice.get_by_role("link", name="See who and book").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Book a freed slot")
    expect(page.locator(f"#waitlist-entry-{entry.pk}")).to_contain_text("Holt, Mira")
    shot_both(page, "waitlist-slot")
    page.get_by_role("button", name="Book for this patient Holt, Mira").click()

    expect(page.get_by_role("status")).to_contain_text("Booked Mira Holt with Dr. Ada Quill")
    booked = Appointment.objects.get(patient=mira)
    assert booked.starts_at == cancelled.starts_at
    moved_in = page.locator(f"#appointment-{booked.pk}")
    expect(moved_in).to_contain_text("Holt, Mira")
    expect(moved_in).to_contain_text(timezone.localtime(booked.starts_at).strftime("%H:%M"))
    entry.refresh_from_db()
    assert entry.status == WaitlistEntry.Status.BOOKED and entry.booked_appointment == booked

    page.goto(f"{live_server.url}/schedule/waitlist/")
    expect(page.get_by_text("Nobody is on the waitlist")).to_be_visible()
    shot_both(page, "waitlist-empty")
    assert page.console_errors == []


def test_an_overbooked_visit_shows_its_badge_and_reason_on_the_board(page, live_server, clinic):
    day = next_monday()
    taken = appointment_book(
        actor=clinic["clerk"],
        patient=registered_patient(actor=clinic["clerk"], given_name="Tom", family_name="Reed"),
        provider=clinic["provider"],
        location=clinic["location"],
        appointment_type=clinic["type"],
        starts_at=wall_clock(day, time(10)),
    )
    mira = registered_patient(actor=clinic["clerk"], given_name="Mira", family_name="Holt")
    admin = UserFactory(username="admin1", full_name="Avery Admin", roles=[Role.ADMIN])
    sign_in(page, live_server, admin)

    page.goto(f"{live_server.url}/schedule/book/?patient={mira.pk}")
    page.get_by_text("Overbook…").click()
    form = page.locator("#overbook")
    form.get_by_label("Appointment type").select_option(label="Follow-up")
    form.get_by_label("Date").fill(day.isoformat())
    form.get_by_label("Time").fill("10:00")
    form.get_by_label("Provider").select_option(label=str(clinic["provider"]))
    form.get_by_label("Location").select_option(label="Lakeside Main")
    shot_both(page, "booking-overbook")
    form.get_by_role("button", name="Overbook", exact=True).click()
    expect(form.get_by_text("Say why this appointment is overbooked.")).to_be_visible()
    refused_with_400(page)
    assert not Appointment.objects.filter(patient=mira).exists()
    form.get_by_label("Reason for overbooking").fill("Dr. Quill agreed to fit in today")
    form.get_by_role("button", name="Overbook", exact=True).click()

    expect(page.get_by_role("status")).to_contain_text("Overbooked Mira Holt")
    overbooked = Appointment.objects.get(patient=mira)
    assert overbooked.starts_at == taken.starts_at and overbooked.overbooked
    card = page.locator(f"#appointment-{overbooked.pk}")
    expect(card.locator(".badge-warning")).to_have_text("Overbooked")
    expect(card).to_contain_text("Dr. Quill agreed to fit in today")
    expect(page.locator(f"#appointment-{taken.pk}")).to_contain_text("Reed, Tom")
    shot(page, "board-overbooked")
    assert page.console_errors == []
