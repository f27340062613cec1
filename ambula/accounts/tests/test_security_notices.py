"""Users are told by email when something about their sign-in changes (ASVS 2.2.3)."""

import logging

import pytest
from django.conf import settings
from django_otp.oath import TOTP

from ambula.accounts import mfa
from ambula.accounts.roles import Role
from ambula.accounts.services import password_change, user_roles_change
from ambula.accounts.tests.factories import TEST_PASSWORD, UserFactory
from ambula.accounts.throttling import sign_in_failure_record

pytestmark = pytest.mark.django_db(transaction=True)


def enrol(user) -> list[str]:
    device = mfa.totp_enrolment_start(user=user)
    code = f"{TOTP(bytes.fromhex(device.key)).token():06d}"
    return mfa.totp_enrolment_confirm(user=user, device=device, token=code)


def notice_bodies(mail_server, user) -> list[str]:
    return [
        message.get_content()
        for message in mail_server.messages
        if message["To"] == user.email and "Security notice" in message["Subject"]
    ]


def test_enrolling_and_replacing_codes_and_using_one_each_send_a_notice(mail_server, practice):
    user = UserFactory()
    codes = enrol(user)
    mfa.recovery_codes_regenerate(user=user)
    assert mfa.mfa_verify(user=user, code=mfa.recovery_codes_regenerate(user=user)[0]) == (
        "recovery_code"
    )
    bodies = notice_bodies(mail_server, user)
    assert any("Two-step sign-in was turned on" in body for body in bodies)
    assert sum("New recovery codes were made" in body for body in bodies) == 2
    assert any("recovery codes was used to sign in" in body for body in bodies)
    assert all(codes[0] not in body for body in bodies)  # never a secret in an email


def test_a_reset_and_a_role_change_by_an_admin_send_a_notice(mail_server, practice, admin_user):
    user = UserFactory(roles=[Role.NURSE])
    enrol(user)
    mfa.mfa_reset(actor=admin_user, user=user)
    user_roles_change(actor=admin_user, user=user, roles=[Role.PHYSICIAN])
    bodies = notice_bodies(mail_server, user)
    assert any("An administrator removed your authenticator" in body for body in bodies)
    assert any("Your roles were changed" in body for body in bodies)
    assert all(user.username in body for body in bodies)


def test_a_password_change_sends_a_notice(mail_server, practice, rf):
    from django.contrib.sessions.backends.db import SessionStore

    user = UserFactory()
    request = rf.post("/accounts/me/password/")
    request.session, request.user, request.client_ip = SessionStore(), user, "127.0.0.1"
    request.session.create()
    password_change(
        request=request,
        user=user,
        current_password=TEST_PASSWORD,
        new_password="violet-harbor-copper-92",
    )
    assert any("Your password was changed" in body for body in notice_bodies(mail_server, user))


def test_a_lock_tells_the_account_owner_but_an_unknown_username_mails_nobody(mail_server, practice):
    user = UserFactory()
    for _ in range(settings.LOGIN_THROTTLE["lock_after"]):
        sign_in_failure_record(username=user.username, address="203.0.113.9")
    for _ in range(settings.LOGIN_THROTTLE["lock_after"]):
        sign_in_failure_record(username="nobody-by-this-name", address="203.0.113.9")
    assert any("Sign-in to your account was paused" in b for b in notice_bodies(mail_server, user))
    assert len(mail_server.messages) == 1


def test_a_mail_server_that_is_down_does_not_undo_the_change(settings, practice, caplog):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    user = UserFactory()
    caplog.set_level(logging.ERROR, logger="ambula.accounts")
    enrol(user)
    assert mfa.mfa_is_enrolled(user=user)
    assert "security notice mfa_enrolled" in caplog.text
    assert user.email not in caplog.text
