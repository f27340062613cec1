"""Two-step sign-in through the pages: enrolment, the second step, recovery codes, the account."""

import re
from datetime import datetime, timedelta
from urllib.parse import urlencode

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django_otp.oath import TOTP

from ambula.accounts import mfa, sessions
from ambula.accounts.mfa import (
    recovery_codes_remaining,
    totp_enrolment_confirm,
    totp_enrolment_start,
    totp_secret_for_display,
)
from ambula.accounts.models import RecoveryCode, TOTPDevice
from ambula.accounts.tests.clock import frozen_clock
from ambula.accounts.tests.factories import TEST_PASSWORD, UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.core.services import practice_create

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
LOGOUT = "/accounts/logout/"
VERIFY = "/accounts/login/verify/"
ENROL = "/accounts/mfa/setup/"
ACCOUNT = "/accounts/me/"
RECOVERY_CODES = "/accounts/me/recovery-codes/"
STEP = timedelta(seconds=30)
RECOVERY_CODE = re.compile(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>")
INVALID_ENROLMENT_CODE = "That code is not valid or has expired."
CODE_DID_NOT_WORK = "That code did not work. Enter the newest code, or a recovery code."
TOO_MANY = "Too many attempts. Please wait"


@pytest.fixture
def clock(monkeypatch):
    return frozen_clock(monkeypatch)


@pytest.fixture
def mfa_practice(db):
    return practice_create(actor=None, name="Hillside Clinic", mfa_required=True)


@pytest.fixture
def user(db):
    return UserFactory(username="mgarcia")


def code_at(device: TOTPDevice, moment: datetime) -> str:
    """The code an authenticator app holding the device's key shows at that moment."""
    totp = TOTP(bytes.fromhex(device.key), step=30, t0=0, digits=6, drift=0)
    totp.time = moment.timestamp()
    return f"{totp.token():06d}"


def wrong_code(device: TOTPDevice, moment: datetime) -> str:
    """A well-formed code that no step within the tolerance window accepts."""
    near = {code_at(device, moment + steps * STEP) for steps in (-1, 0, 1)}
    return next(code for code in (f"{n:06d}" for n in range(1_000_000)) if code not in near)


def password_step(client, user, next_url=None):
    data = {"username": user.username, "password": TEST_PASSWORD}
    if next_url:
        data["next"] = next_url
    return client.post(LOGIN, data)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def home_redirects_to_login(client) -> bool:
    response = client.get("/")
    return response.status_code == 302 and response["Location"] == f"{LOGIN}?next=/"


def enrol_through_pages(client, user, clock) -> tuple[TOTPDevice, str, list[str]]:
    """Pass the password step, then set up the authenticator; return the device and codes."""
    assert password_step(client, user)["Location"] == ENROL
    assert client.get(ENROL).status_code == 200
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    code = code_at(device, clock())
    response = client.post(ENROL, {"code": code})
    assert response.status_code == 200
    return device, code, RECOVERY_CODE.findall(response.content.decode())


def enrol_directly(user, clock) -> tuple[TOTPDevice, list[str]]:
    device = totp_enrolment_start(user=user)
    codes = totp_enrolment_confirm(user=user, device=device, token=code_at(device, clock()))
    clock.advance(STEP)  # past the step that confirmed enrolment, which may not sign in
    return device, codes


def signed_in_events(method=None) -> list[AuditEvent]:
    """Sign-in events, of one method if given (the details are encrypted: read each one)."""
    events = AuditEvent.objects.filter(action="auth.signed_in").order_by("sequence")
    return [event for event in events if method is None or changes_of(event)["method"] == method]


def mfa_failed_events():
    return AuditEvent.objects.filter(action="auth.mfa_failed").order_by("sequence")


# Enrolment at first sign-in


@pytest.mark.usefixtures("mfa_practice")
def test_the_password_alone_leads_to_enrolment_not_in(client, user, clock):
    response = password_step(client, user)

    assert response.status_code == 302
    assert response["Location"] == ENROL
    assert not signed_in(client)
    assert home_redirects_to_login(client)
    assert client.get(ACCOUNT).status_code == 302
    assert signed_in_events() == []


@pytest.mark.usefixtures("mfa_practice")
def test_the_setup_page_shows_a_qr_code_and_the_key(client, user, clock):
    password_step(client, user)

    response = client.get(ENROL)

    assert response.status_code == 200
    html = response.content.decode()
    device = TOTPDevice.objects.get(user=user)
    assert not device.confirmed
    assert "<svg" in html
    assert 'role="img"' in html
    assert f"<code>{totp_secret_for_display(device=device)}</code>" in html
    # Reloading the page keeps the same device, so a scanned code stays valid.
    client.get(ENROL)
    assert list(TOTPDevice.objects.filter(user=user)) == [device]


@pytest.mark.usefixtures("mfa_practice")
def test_a_wrong_setup_code_is_refused_and_signs_nobody_in(client, user, clock):
    password_step(client, user)
    client.get(ENROL)
    device = TOTPDevice.objects.get(user=user)

    response = client.post(ENROL, {"code": wrong_code(device, clock())})

    assert response.status_code == 200
    assert INVALID_ENROLMENT_CODE in response.content.decode()
    assert not signed_in(client)
    assert home_redirects_to_login(client)
    device.refresh_from_db()
    assert not device.confirmed
    assert not RecoveryCode.objects.exists()
    assert not AuditEvent.objects.filter(action="auth.mfa_enrolled").exists()


@pytest.mark.usefixtures("mfa_practice")
def test_a_right_setup_code_shows_recovery_codes_and_signs_in(client, user, clock):
    device, _code, codes = enrol_through_pages(client, user, clock)

    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert recovery_codes_remaining(user=user) == 10
    device.refresh_from_db()
    assert device.confirmed
    assert signed_in(client)
    assert client.get("/").status_code == 200
    enrolled = AuditEvent.objects.get(action="auth.mfa_enrolled")
    assert enrolled.actor == user
    assert (enrolled.target_type, enrolled.target_id) == ("accounts.totpdevice", str(device.pk))
    [event] = signed_in_events()
    assert event.actor == user
    assert changes_of(event) == {"method": "password+totp"}


@pytest.mark.usefixtures("mfa_practice")
def test_enrolment_sends_the_user_on_to_the_page_they_asked_for(client, user, clock):
    assert password_step(client, user, next_url="/accounts/me/")["Location"] == ENROL
    client.get(ENROL)
    device = TOTPDevice.objects.get(user=user)

    response = client.post(ENROL, {"code": code_at(device, clock())})

    assert 'href="/accounts/me/"' in response.content.decode()


def test_enrolment_without_the_password_step_goes_to_sign_in(client, mfa_practice):
    response = client.get(ENROL)

    assert response.status_code == 302
    assert response["Location"] == LOGIN
    assert not TOTPDevice.objects.exists()


# The second step


@pytest.fixture
def enrolled_through_pages(mfa_practice, user, clock):
    """A user who enrolled at their first sign-in, then signed out."""
    client = Client()
    device, code, codes = enrol_through_pages(client, user, clock)
    client.post(LOGOUT)
    return device, code, codes


def test_the_next_sign_in_asks_for_a_code(client, user, clock, enrolled_through_pages):
    response = password_step(client, user)

    assert response.status_code == 302
    assert response["Location"] == VERIFY
    assert not signed_in(client)
    assert client.get(VERIFY).status_code == 200


def test_a_pending_user_cannot_reach_the_app(client, user, clock, enrolled_through_pages):
    password_step(client, user)

    assert home_redirects_to_login(client)
    assert client.get(ACCOUNT)["Location"] == f"{LOGIN}?next={ACCOUNT}"


def test_the_enrolment_code_cannot_be_replayed_but_the_next_one_works(
    client, user, clock, enrolled_through_pages
):
    device, enrolment_code, _codes = enrolled_through_pages
    password_step(client, user)

    replay = client.post(VERIFY, {"code": enrolment_code})

    assert replay.status_code == 200
    assert CODE_DID_NOT_WORK in replay.content.decode()
    assert not signed_in(client)
    failed = mfa_failed_events().get()
    assert changes_of(failed) == {"reason": "second_factor"}
    assert failed.actor_username == user.username
    assert failed.actor is None
    assert failed.outcome == AuditEvent.Outcome.FAILURE
    assert failed.kind == "mfa_failed"
    assert not AuditEvent.objects.filter(action="auth.sign_in_failed").exists()

    clock.advance(STEP)
    response = client.post(VERIFY, {"code": code_at(device, clock())})

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200
    assert len(signed_in_events("password+totp")) == 2


def test_the_second_step_keeps_the_page_asked_for(client, user, clock, enrolled_through_pages):
    device, _code, _codes = enrolled_through_pages
    clock.advance(STEP)

    assert password_step(client, user, next_url="/accounts/me/")["Location"] == VERIFY
    response = client.post(VERIFY, {"code": code_at(device, clock())})

    assert response["Location"] == "/accounts/me/"


def test_a_recovery_code_signs_in_once(user, clock, enrolled_through_pages):
    _device, _code, codes = enrolled_through_pages
    first = Client()
    password_step(first, user)

    response = first.post(VERIFY, {"code": codes[0].upper()})

    assert response["Location"] == "/"
    assert first.get("/").status_code == 200
    assert len(signed_in_events("password+recovery_code")) == 1
    assert recovery_codes_remaining(user=user) == 9

    second = Client()
    password_step(second, user)
    again = second.post(VERIFY, {"code": codes[0]})

    assert again.status_code == 200
    assert CODE_DID_NOT_WORK in again.content.decode()
    assert not signed_in(second)
    assert recovery_codes_remaining(user=user) == 9
    assert second.post(VERIFY, {"code": codes[1]})["Location"] == "/"


def test_wrong_codes_count_toward_the_sign_in_throttle(client, user, clock, enrolled_through_pages):
    device, _code, _codes = enrolled_through_pages
    limits = django_settings.LOGIN_THROTTLE
    password_step(client, user)
    for _ in range(limits["lock_after"]):
        clock.advance(timedelta(seconds=limits["max_delay_seconds"] + 1))
        response = client.post(VERIFY, {"code": wrong_code(device, clock())})
        assert CODE_DID_NOT_WORK in response.content.decode()
    step_before = TOTPDevice.objects.get(pk=device.pk).last_used_step

    clock.advance(timedelta(seconds=limits["max_delay_seconds"] + 1))
    response = client.post(VERIFY, {"code": code_at(device, clock())})

    assert response.status_code == 200
    assert TOO_MANY in response.content.decode()
    assert not signed_in(client)
    # Refused before it was checked: the code was not spent.
    assert TOTPDevice.objects.get(pk=device.pk).last_used_step == step_before
    reasons = [changes_of(event)["reason"] for event in mfa_failed_events()]
    # Each wrong code counted, then the refused attempt recorded but not counted.
    assert reasons == ["second_factor"] * limits["lock_after"] + ["throttled"]
    assert {event.actor_username for event in mfa_failed_events()} == {user.username}
    locked = AuditEvent.objects.get(action="auth.sign_in_locked")
    assert changes_of(locked) == {"scope": "pair"}


def test_the_pending_sign_in_expires_after_ten_minutes(client, user, clock, enrolled_through_pages):
    password_step(client, user)

    clock.advance(timedelta(minutes=10))
    assert client.get(VERIFY).status_code == 200

    clock.advance(timedelta(seconds=1))
    response = client.get(VERIFY)

    assert response.status_code == 302
    assert response["Location"] == LOGIN
    # Gone for good: going back in time does not bring it back.
    clock.advance(timedelta(minutes=-5))
    assert client.get(VERIFY)["Location"] == LOGIN


def test_a_code_after_the_pending_sign_in_expired_signs_nobody_in(
    client, user, clock, enrolled_through_pages
):
    device, _code, _codes = enrolled_through_pages
    password_step(client, user)
    clock.advance(timedelta(minutes=10, seconds=30))

    response = client.post(VERIFY, {"code": code_at(device, clock())})

    assert response["Location"] == LOGIN
    assert not signed_in(client)
    assert len(signed_in_events()) == 1  # the enrolment sign-in only


def test_the_second_step_without_the_password_step_goes_to_sign_in(client, mfa_practice):
    response = client.get(VERIFY)

    assert response.status_code == 302
    assert response["Location"] == LOGIN
    assert client.post(VERIFY, {"code": "123456"})["Location"] == LOGIN
    assert not AuditEvent.objects.filter(action="auth.sign_in_failed").exists()
    assert not mfa_failed_events().exists()


def test_the_enrolment_step_cannot_skip_to_the_second_step(client, user, mfa_practice, clock):
    password_step(client, user)  # pending enrolment, not verification

    assert client.get(VERIFY)["Location"] == LOGIN


# MFA not required by the practice


@pytest.mark.usefixtures("practice")
def test_without_mfa_required_an_unenrolled_user_signs_straight_in(client, user):
    response = password_step(client, user)

    assert response["Location"] == "/"
    assert signed_in(client)
    assert len(signed_in_events("password")) == 1


@pytest.mark.usefixtures("practice")
def test_without_mfa_required_an_enrolled_user_still_gets_the_second_step(client, user, clock):
    device, _codes = enrol_directly(user, clock)

    response = password_step(client, user)

    assert response["Location"] == VERIFY
    assert not signed_in(client)
    assert client.post(VERIFY, {"code": code_at(device, clock())})["Location"] == "/"
    assert len(signed_in_events("password+totp")) == 1


# The account page and recovery codes


@pytest.mark.usefixtures("practice")
def test_the_account_page_shows_two_step_on_with_codes_left(client, user, clock, sign_in):
    enrol_directly(user, clock)
    sign_in(client, user)

    html = client.get(ACCOUNT).content.decode()

    assert '<span class="status status-done">On</span>' in html
    assert "10 recovery codes left." in html
    assert f'action="{RECOVERY_CODES}"' in html


@pytest.mark.usefixtures("practice")
def test_the_account_page_shows_two_step_off_when_not_enrolled(client, user, sign_in):
    sign_in(client, user)

    html = client.get(ACCOUNT).content.decode()

    assert '<span class="status status-overdue">Off</span>' in html
    assert "recovery codes left" not in html
    assert f'href="{ENROL}"' in html


def test_the_account_page_needs_sign_in(client, mfa_practice):
    assert client.get(ACCOUNT)["Location"] == f"{LOGIN}?next={ACCOUNT}"


@pytest.mark.usefixtures("practice")
def test_new_recovery_codes_replace_the_old_ones(user, clock, sign_in):
    _device, old_codes = enrol_directly(user, clock)
    client = sign_in(Client(), user)

    response = client.post(RECOVERY_CODES)

    assert response.status_code == 200
    new_codes = RECOVERY_CODE.findall(response.content.decode())
    assert len(set(new_codes)) == 10
    assert not set(new_codes) & set(old_codes)
    event = AuditEvent.objects.get(action="auth.mfa_recovery_codes_regenerated")
    assert event.actor == user

    stranger = Client()
    password_step(stranger, user)
    refused = stranger.post(VERIFY, {"code": old_codes[0]})
    assert CODE_DID_NOT_WORK in refused.content.decode()
    assert not signed_in(stranger)
    assert stranger.post(VERIFY, {"code": new_codes[0]})["Location"] == "/"


@pytest.mark.usefixtures("practice")
def test_new_recovery_codes_need_an_enrolled_authenticator(client, user, sign_in):
    sign_in(client, user)

    response = client.post(RECOVERY_CODES)

    assert response.status_code == 302
    assert response["Location"] == ACCOUNT
    assert not RecoveryCode.objects.exists()
    assert not AuditEvent.objects.filter(action="auth.mfa_recovery_codes_regenerated").exists()


def test_new_recovery_codes_need_sign_in_and_post(client, user, mfa_practice, sign_in):
    assert client.post(RECOVERY_CODES)["Location"] == f"{LOGIN}?next={RECOVERY_CODES}"
    sign_in(client, user)
    assert client.get(RECOVERY_CODES).status_code == 405


# Pages that are never stored


def never_cached(response) -> bool:
    directives = {part.strip() for part in response["Cache-Control"].split(",")}
    return {"no-store", "no-cache"} <= directives


@pytest.mark.usefixtures("mfa_practice")
def test_the_setup_page_during_sign_in_is_never_cached(client, user, clock):
    password_step(client, user)

    response = client.get(ENROL)

    assert response.status_code == 200
    assert never_cached(response)


def test_the_second_step_page_is_never_cached(client, user, clock, enrolled_through_pages):
    password_step(client, user)

    response = client.get(VERIFY)

    assert response.status_code == 200
    assert never_cached(response)
    wrong = client.post(VERIFY, {"code": wrong_code(enrolled_through_pages[0], clock())})
    assert CODE_DID_NOT_WORK in wrong.content.decode()
    assert never_cached(wrong)


# The password step does not wipe out the second step's failures


def test_wrong_codes_still_count_after_the_password_step_is_passed_again(
    client, user, clock, enrolled_through_pages
):
    """Whoever knows the password must not earn fresh code guesses by entering it again."""
    device, _code, _codes = enrolled_through_pages
    limits = django_settings.LOGIN_THROTTLE
    wait = timedelta(seconds=limits["max_delay_seconds"] + 1)
    password_step(client, user)
    for _ in range(limits["lock_after"] - 1):
        clock.advance(wait)
        assert CODE_DID_NOT_WORK in client.post(VERIFY, {"code": "000000"}).content.decode()
    clock.advance(wait)
    assert password_step(client, user)["Location"] == VERIFY
    clock.advance(wait)
    client.post(VERIFY, {"code": wrong_code(device, clock())})

    clock.advance(wait)
    response = client.post(VERIFY, {"code": code_at(device, clock())})

    assert TOO_MANY in response.content.decode()
    assert not signed_in(client)


# A recent sign-in, or the password again, before changing how the account is protected

CONFIRM = "/accounts/me/confirm/"
RECENT_MINUTES = sessions.RECENT_AUTHENTICATION_MINUTES
WRONG_PASSWORD = "not-my-password-at-all"


def signed_in_ago(client, clock, seconds: int) -> None:
    """Move the session's sign-in back, as if the user signed in `seconds` ago."""
    session = client.session
    session[sessions.SIGNED_IN_AT] = clock().timestamp() - seconds
    session.save()


def confirm_url(next_path: str) -> str:
    return f"{CONFIRM}?{urlencode({'next': next_path})}"


def reauthentication_failures():
    return AuditEvent.objects.filter(action="auth.reauthentication_failed").order_by("sequence")


@pytest.fixture
def stale_enrolled(user, clock, sign_in):
    """A client signed in as an enrolled user, more than ten minutes ago; and the user's codes."""
    _device, codes = enrol_directly(user, clock)
    client = sign_in(Client(), user)
    signed_in_ago(client, clock, RECENT_MINUTES * 60 + 1)
    return client, codes


@pytest.mark.usefixtures("practice")
@pytest.mark.parametrize(("seconds", "allowed"), [(RECENT_MINUTES * 60 - 5, True), (601, False)])
def test_new_recovery_codes_need_a_sign_in_within_ten_minutes(
    user, clock, sign_in, seconds, allowed
):
    enrol_directly(user, clock)
    client = sign_in(Client(), user)
    signed_in_ago(client, clock, seconds)

    response = client.post(RECOVERY_CODES)

    if allowed:
        assert response.status_code == 200
        assert len(RECOVERY_CODE.findall(response.content.decode())) == 10
    else:
        assert response.status_code == 302
        assert response["Location"] == confirm_url(ACCOUNT)
        assert not AuditEvent.objects.filter(action="auth.mfa_recovery_codes_regenerated").exists()
        assert recovery_codes_remaining(user=user) == 10


@pytest.mark.usefixtures("practice")
def test_setting_up_two_step_from_the_account_needs_a_recent_sign_in(client, user, clock, sign_in):
    sign_in(client, user)
    signed_in_ago(client, clock, RECENT_MINUTES * 60 + 1)

    response = client.get(ENROL)

    assert response.status_code == 302
    assert response["Location"] == confirm_url(ENROL)
    assert not TOTPDevice.objects.exists()
    # A code posted straight to the page is not heard either.
    posted = client.post(ENROL, {"code": "123456"})
    assert posted["Location"] == confirm_url(ACCOUNT)
    assert not TOTPDevice.objects.exists()
    assert not AuditEvent.objects.filter(action="auth.mfa_enrolled").exists()


@pytest.mark.usefixtures("practice")
def test_the_confirmation_page_asks_for_the_password(stale_enrolled):
    client, _codes = stale_enrolled

    response = client.get(confirm_url(ACCOUNT))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Confirm it is you" in html
    assert 'autocomplete="current-password"' in html
    assert f'name="next" value="{ACCOUNT}"' in html


@pytest.mark.usefixtures("practice")
def test_a_wrong_password_at_confirmation_is_refused_and_audited(user, clock, stale_enrolled):
    client, _codes = stale_enrolled

    response = client.post(CONFIRM, {"password": WRONG_PASSWORD, "next": ACCOUNT})

    assert response.status_code == 200
    assert (
        '<p class="field-error" id="id_password-error">That is not your current password.</p>'
        in response.content.decode()
    )
    event = reauthentication_failures().get()
    assert changes_of(event) == {"reason": "password"}
    assert event.actor_username == user.username
    assert event.outcome == AuditEvent.Outcome.FAILURE
    assert event.ip_address == "127.0.0.1"
    # Still not confirmed: the change is still refused.
    assert client.post(RECOVERY_CODES)["Location"] == confirm_url(ACCOUNT)
    assert recovery_codes_remaining(user=user) == 10


@pytest.mark.usefixtures("practice")
def test_the_right_password_goes_back_and_new_recovery_codes_work(user, clock, stale_enrolled):
    client, old_codes = stale_enrolled

    response = client.post(CONFIRM, {"password": TEST_PASSWORD, "next": ACCOUNT})

    assert response.status_code == 302
    assert response["Location"] == ACCOUNT
    regenerated = client.post(RECOVERY_CODES)
    assert regenerated.status_code == 200
    new_codes = RECOVERY_CODE.findall(regenerated.content.decode())
    assert len(set(new_codes)) == 10
    assert not set(new_codes) & set(old_codes)
    assert AuditEvent.objects.get(action="auth.mfa_recovery_codes_regenerated").actor == user
    assert not reauthentication_failures().exists()

    # The confirmation lasts ten minutes too.
    clock.advance(timedelta(minutes=RECENT_MINUTES, seconds=1))
    assert client.get("/").status_code == 200  # keeps the session from idling out
    assert client.post(RECOVERY_CODES)["Location"] == confirm_url(ACCOUNT)


@pytest.mark.usefixtures("practice")
def test_after_confirmation_two_step_can_be_set_up_from_the_account(client, user, clock, sign_in):
    sign_in(client, user)
    signed_in_ago(client, clock, RECENT_MINUTES * 60 + 1)
    assert client.get(ENROL)["Location"] == confirm_url(ENROL)

    response = client.post(CONFIRM, {"password": TEST_PASSWORD, "next": ENROL})

    assert response["Location"] == ENROL
    setup = client.get(ENROL)
    assert setup.status_code == 200
    # Signed in, every page is sent as no-store (SecurityHeadersMiddleware).
    assert "no-store" in setup["Cache-Control"]
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    enrolled = client.post(ENROL, {"code": code_at(device, clock())})
    assert enrolled.status_code == 200
    assert len(RECOVERY_CODE.findall(enrolled.content.decode())) == 10
    assert f'href="{ACCOUNT}"' in enrolled.content.decode()
    assert mfa.mfa_is_enrolled(user=user)


@pytest.mark.usefixtures("practice")
def test_confirmation_never_sends_the_user_to_another_site(stale_enrolled):
    client, _codes = stale_enrolled

    response = client.post(CONFIRM, {"password": TEST_PASSWORD, "next": "https://evil.test/"})

    assert response.status_code == 302
    assert response["Location"] == "/"


@pytest.mark.usefixtures("practice")
def test_confirmation_is_throttled_like_a_sign_in(user, clock, stale_enrolled):
    client, _codes = stale_enrolled
    limits = django_settings.LOGIN_THROTTLE
    wait = timedelta(seconds=limits["max_delay_seconds"] + 1)
    for _ in range(limits["lock_after"]):
        clock.advance(wait)
        client.get("/")  # keeps the session from idling out
        response = client.post(CONFIRM, {"password": WRONG_PASSWORD, "next": ACCOUNT})
        assert "That is not your current password." in response.content.decode()

    clock.advance(wait)
    response = client.post(CONFIRM, {"password": TEST_PASSWORD, "next": ACCOUNT})

    assert response.status_code == 200
    assert "Too many attempts. Please wait 14 minutes and try again." in response.content.decode()
    assert client.post(RECOVERY_CODES)["Location"] == confirm_url(ACCOUNT)
    reasons = [changes_of(event)["reason"] for event in reauthentication_failures()]
    assert reasons == ["password"] * limits["lock_after"] + ["throttled"]
