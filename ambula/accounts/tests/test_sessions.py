"""Signed-in sessions: beginning, idle and absolute timeouts, the session clock, ending them."""

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils.timezone import now as timezone_now

from ambula.accounts.models import LoginThrottle, UserSession
from ambula.accounts.services import user_deactivate
from ambula.accounts.sessions import ACTIVITY_WRITE_INTERVAL_SECONDS, LAST_ACTIVITY, SIGNED_IN_AT
from ambula.accounts.tests.clock import frozen_clock
from ambula.accounts.tests.factories import TEST_PASSWORD
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.core.services import practice_security_update

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("practice")]

LOGIN = "/accounts/login/"
LOGOUT = "/accounts/logout/"
STATUS = "/accounts/session/status/"
KEEPALIVE = "/accounts/session/keepalive/"
PASSWORD_CHANGE = "/accounts/me/password/"
COOKIE = django_settings.SESSION_COOKIE_NAME
IDLE_MINUTES = 15  # the `practice` fixture's idle limit
NEW_PASSWORD = "quietly-orbiting-pelican-harbour-93"


@pytest.fixture
def clock(monkeypatch):
    return frozen_clock(monkeypatch)


def sign_in_through_form(client, user, **extra):
    response = client.post(LOGIN, {"username": user.username, "password": TEST_PASSWORD}, **extra)
    assert response.status_code == 302
    return client


def stamps_set(client, *, signed_in_ago=None, active_ago=None, now=None):
    """Move the session's stamps back, as if it began or was last used that many seconds ago."""
    current = (now or timezone_now()).timestamp()
    session = client.session
    if signed_in_ago is not None:
        session[SIGNED_IN_AT] = current - signed_in_ago
    if active_ago is not None:
        session[LAST_ACTIVITY] = current - active_ago
    session.save()


def timed_out_events():
    return AuditEvent.objects.filter(action="auth.session_timed_out")


def redirected_to_login(response, next_path="/") -> bool:
    return response.status_code == 302 and response["Location"] == f"{LOGIN}?next={next_path}"


# Beginning


def test_signing_in_records_the_session_and_gives_a_new_session_key(client, physician):
    client.get(LOGIN)
    client.session.save()
    before = client.session.session_key

    sign_in_through_form(client, physician, HTTP_USER_AGENT="Mozilla/5.0 (Ward PC)")

    key = client.session.session_key
    assert key != before
    assert not Session.objects.filter(session_key=before).exists()
    user_session = UserSession.objects.get(user=physician)
    assert user_session.session_key == key
    assert user_session.ip_address == "127.0.0.1"
    assert user_session.user_agent == "Mozilla/5.0 (Ward PC)"
    assert user_session.ended_at is None
    session = client.session
    assert session[SIGNED_IN_AT] == session[LAST_ACTIVITY]
    event = AuditEvent.objects.get(action="auth.signed_in")
    assert event.actor == physician
    assert event.category == "authentication"
    assert event.outcome == AuditEvent.Outcome.SUCCESS
    assert changes_of(event) == {"method": "password"}
    assert event.ip_address == "127.0.0.1"


# Idle and absolute timeouts


def test_an_idle_session_is_signed_out_and_its_cookie_dies(client, physician):
    sign_in_through_form(client, physician)
    cookie = client.cookies[COOKIE].value
    user_session = UserSession.objects.get(user=physician)
    stamps_set(client, active_ago=IDLE_MINUTES * 60 + 1)

    assert redirected_to_login(client.get("/"))

    login_page = client.get(f"{LOGIN}?next=/").content.decode()
    assert f"You were signed out after {IDLE_MINUTES} minutes without activity." in login_page
    assert client.get("/").status_code == 302
    replay = Client()
    replay.cookies[COOKIE] = cookie
    assert redirected_to_login(replay.get("/"))
    assert not Session.objects.filter(session_key=cookie).exists()
    user_session.refresh_from_db()
    assert user_session.ended_at is not None
    event = timed_out_events().get()
    assert event.actor == physician
    assert event.category == "authentication"
    assert changes_of(event) == {"reason": "idle"}


def test_a_session_just_inside_the_idle_limit_stays_signed_in(client, physician, sign_in):
    sign_in(client, physician)
    stamps_set(client, active_ago=IDLE_MINUTES * 60 - 5)

    assert client.get("/").status_code == 200
    assert not timed_out_events().exists()


def test_a_session_past_the_absolute_limit_ends_however_active(client, physician, sign_in):
    sign_in(client, physician)
    absolute = django_settings.SESSION_ABSOLUTE_TIMEOUT_SECONDS
    assert absolute == 12 * 60 * 60
    stamps_set(client, signed_in_ago=absolute + 1, active_ago=0)

    assert redirected_to_login(client.get("/"))

    login_page = client.get(LOGIN).content.decode()
    assert "Your session reached its time limit. Please sign in again." in login_page
    assert changes_of(timed_out_events().get()) == {"reason": "absolute"}


