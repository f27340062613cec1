import re

import pytest
from playwright.sync_api import expect

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import TEST_PASSWORD, UserFactory
from ambula.patients.models import Patient

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_register_then_find_the_patient_as_you_type(page, live_server, practice):
    clerk = UserFactory(username="desk1", roles=[Role.FRONT_DESK])
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(clerk.username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Patients").click()
    page.get_by_role("link", name="Register a patient").click()
    page.get_by_label("First name").fill("José")
    page.get_by_label("Last name").fill("Rivera")
    page.get_by_label("Date of birth").fill("1984-03-07")
    page.get_by_label("Sex").select_option("M")
    page.get_by_label("Mobile phone").fill("217 555 0140")
    page.get_by_role("button", name="Register").click()

    patient = Patient.objects.get()
    expect(page).to_have_url(f"{live_server.url}/patients/{patient.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Rivera, José")
    expect(page.get_by_role("status")).to_contain_text(f"MRN {patient.mrn}")
    expect(page.locator(".banner-facts")).to_contain_text(patient.mrn)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Patients").click()
    page.get_by_label("Search patients").press_sequentially("rivera, jo", delay=30)
    row = page.locator("#patient-results").get_by_role("link", name="Rivera, José")
    expect(row).to_be_visible()
    # htmx swapped the results in and pushed the query into the address bar: no Enter.
    expect(page).to_have_url(re.compile(r"/patients/\?q=rivera%2C(\+|%20)jo$"))

    page.get_by_label("Find a patient").fill("jose")
    page.get_by_label("Find a patient").press("Enter")
    expect(page).to_have_url(f"{live_server.url}/patients/?q=jose")
    page.locator("#patient-results").get_by_role("link", name="Rivera, José").click()
    expect(page).to_have_url(f"{live_server.url}/patients/{patient.pk}/")
    assert page.console_errors == []
