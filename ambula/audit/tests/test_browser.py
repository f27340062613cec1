import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import TEST_PASSWORD, UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_privacy_officer_filters_sorts_opens_and_exports_the_trail(page, live_server, practice):
    officer = UserFactory(username="privacy1", full_name="Robin Park", roles=[Role.PRIVACY_OFFICER])
    for _ in range(3):
        record(
            actor=None,
            username="intruder",
            action="auth.sign_in_failed",
            category="authentication",
            outcome=AuditEvent.Outcome.FAILURE,
            changes={"reason": "password"},
        )
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(officer.username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit trail").click()
    expect(page.get_by_role("heading", name="Audit trail", level=1)).to_be_visible()

    page.get_by_label("User").fill("intruder")
    page.get_by_label("Outcome").select_option("failure")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("auth.sign_in_failed")

    page.get_by_role("link", name="When").click()
    expect(page.get_by_role("columnheader", name=re.compile("When"))).to_have_attribute(
        "aria-sort", "ascending"
    )
    expect(rows).to_have_count(3)  # the filters survive sorting

    rows.first.get_by_role("link").click()
    expect(page.get_by_role("heading", name=re.compile(r"Event \d+"))).to_be_visible()
    expect(page.locator("main")).to_contain_text("reason")
    page.go_back()

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    content = Path(download.value.path()).read_text()
    assert content.count("auth.sign_in_failed") == 3
    assert AuditEvent.objects.filter(action="audit.exported", actor=officer).exists()
    assert page.console_errors == []