def test_a_session_just_inside_the_absolute_limit_stays_signed_in(client, physician, sign_in):
    sign_in(client, physician)
    stamps_set(
        client, signed_in_ago=django_settings.SESSION_ABSOLUTE_TIMEOUT_SECONDS - 5, active_ago=0
    )

    assert client.get("/").status_code == 200


def test_a_session_without_stamps_is_treated_as_expired(client, physician):
    client.force_login(physician)

    assert redirected_to_login(client.get("/"))

    assert "_auth_user_id" not in client.session
    assert changes_of(timed_out_events().get()) == {"reason": "absolute"}


@pytest.mark.parametrize("idle_minutes", [5, 30])
def test_the_idle_limit_follows_the_practice_setting(
    client, practice, admin_user, physician, sign_in, idle_minutes
):
    practice_security_update(
        actor=admin_user, practice=practice, mfa_required=False, idle_timeout_minutes=idle_minutes
    )
    sign_in(client, physician)

    stamps_set(client, active_ago=idle_minutes * 60 - 5)
    assert client.get("/").status_code == 200

    stamps_set(client, active_ago=idle_minutes * 60 + 1)
    assert redirected_to_login(client.get("/"))
    login_page = client.get(LOGIN).content.decode()
    assert f"You were signed out after {idle_minutes} minutes without activity." in login_page


# The session clock


def test_status_reports_the_seconds_left_without_counting_as_activity(
    client, physician, sign_in, clock
):
    sign_in(client, physician)
    stamps_set(client, signed_in_ago=300, active_ago=300, now=clock())
    last_activity = client.session[LAST_ACTIVITY]

    first = client.get(STATUS)
    clock.advance(seconds=60)
    second = client.get(STATUS)

    assert first.status_code == 200
    assert first["Content-Type"] == "application/json"
    assert first.json() == {"seconds_left": IDLE_MINUTES * 60 - 300}
    assert second.json() == {"seconds_left": IDLE_MINUTES * 60 - 360}
    assert client.session[LAST_ACTIVITY] == last_activity


def test_status_reports_the_absolute_limit_when_it_comes_first(client, physician, sign_in, clock):
    sign_in(client, physician)
    absolute = django_settings.SESSION_ABSOLUTE_TIMEOUT_SECONDS
    stamps_set(client, signed_in_ago=absolute - 100, active_ago=0, now=clock())

    assert client.get(STATUS).json() == {"seconds_left": 100}


def test_keepalive_counts_as_activity(client, physician, sign_in, clock):
    sign_in(client, physician)
    stamps_set(client, signed_in_ago=300, active_ago=300, now=clock())

    response = client.post(KEEPALIVE)

    assert response.status_code == 200
    assert response.json() == {"seconds_left": IDLE_MINUTES * 60}
    assert client.session[LAST_ACTIVITY] == clock().timestamp()
    assert client.get(STATUS).json() == {"seconds_left": IDLE_MINUTES * 60}


def test_keepalive_without_a_csrf_token_is_refused(physician, sign_in, clock):
    client = sign_in(Client(enforce_csrf_checks=True), physician)
    stamps_set(client, signed_in_ago=300, active_ago=300, now=clock())
    last_activity = client.session[LAST_ACTIVITY]

    response = client.post(KEEPALIVE)

    assert response.status_code == 403
    assert client.session[LAST_ACTIVITY] == last_activity


def test_the_session_endpoints_send_anonymous_visitors_to_sign_in(client):
    assert redirected_to_login(client.get(STATUS), STATUS)
    assert redirected_to_login(client.post(KEEPALIVE), KEEPALIVE)


def test_keepalive_needs_post_and_status_needs_get(client, physician, sign_in):
    sign_in(client, physician)

    assert client.get(KEEPALIVE).status_code == 405
    assert client.post(STATUS).status_code == 405


def test_a_page_view_refreshes_activity_only_after_the_write_interval(
    client, physician, sign_in, clock
):
    sign_in(client, physician)
    stamps_set(client, active_ago=ACTIVITY_WRITE_INTERVAL_SECONDS - 1, now=clock())
    recent = client.session[LAST_ACTIVITY]

    assert client.get("/").status_code == 200
    assert client.session[LAST_ACTIVITY] == recent

    stamps_set(client, active_ago=ACTIVITY_WRITE_INTERVAL_SECONDS, now=clock())
    assert client.get("/").status_code == 200
    assert client.session[LAST_ACTIVITY] == clock().timestamp()


