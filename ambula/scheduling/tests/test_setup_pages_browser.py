"""Schedule set-up in a real browser: a new provider and their Monday, then time off that
would cover a booked visit, the warning that lists it, and the confirmation."""

from datetime import time, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.patients.tests.factories import registered_patient
from ambula.scheduling.availability import wall_clock
from ambula.scheduling.booking import appointment_book
from ambula.scheduling.models import Provider, ScheduleBlock, ScheduleException
from ambula.scheduling.tests.factories import (
    make_block,
    make_equipment,
    make_location,
    make_provider,
    make_room,
    make_type,
)
from ambula.scheduling.tests.test_pages_browser import next_monday, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_set_up_a_provider_then_block_out_time_over_a_booking(page, live_server, practice):
    location = make_location("Lakeside Main")
    make_room(location, "Exam 1")
    make_room(location, "Exam 2")
    make_equipment(location, "ECG cart")
    north = make_location("Northside")
    make_room(north, "Exam 1")
    follow_up = make_type("Follow-up", duration=20, colour="#2e90fa")
    make_type("New patient visit", duration=40, buffer=5, colour="#7a5af8")
    colleague = make_provider(full_name="Dr. Marcus Webb")
    make_block(colleague, north, weekdays=[0, 2, 4], starts_at=time(9), ends_at=time(17))
    UserFactory(username="drlee", full_name="Dr. Priya Lee", roles=[Role.PHYSICIAN])
    admin = UserFactory(username="admin1", full_name="Avery Admin", roles=[Role.ADMIN])
    sign_in(page, live_server, admin)

    page.goto(f"{live_server.url}/schedule/")
    page.get_by_role("link", name="Set-up").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Schedule set-up")
    shot(page, "setup-overview")

    # A new provider, picked from the clinicians without a profile.
    page.get_by_role("link", name="Add a provider").click()
    page.get_by_label("Staff member").select_option(label="Dr. Priya Lee (drlee)")
    page.get_by_label("Credentials").fill("MD")
    page.get_by_label("Specialty").fill("Family medicine")
    page.get_by_label("NPI").fill("1234567890")  # a wrong check digit first
    page.get_by_label("Taxonomy code").fill("207Q00000X")
    page.get_by_role("button", name="Add provider").click()
    expect(page.locator(".field-error")).to_contain_text("check digit")
    page.get_by_label("NPI").fill("1234567893")
    page.get_by_role("button", name="Add provider").click()
    expect(page.get_by_role("status")).to_contain_text("Dr. Priya Lee")
    provider = Provider.objects.get(user__username="drlee")

    # Their Monday: 09:00-12:00 at Lakeside Main, follow-ups only.
    page.get_by_role("link", name="Add a block").click()
    page.get_by_label("Day").select_option(label="Monday")
    page.get_by_label("Location").select_option(label="Lakeside Main")
    page.get_by_label("From").fill("09:00")
    page.get_by_label("Until").fill("12:00")
    page.get_by_label("Follow-up").check()
    page.get_by_role("button", name="Add block").click()
    monday = page.locator("section.setup-day").first
    expect(monday.locator(".setup-block-time")).to_have_text("09:00\N{EN DASH}12:00")
    expect(monday).to_contain_text("Lakeside Main")
    expect(monday).to_contain_text("Follow-up")
    block = ScheduleBlock.objects.get(provider=provider)
    assert (block.weekday, block.starts_at, block.ends_at) == (0, time(9), time(12))
    # An afternoon block on Wednesday too, for a fuller week.
    page.get_by_role("link", name="Add a block").click()
    page.get_by_label("Day").select_option(label="Wednesday")
    page.get_by_label("From").fill("13:00")
    page.get_by_label("Until").fill("17:00")
    page.get_by_role("button", name="Add block").click()
    expect(page.locator(".setup-block")).to_have_count(2)
    shot(page, "setup-provider")

    # A visit is booked in that Monday; time off over it is refused until confirmed.
    clerk = UserFactory(username="desk1", roles=[Role.FRONT_DESK])
    patient = registered_patient(actor=clerk, given_name="Mira", family_name="Holt")
    day = next_monday()
    appointment_book(
        actor=clerk,
        patient=patient,
        provider=provider,
        location=location,
        appointment_type=follow_up,
        starts_at=wall_clock(day, time(10)),
    )
    page.goto(f"{live_server.url}/schedule/")
    page.get_by_role("link", name="Time off & closures").click()
    page.get_by_label("Time off").check()
    page.get_by_label("Provider").select_option(label=str(provider))
    page.get_by_label("First day").fill(day.isoformat())
    page.get_by_label("Last day").fill(day.isoformat())
    page.get_by_label("Reason (optional)").fill("Conference")
    page.get_by_role("button", name="Block out", exact=True).click()
    warning = page.get_by_role("alert")
    expect(warning).to_contain_text("1 booked appointment(s) fall in this time")
    expect(warning).to_contain_text("Holt, Mira")
    expect(warning).to_contain_text("10:00")
    assert not ScheduleException.objects.exists()
    shot(page, "setup-exceptions-warning")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "setup-exceptions-warning-narrow")
    page.set_viewport_size({"width": 1366, "height": 768})

    page.get_by_role("button", name="Block it out anyway").click()
    expect(page.get_by_role("status")).to_contain_text("Blocked out")
    expect(page.locator(".setup-exception")).to_contain_text("Dr. Priya Lee")
    exception = ScheduleException.objects.get()
    assert exception.provider == provider and exception.reason == "Conference"
    assert exception.starts_at == wall_clock(day, time(0))
    assert exception.ends_at == wall_clock(day + timedelta(days=1), time(0))
    shot(page, "setup-exceptions")

    # On a phone every page fits the screen's width.
    page.set_viewport_size({"width": 390, "height": 844})
    for name, path in [
        ("setup-overview-narrow", "/schedule/setup/"),
        ("setup-provider-narrow", f"/schedule/setup/providers/{provider.pk}/"),
        ("setup-location-narrow", f"/schedule/setup/locations/{location.pk}/"),
        ("setup-exceptions-narrow", "/schedule/setup/exceptions/"),
    ]:
        page.goto(f"{live_server.url}{path}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
        shot(page, name)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.reload()
    shot(page, "setup-location")
    assert timezone.localdate() < day
    assert page.console_errors == []
