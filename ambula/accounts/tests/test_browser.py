import re

import pytest
from playwright.sync_api import expect

from ambula.accounts.tests.factories import TEST_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_in_and_sign_out_in_a_real_browser(page, live_server, physician):
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    page.get_by_label("Username").fill(physician.username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", name=f"Welcome, {physician.full_name}")).to_be_visible()
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Home")
    ).to_have_attribute("aria-current", "page")

    page.get_by_label("Account menu").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{live_server.url}/accounts/login/")

    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    assert page.console_errors == []  # includes any Content-Security-Policy violation


def test_wrong_password_shows_an_error_and_keeps_the_username(page, live_server, physician):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(physician.username)
    page.get_by_label("Password").fill("definitely-wrong-password")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("do not match")
    expect(page.get_by_label("Username")).to_have_value(physician.username)
    expect(page.get_by_label("Password")).to_have_value("")


def test_the_shell_works_on_a_phone_sized_screen(page, live_server, physician):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(physician.username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the page must not scroll sideways on a phone"