def test_activity_keeps_a_session_alive_past_the_idle_limit(client, physician, sign_in, clock):
    sign_in(client, physician)
    stamps_set(client, signed_in_ago=0, active_ago=0, now=clock())

    for _ in range(3):
        clock.advance(minutes=IDLE_MINUTES - 1)
        assert client.get("/").status_code == 200

    clock.advance(minutes=IDLE_MINUTES, seconds=1)
    assert redirected_to_login(client.get("/"))


# Signing out


def test_signing_out_ends_the_session_and_records_it(client, physician):
    sign_in_through_form(client, physician)
    cookie = client.cookies[COOKIE].value

    assert client.get(LOGOUT).status_code == 405
    assert client.get("/").status_code == 200

    response = client.post(LOGOUT)

    assert response.status_code == 302
    assert response["Location"] == LOGIN
    assert "You have signed out." in client.get(LOGIN).content.decode()
    assert redirected_to_login(client.get("/"))
    assert not Session.objects.filter(session_key=cookie).exists()
    assert UserSession.objects.get(user=physician).ended_at is not None
    event = AuditEvent.objects.get(action="auth.signed_out")
    assert event.actor == physician
    assert event.category == "authentication"
    assert (event.target_type, event.target_id) == ("accounts.user", str(physician.pk))


def test_signing_out_when_not_signed_in_records_nothing(client):
    response = client.post(LOGOUT)

    assert response.status_code == 302
    assert response["Location"] == LOGIN
    assert not AuditEvent.objects.filter(action="auth.signed_out").exists()


# Changing the password


def change_password(client, current, new, again=None):
    return client.post(
        PASSWORD_CHANGE,
        {
            "current_password": current,
            "new_password": new,
            "new_password_again": new if again is None else again,
        },
    )


def assert_password_unchanged(user):
    user.refresh_from_db()
    assert user.check_password(TEST_PASSWORD)
    assert not AuditEvent.objects.filter(action="auth.password_changed").exists()


def test_password_change_needs_the_current_password(client, physician):
    sign_in_through_form(client, physician)

    response = change_password(client, "not-my-password-at-all", NEW_PASSWORD)

    assert response.status_code == 200
    assert (
        '<p class="field-error" id="id_current_password-error">'
        "That is not your current password.</p>" in response.content.decode()
    )
    assert_password_unchanged(physician)


def reauthentication_failures():
    return AuditEvent.objects.filter(action="auth.reauthentication_failed").order_by("sequence")


def test_a_wrong_current_password_is_audited_and_counted_like_a_failed_sign_in(client, physician):
    sign_in_through_form(client, physician, HTTP_USER_AGENT="Mozilla/5.0 (Ward PC)")

    change_password(client, "not-my-password-at-all", NEW_PASSWORD)

    event = reauthentication_failures().get()
    assert changes_of(event) == {"reason": "password"}
    assert event.actor_username == physician.username
    assert event.outcome == AuditEvent.Outcome.FAILURE
    assert event.kind == "login_failed"
    assert event.category == "authentication"
    assert event.ip_address == "127.0.0.1"
    assert not AuditEvent.objects.filter(action="auth.sign_in_failed").exists()
    throttles = LoginThrottle.objects.filter(scope__in=["pair", "username"])
    assert sorted(throttles.values_list("scope", "failures")) == [("pair", 1), ("username", 1)]
    assert "not-my-password-at-all" not in str(changes_of(event))


def test_wrong_current_passwords_are_throttled_even_the_right_one_while_locked(
    client, physician, clock
):
    limits = django_settings.LOGIN_THROTTLE
    wait = limits["max_delay_seconds"] + 1
    sign_in_through_form(client, physician)
    for _ in range(limits["slow_down_after"]):
        response = change_password(client, "not-my-password-at-all", NEW_PASSWORD)
        assert "That is not your current password." in response.content.decode()
    # From here each try waits, as at the sign-in form.
    quick = change_password(client, "not-my-password-at-all", NEW_PASSWORD).content.decode()
    assert "Too many attempts. Please wait 1 second and try again." in quick
    for _ in range(limits["slow_down_after"], limits["lock_after"]):
        clock.advance(seconds=wait)
        response = change_password(client, "not-my-password-at-all", NEW_PASSWORD)
        assert "That is not your current password." in response.content.decode()

    clock.advance(seconds=wait)
    response = change_password(client, TEST_PASSWORD, NEW_PASSWORD)

    assert response.status_code == 200
    assert "Too many attempts. Please wait 14 minutes and try again." in response.content.decode()
    assert_password_unchanged(physician)
    reasons = [changes_of(event)["reason"] for event in reauthentication_failures()]
    assert reasons == ["password"] * 3 + ["throttled"] + ["password"] * 7 + ["throttled"]
    locked = AuditEvent.objects.get(action="auth.sign_in_locked")
    assert changes_of(locked) == {"scope": "pair"}
    # One lock for the username from this address, whichever form the guesses came through.
    assert (
        "Too many attempts"
        in Client()
        .post(LOGIN, {"username": physician.username, "password": TEST_PASSWORD})
        .content.decode()
    )
    # Still signed in: the lock stops guesses, it does not end the session.
    assert client.get("/").status_code == 200

    # Kept active meanwhile, so the idle limit does not end the session first.
    clock.advance(minutes=limits["lock_minutes"] - 1)
    assert client.get("/").status_code == 200
    clock.advance(minutes=1)
    assert change_password(client, TEST_PASSWORD, NEW_PASSWORD).status_code == 302
    physician.refresh_from_db()
    assert physician.check_password(NEW_PASSWORD)


