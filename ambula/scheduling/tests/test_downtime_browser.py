"""The downtime kit in a real browser, opened from a file:// URL with no server behind it."""

import os
from datetime import time, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.patients.allergies import allergy_add
from ambula.patients.coverage import coverage_add, payer_create
from ambula.patients.tests.factories import registered_patient
from ambula.scheduling.availability import practice_zone, wall_clock
from ambula.scheduling.booking import appointment_book
from ambula.scheduling.downtime_kit import downtime_kit_export
from ambula.scheduling.tests.factories import (
    make_block,
    make_location,
    make_provider,
    make_room,
    make_type,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db]
SHOTS = os.environ.get("SCHEDULE_SCREENSHOTS", "")
PASSPHRASE = "maple-otter-quartz-violin"


def shot(page, name):
    """Screenshots for review (SCHEDULE_SCREENSHOTS=dir), at the desk's width and a phone's."""
    if not SHOTS:
        return
    for width, height in ((1366, 768), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=f"{SHOTS}/downtime-{name}-{width}.png", full_page=True)
    page.set_viewport_size({"width": 1366, "height": 768})


@pytest.fixture
def kit(practice, tmp_path):
    location = make_location("Lakeside Main", phone="(217) 555-0100")
    make_room(location, "Room 1")
    provider = make_provider(full_name="Dr. Ada Quill")
    make_block(provider, location, weekdays=range(7), starts_at=time(9), ends_at=time(12))
    visit = make_type("Follow-up", duration=30)
    clerk = UserFactory(username="desk9", roles=[Role.FRONT_DESK])
    nurse = UserFactory(username="nurse9", roles=[Role.NURSE])
    tomorrow = timezone.localdate() + timedelta(days=1)
    for at, given, family in ((time(9, 30), "Mira", "Holt"), (time(10), "Ned", "<b>Ng</b>")):
        patient = registered_patient(actor=clerk, given_name=given, family_name=family)
        appointment_book(
            actor=clerk,
            patient=patient,
            provider=provider,
            location=location,
            appointment_type=visit,
            starts_at=wall_clock(tomorrow, at, practice_zone()),
        )
        if given == "Mira":
            allergy_add(
                actor=nurse,
                patient=patient,
                substance="Penicillin",
                reaction="Hives",
                severity="severe",
            )
            payer = payer_create(actor=clerk, name="Prairie Health", payer_id="PRH01")
            coverage_add(
                actor=clerk,
                patient=patient,
                payer=payer,
                member_id="XQZ884412907",
                plan_name="Gold PPO",
                priority=1,
                relationship="18",
            )
    result = downtime_kit_export(
        actor=None, path=tmp_path / "kit.html", days=2, passphrase=PASSPHRASE
    )
    return result.path


def unlock(page, passphrase):
    page.get_by_label("Passphrase").fill(passphrase)
    page.get_by_role("button", name="Open").click()


def test_the_kit_opens_with_its_passphrase_and_not_without(page, kit):
    page.goto(kit.as_uri())
    expect(page.get_by_role("heading", name="Unlock")).to_be_visible()
    expect(page.get_by_text("This page needs JavaScript")).to_be_hidden()
    shot(page, "locked")

    unlock(page, "maple-otter-quartz-violins")
    expect(page.get_by_role("alert")).to_contain_text("does not open this kit")
    expect(page.locator("#kit-content")).to_be_hidden()
    expect(page.get_by_text("Holt")).to_have_count(0)
    shot(page, "wrong-passphrase")

    unlock(page, PASSPHRASE)
    schedule = page.locator(".kit-day").nth(1)
    expect(schedule.get_by_role("link", name="Holt, Mira")).to_be_visible()
    expect(schedule).to_contain_text("09:30\u201310:00")
    expect(schedule).to_contain_text("Dr. Ada Quill, MD")
    expect(page.locator(".kit-day").first).to_contain_text("Nothing booked this day.")
    # A name that looks like markup stays text.
    expect(schedule.get_by_role("link", name="<b>Ng</b>, Ned")).to_be_visible()
    expect(page.locator(".kit-summaries b")).to_have_count(0)
    expect(page.get_by_role("alert")).to_be_hidden()
    expect(page.get_by_role("list", name="Schedule").get_by_role("link")).to_have_count(3)
    shot(page, "schedule")

    page.get_by_role("link", name="Holt, Mira").click()
    summary = page.locator("article", has=page.get_by_role("heading", name="Holt, Mira"))
    expect(summary.locator(".kit-allergies")).to_contain_text("Penicillin · Hives · Severe")
    expect(summary).to_contain_text("XQZ884412907")
    expect(summary).to_contain_text("Prairie Health")
    other = page.locator("article", has=page.get_by_role("heading", name="<b>Ng</b>, Ned"))
    expect(other).to_contain_text("Allergies not recorded")
    summary.scroll_into_view_if_needed()
    if SHOTS:
        summary.screenshot(path=f"{SHOTS}/downtime-summary-1366.png")
        page.set_viewport_size({"width": 390, "height": 844})
        summary.screenshot(path=f"{SHOTS}/downtime-summary-390.png")
        page.set_viewport_size({"width": 1366, "height": 768})

    page.emulate_media(media="print")
    expect(page.get_by_role("button", name="Print")).to_be_hidden()
    shot(page, "print")
    page.emulate_media(media="screen")

    page.get_by_role("button", name="Lock").click()
    expect(page.get_by_role("heading", name="Unlock")).to_be_visible()
    expect(page.get_by_text("Holt")).to_have_count(0)
    assert page.console_errors == []


def test_an_empty_kit_says_so(page, practice, tmp_path):
    path = downtime_kit_export(
        actor=None, path=tmp_path / "empty.html", days=1, passphrase=PASSPHRASE
    ).path
    page.goto(path.as_uri())
    unlock(page, PASSPHRASE)
    expect(
        page.get_by_text("No appointments are booked in the days this kit covers.")
    ).to_be_visible()
    expect(page.get_by_role("heading", name="Patient summaries")).to_have_count(0)
    expect(page.get_by_role("list", name="Schedule")).to_have_count(0)  # no links to empty days
    shot(page, "empty")
    assert page.console_errors == []
