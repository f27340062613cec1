"""The record's journeys in a real browser: duplicates, quick search, merge, emergency access."""

from datetime import date

import pytest
from playwright.sync_api import expect

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import TEST_PASSWORD, UserFactory
from ambula.audit.models import AuditEvent
from ambula.patients.models import EmergencyAccess, Patient
from ambula.patients.tests.factories import registered_patient

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page, live_server, user):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


def test_registration_warns_about_a_likely_duplicate(page, live_server, practice):
    clerk = UserFactory(username="desk1", roles=[Role.FRONT_DESK])
    existing = registered_patient(
        actor=clerk, given_name="Amara", family_name="Okafor", date_of_birth=date(1990, 6, 1)
    )
    sign_in(page, live_server, clerk)
    page.goto(f"{live_server.url}/patients/new/")
    page.get_by_label("First name").fill("Amara")
    page.get_by_label("Last name").fill("Okafor")
    page.get_by_label("Date of birth").fill("1990-06-01")
    page.get_by_label("Sex").select_option("F")
    page.get_by_role("button", name="Register").click()

    warning = page.get_by_role("alert")
    expect(warning).to_contain_text("may already be registered")
    expect(warning.get_by_role("link", name="Okafor, Amara")).to_have_attribute(
        "href", f"/patients/{existing.pk}/"
    )
    assert Patient.objects.count() == 1
    # A second press registers the new person anyway, as the warning says.
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Okafor, Amara")
    assert Patient.objects.count() == 2
    assert page.console_errors == []


def test_the_top_bar_shows_patients_as_you_type(page, live_server, practice):
    clerk = UserFactory(username="desk1", roles=[Role.FRONT_DESK])
    patient = registered_patient(actor=clerk, given_name="Ingrid", family_name="Lindqvist")
    sign_in(page, live_server, clerk)
    page.get_by_label("Find a patient").press_sequentially("lindq", delay=40)
    result = page.locator("#quick-search-results").get_by_role("link", name="Lindqvist, Ingrid")
    expect(result).to_be_visible()
    # Keyboard only: down to the result, Enter opens the chart.
    page.get_by_label("Find a patient").press("ArrowDown")
    expect(result).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live_server.url}/patients/{patient.pk}/")
    page.get_by_label("Find a patient").press_sequentially("zzzz", delay=20)
    expect(page.locator("#quick-search-results")).to_contain_text("No patient matches")
    page.get_by_label("Find a patient").press("Escape")
    expect(page.locator("#quick-search-results")).to_be_empty()
    assert page.console_errors == []


def test_an_admin_merges_a_duplicate(page, live_server, practice):
    clerk = UserFactory(username="desk1", roles=[Role.FRONT_DESK])
    admin = UserFactory(username="admin1", roles=[Role.ADMIN])
    born = date(1975, 2, 14)
    survivor = registered_patient(
        actor=clerk, given_name="Felix", family_name="Brennan", date_of_birth=born
    )
    duplicate = registered_patient(
        actor=clerk,
        given_name="Felix",
        family_name="Brennan",
        date_of_birth=born,
        email="felix.b@example.test",
    )
    sign_in(page, live_server, admin)
    page.goto(f"{live_server.url}/patients/{duplicate.pk}/merge/")
    page.get_by_label("MRN of the record to keep").fill(survivor.mrn)
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_role("table")).to_contain_text(duplicate.mrn)
    page.get_by_role("button", name=f"Merge {duplicate.mrn} into {survivor.mrn}").click()

    expect(page).to_have_url(f"{live_server.url}/patients/{survivor.pk}/")
    expect(page.get_by_role("status")).to_contain_text(f"Merged MRN {duplicate.mrn}")
    # The old record's address leads to the survivor.
    page.goto(f"{live_server.url}/patients/{duplicate.pk}/")
    expect(page).to_have_url(f"{live_server.url}/patients/{survivor.pk}/")
    duplicate.refresh_from_db()
    assert duplicate.merged_into_id == survivor.pk
    assert AuditEvent.objects.filter(action="patients.merged").count() == 2
    assert page.console_errors == []


def test_break_glass_then_the_privacy_officer_reviews_it(page, live_server, practice):
    clerk = UserFactory(username="desk1", roles=[Role.FRONT_DESK])
    nurse = UserFactory(username="nurse1", roles=[Role.NURSE])
    officer = UserFactory(username="privacy1", roles=[Role.PRIVACY_OFFICER])
    patient = registered_patient(actor=clerk, given_name="Yara", family_name="Costa")
    Patient.objects.filter(pk=patient.pk).update(restricted=True)

    sign_in(page, live_server, nurse)
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Restricted record")
    page.get_by_role("button", name="Open in an emergency").click()
    expect(page.locator(".field-error")).to_be_visible()  # no reason, no access
    assert not EmergencyAccess.objects.exists()
    page.get_by_label("Why do you need this record now?").fill(
        "Covering the walk-in clinic; patient reports severe allergic reaction"
    )
    page.get_by_role("button", name="Open in an emergency").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Costa, Yara")
    expect(page.get_by_role("status")).to_contain_text("Emergency access for 60 minutes")
    page.context.clear_cookies()  # the nurse leaves; the privacy officer signs in

    sign_in(page, live_server, officer)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Emergency access").click()
    row = page.get_by_role("row").filter(has_text="Costa, Yara")
    expect(row).to_contain_text("severe allergic reaction")
    row.get_by_role("link", name="Review").click()
    expect(page.get_by_role("table")).to_contain_text("patients.chart_viewed")
    page.get_by_label("Appropriate", exact=True).check()
    page.get_by_role("button", name="Save review").click()
    expect(page.get_by_role("status")).to_contain_text("Review saved")
    expect(page.get_by_text("Nothing to review")).to_be_visible()
    assert EmergencyAccess.objects.get().review_outcome == "appropriate"
    assert page.console_errors == []
