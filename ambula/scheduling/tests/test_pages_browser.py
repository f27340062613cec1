"""The schedule in a real browser: book by keyboard, check in on the board, reschedule, cancel."""

import os
from datetime import date, time, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import TEST_PASSWORD, UserFactory
from ambula.patients.tests.factories import registered_patient
from ambula.scheduling.models import Appointment
from ambula.scheduling.tests.factories import (
    make_block,
    make_location,
    make_provider,
    make_room,
    make_type,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("SCHEDULE_SCREENSHOTS", "")


def shot(page, name):
    """Screenshots for review (SCHEDULE_SCREENSHOTS=dir); Playwright's capture trips the CSP."""
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)
        page.wait_for_timeout(100)
        page.console_errors.clear()


def sign_in(page, live_server, user):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


def next_monday() -> date:
    day = timezone.localdate() + timedelta(days=2)
    return day + timedelta(days=(7 - day.weekday()) % 7)


def test_book_by_keyboard_check_in_reschedule_and_cancel(page, live_server, practice):
    location = make_location("Lakeside Main")
    make_room(location, "Room 1")
    make_room(location, "Room 2")
    provider = make_provider(full_name="Dr. Ada Quill")
    make_block(provider, location, weekdays=[0, 1, 2, 3, 4], starts_at=time(9), ends_at=time(12))
    make_type("Follow-up", duration=30, colour="#7a5af8")
    clerk = UserFactory(username="desk1", full_name="Dana Desk", roles=[Role.FRONT_DESK])
    patient = registered_patient(actor=clerk, given_name="Mira", family_name="Holt")
    sign_in(page, live_server, clerk)

    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    page.get_by_role("link", name="Book an appointment").click()
    # htmx binds the form when the page has loaded; a choice made earlier would go unheard.
    page.wait_for_load_state("load")
    page.get_by_label("Appointment type").select_option(label="Follow-up")
    first = page.locator("#slot-picker [data-slot]").first
    expect(first).to_be_visible(timeout=15_000)
    shot(page, "booking-picker")
    first.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    third = page.locator("#slot-picker [data-slot]").nth(2)
    expect(third).to_be_focused()
    chosen_time = third.locator(".slot-time").inner_text()
    page.keyboard.press("Enter")
    confirm = page.get_by_role("button", name="Book appointment")
    expect(confirm).to_be_focused()
    shot(page, "booking-confirm")
    page.keyboard.press("Enter")

    expect(page.get_by_role("status")).to_contain_text("Booked Mira Holt")
    appointment = Appointment.objects.get(patient=patient)
    assert timezone.localtime(appointment.starts_at).strftime("%H:%M") == chosen_time
    card = page.locator(f"#appointment-{appointment.pk}")
    expect(card).to_contain_text("Scheduled")
    shot(page, "day-board")
    page.evaluate("window.notReloaded = true")
    card.get_by_role("button", name="Check in").click()
    expect(page.locator(f"#appointment-{appointment.pk}")).to_contain_text("Arrived")
    assert page.evaluate("window.notReloaded") is True
    appointment.refresh_from_db()
    assert appointment.status == "arrived"

    # A second visit: reschedule it, then cancel it with a reason.
    other = registered_patient(actor=clerk, given_name="Tom", family_name="Reed")
    page.goto(f"{live_server.url}/schedule/book/?patient={other.pk}")
    page.get_by_label("Appointment type").select_option(label="Follow-up")
    page.locator("#slot-picker [data-slot]").first.click()
    page.get_by_role("button", name="Book appointment").click()
    booked = Appointment.objects.get(patient=other)
    page.locator(f"#appointment-{booked.pk}").get_by_role("link", name="Reschedule").click()
    page.locator("#slot-picker [data-slot]").nth(3).click()
    page.get_by_role("button", name="Move appointment").click()
    expect(page.get_by_role("status")).to_contain_text("Moved to")
    moved = Appointment.objects.get(rescheduled_from=booked)
    page.goto(
        f"{live_server.url}/schedule/?location={location.pk}"
        f"&date={timezone.localtime(moved.starts_at).date()}"
    )
    card = page.locator(f"#appointment-{moved.pk}")
    card.get_by_role("link", name="Cancel…").click()
    page.get_by_label("Reason").fill("Patient called to cancel")
    page.get_by_role("button", name="Cancel appointment").click()
    expect(page.locator(f"#appointment-{moved.pk}")).to_have_count(0)
    moved.refresh_from_db()
    assert moved.status == "cancelled" and moved.cancel_reason == "Patient called to cancel"

    page.goto(f"{live_server.url}/schedule/provider/{provider.pk}/?week={next_monday()}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Dr. Ada Quill")
    shot(page, "provider-week")
    page.set_viewport_size({"width": 420, "height": 800})
    day = timezone.localtime(appointment.starts_at).date()
    page.goto(f"{live_server.url}/schedule/?location={location.pk}&date={day}")
    shot(page, "day-board-narrow")
    assert page.console_errors == []