def test_password_change_refuses_a_weak_password(client, physician):
    sign_in_through_form(client, physician)

    response = change_password(client, TEST_PASSWORD, "short")

    assert response.status_code == 200
    assert 'id="id_new_password-error">This password is too short.' in response.content.decode()
    assert_password_unchanged(physician)


def test_password_change_refuses_two_different_passwords(client, physician):
    sign_in_through_form(client, physician)

    response = change_password(client, TEST_PASSWORD, NEW_PASSWORD, again=NEW_PASSWORD + "x")

    assert response.status_code == 200
    assert 'id="id_new_password_again-error">The two passwords differ.' in response.content.decode()
    assert_password_unchanged(physician)


def test_password_change_keeps_this_session_and_ends_the_others(physician):
    here = sign_in_through_form(Client(), physician)
    elsewhere = sign_in_through_form(Client(), physician)
    elsewhere_key = elsewhere.session.session_key

    response = change_password(here, TEST_PASSWORD, NEW_PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == "/accounts/me/"
    physician.refresh_from_db()
    assert physician.check_password(NEW_PASSWORD)
    assert not physician.check_password(TEST_PASSWORD)
    assert here.get("/").status_code == 200
    assert redirected_to_login(elsewhere.get("/"))
    assert not Session.objects.filter(session_key=elsewhere_key).exists()
    assert UserSession.objects.get(session_key=elsewhere_key).ended_at is not None
    event = AuditEvent.objects.get(action="auth.password_changed")
    assert event.actor == physician
    assert event.category == "authentication"
    assert (event.target_type, event.target_id) == ("accounts.user", str(physician.pk))
    # The old password no longer signs in; the new one does.
    old = Client().post(LOGIN, {"username": physician.username, "password": TEST_PASSWORD})
    assert old.status_code == 200
    new = Client().post(LOGIN, {"username": physician.username, "password": NEW_PASSWORD})
    assert new.status_code == 302


def test_after_a_password_change_this_session_is_still_tracked(physician, admin_user):
    here = sign_in_through_form(Client(), physician)
    sign_in_through_form(Client(), physician)

    change_password(here, TEST_PASSWORD, NEW_PASSWORD)

    # The password change gave this session a new key; its record follows it.
    kept_key = here.session.session_key
    assert UserSession.objects.filter(session_key=kept_key, ended_at=None).exists()
    assert changes_of(AuditEvent.objects.get(action="auth.password_changed")) == {
        "other_sessions_ended": 1
    }
    # So ending the user's sessions later still reaches it.
    user_deactivate(actor=admin_user, user=physician)
    assert not Session.objects.filter(session_key=kept_key).exists()
    assert redirected_to_login(here.get("/"))


def test_a_password_change_with_no_other_session_says_nothing_about_others(client, physician):
    sign_in_through_form(client, physician)

    response = change_password(client, TEST_PASSWORD, NEW_PASSWORD)

    account = client.get(response["Location"]).content.decode()
    assert "Your password was changed." in account
    assert "You were signed out everywhere else." not in account
    assert changes_of(AuditEvent.objects.get(action="auth.password_changed")) == {
        "other_sessions_ended": 0
    }


# Deactivation


def test_deactivating_a_user_ends_all_their_sessions(physician, admin_user):
    first = sign_in_through_form(Client(), physician)
    second = sign_in_through_form(Client(), physician)
    keys = [first.session.session_key, second.session.session_key]

    user_deactivate(actor=admin_user, user=physician)

    for client in (first, second):
        assert redirected_to_login(client.get("/"))
    assert not Session.objects.filter(session_key__in=keys).exists()
    assert UserSession.objects.filter(user=physician, ended_at=None).count() == 0
    assert UserSession.objects.filter(user=physician).count() == 2
    event = AuditEvent.objects.get(action="accounts.user_deactivated")
    assert event.actor == admin_user
    assert changes_of(event) == {"sessions_ended": 2}
