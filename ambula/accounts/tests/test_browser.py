import re
import time

import pytest
from django.contrib.sessions.models import Session
from django.utils.timezone import now as timezone_now
from django_otp.oath import TOTP
from playwright.sync_api import expect

from ambula.accounts.models import TOTPDevice
from ambula.accounts.sessions import LAST_ACTIVITY
from ambula.accounts.tests.factories import TEST_PASSWORD
from ambula.core.services import practice_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def totp_code(key_hex: str, *, steps_ahead: int = 0) -> str:
    totp = TOTP(bytes.fromhex(key_hex))
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


def fill_sign_in(page, username: str, password: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_with_two_step_enrolment_then_sign_out(page, live_server, physician):
    practice_create(actor=None, name="Lakeside Family Practice", mfa_required=True)
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
    fill_sign_in(page, physician.username, TEST_PASSWORD)

    expect(page.get_by_role("heading", name="Set up two-step sign-in")).to_be_visible()
    expect(page.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    device = TOTPDevice.objects.get(user=physician, confirmed=False)
    page.get_by_label("Code", exact=True).fill(totp_code(device.key))
    page.get_by_role("button", name="Turn on two-step sign-in").click()

    expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    expect(page.get_by_role("list", name="Recovery codes").get_by_role("listitem")).to_have_count(
        10
    )
    page.get_by_role("link", name="I have saved my codes").click()

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", name=f"Welcome, {physician.full_name}")).to_be_visible()
    page.get_by_label("Account menu").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{live_server.url}/accounts/login/")
    expect(page.get_by_role("status")).to_contain_text("You have signed out.")

    fill_sign_in(page, physician.username, TEST_PASSWORD)
    expect(page.get_by_role("heading", name="Two-step sign-in")).to_be_visible()
    # The enrolment code was spent; the next time step's code is within the allowed drift.
    page.get_by_label("Code", exact=True).fill(totp_code(device.key, steps_ahead=1))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(f"{live_server.url}/")
    assert page.console_errors == []  # includes any Content-Security-Policy violation


def test_wrong_password_shows_an_error_and_keeps_the_username(
    page, live_server, practice, physician
):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(physician.username)
    page.get_by_label("Password").fill("definitely-wrong-password")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("do not match")
    expect(page.get_by_label("Username")).to_have_value(physician.username)
    expect(page.get_by_label("Password")).to_have_value("")


def age_sessions(seconds: int) -> None:
    """Pretend the signed-in user has been idle for this long, on the server's side."""
    for stored in Session.objects.all():
        data = stored.get_decoded()
        if LAST_ACTIVITY in data:
            data[LAST_ACTIVITY] = timezone_now().timestamp() - seconds
            Session.objects.save(stored.session_key, data, stored.expire_date)


def test_idle_warning_offers_to_stay_then_signs_out(page, live_server, physician):
    practice = practice_create(actor=None, name="Lakeside Family Practice", mfa_required=False)
    idle_seconds = practice.idle_timeout_minutes * 60
    page.clock.install()
    page.goto(f"{live_server.url}/accounts/login/")
    fill_sign_in(page, physician.username, TEST_PASSWORD)
    expect(page).to_have_url(f"{live_server.url}/")
    dialog = page.get_by_role("dialog", name="Are you still there?")
    expect(dialog).to_be_hidden()

    # A minute before the limit the page asks the server, then warns.
    age_sessions(idle_seconds - 50)
    page.clock.fast_forward((idle_seconds - 59) * 1000)  # milliseconds
    expect(dialog).to_be_visible()
    page.get_by_role("button", name="Stay signed in").click()
    expect(dialog).to_be_hidden()

    # Idle again, past the limit this time: the page reloads into the sign-in page.
    age_sessions(idle_seconds + 5)
    page.clock.fast_forward(idle_seconds * 1000)
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    expect(page.get_by_role("status")).to_contain_text("without activity")


def test_an_admin_invites_a_user_who_sets_a_password_and_signs_in(
    page, live_server, practice, admin_user, mail_server
):
    page.goto(f"{live_server.url}/accounts/login/")
    fill_sign_in(page, admin_user.username, TEST_PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
    page.get_by_role("link", name="Invite a user").click()
    page.get_by_label("Full name").fill("Morgan Ellis")
    page.get_by_label("Username").fill("mellis")
    page.get_by_label("Email address").fill("mellis@clinic.example")
    page.get_by_label("Nurse").check()
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("status")).to_contain_text("Invitation sent to mellis@clinic.example")
    page.get_by_label("Account menu").click()
    page.get_by_role("button", name="Sign out").click()

    assert len(mail_server.messages) == 1
    body = mail_server.messages[0].get_content()
    link = re.search(r"https?://\S+/accounts/set-password/\S+/", body).group(0)
    page.goto(live_server.url + link[link.index("/accounts/") :])
    expect(page.get_by_role("heading", name="Choose your password")).to_be_visible()
    page.get_by_label("New password", exact=True).fill("copper-violet-harbor-91")
    page.get_by_label("New password, again").fill("copper-violet-harbor-91")
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("heading", name="Welcome, Morgan Ellis")).to_be_visible()

    page.goto(live_server.url + link[link.index("/accounts/") :])
    expect(page.get_by_role("heading", name="This link no longer works")).to_be_visible()


def test_the_shell_works_on_a_phone_sized_screen(page, live_server, practice, physician):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/accounts/login/")
    fill_sign_in(page, physician.username, TEST_PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the page must not scroll sideways on a phone"
