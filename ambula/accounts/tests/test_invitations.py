"""Invitations end to end: the email over real SMTP, the one-time link, the first sign-in."""

import re
import uuid
from datetime import datetime, timedelta

import pytest
from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.test import Client
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.timezone import now as timezone_now
from django_otp.oath import TOTP

from ambula.accounts.emails import set_password_link
from ambula.accounts.models import TOTPDevice, User, UserSession
from ambula.accounts.roles import Role
from ambula.accounts.services import user_create, user_deactivate
from ambula.accounts.tests.factories import TEST_PASSWORD, UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.core.services import practice_create

pytestmark = pytest.mark.django_db

INVITE = "/accounts/users/invite/"
LOGIN = "/accounts/login/"
STRONG = "crisp-orbit-lantern-meadow-47"
INVALID_LINK = "This link no longer works"


@pytest.fixture
def invite(admin_client, mail_server, django_capture_on_commit_callbacks):
    """Invite someone as the administrator would; return the path of the emailed link."""

    def invite_as(username="casey", full_name="Casey Nguyen", roles=(Role.NURSE,)):
        sent_before = len(mail_server.messages)
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(
                INVITE,
                {
                    "full_name": full_name,
                    "username": username,
                    "email": f"{username}@clinic.example",
                    "roles": [role.value for role in roles],
                },
            )
        assert response.status_code == 302, response.content.decode()
        assert len(mail_server.messages) == sent_before + 1
        return emailed_link(mail_server.messages[-1])

    return invite_as


def emailed_link(message) -> str:
    """The path of the emailed link, which starts with BASE_URL (never the request's host)."""
    pattern = re.escape(settings.BASE_URL) + r"(/accounts/set-password/[^/\s]+/[^/\s]+/)"
    match = re.search(pattern, message.get_content())
    assert match, "no set-password link starting with BASE_URL in the email"
    return match[1]


def passwords(first: str, second: str | None = None) -> dict:
    return {"new_password": first, "new_password_again": first if second is None else second}


def link_for(user) -> str:
    """The path of a fresh set-password link for the user."""
    link = set_password_link(user=user)
    assert link.startswith(settings.BASE_URL + "/")
    return link.removeprefix(settings.BASE_URL)


def audit_for(action: str, user):
    return AuditEvent.objects.filter(action=action, target_id=str(user.pk))


def is_signed_in(browser) -> bool:
    return "_auth_user_id" in browser.session


def shows_invalid_link(response) -> bool:
    return response.status_code == 400 and INVALID_LINK in response.content.decode()


def totp_code(device: TOTPDevice) -> str:
    totp = TOTP(bytes.fromhex(device.key), step=30, t0=0, digits=6, drift=0)
    totp.time = timezone_now().timestamp()
    return f"{totp.token():06d}"


@pytest.fixture
def later(monkeypatch):
    """Move the token generator's clock: `later(hours=73)`."""

    def move(**delta):
        moment = datetime.now() + timedelta(**delta)
        monkeypatch.setattr(PasswordResetTokenGenerator, "_now", lambda self: moment)

    return move


# The whole journey, MFA off


@pytest.mark.usefixtures("practice")
def test_an_invited_user_sets_a_password_and_is_signed_in(invite, mail_server):
    link = invite(username="casey", full_name="Casey Nguyen")
    message = mail_server.messages[-1]
    assert message["To"] == "casey@clinic.example"
    assert "Lakeside Family Practice" in message["Subject"]
    user = User.objects.get(username="casey")
    browser = Client()

    page = browser.get(link)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Choose your password" in html
    assert "<strong>casey</strong>" in html

    weak = browser.post(link, passwords("short"))
    assert weak.status_code == 200
    assert (
        "This password is too short. It must contain at least 12 characters."
        in weak.context["form"].errors["new_password"]
    )
    user.refresh_from_db()
    assert not user.has_usable_password()
    assert not is_signed_in(browser)

    done = browser.post(link, passwords(STRONG))

    assert done.status_code == 302
    assert done["Location"] == "/"
    user.refresh_from_db()
    assert user.check_password(STRONG)
    assert is_signed_in(browser)
    home = browser.get("/")
    assert home.status_code == 200
    assert "Casey Nguyen" in home.content.decode()
    password_set = audit_for("auth.password_set", user).get()
    assert password_set.actor is None
    assert password_set.outcome == AuditEvent.Outcome.SUCCESS
    signed_in = audit_for("auth.signed_in", user).get()
    assert signed_in.actor == user
    assert changes_of(signed_in) == {"method": "password"}
    assert UserSession.objects.filter(user=user, ended_at=None).count() == 1

    # The link worked once: whoever holds it now, it no longer does.
    assert shows_invalid_link(browser.get(link))
    stranger = Client()
    assert shows_invalid_link(stranger.get(link))
    assert shows_invalid_link(stranger.post(link, passwords("another-sound-passphrase-93")))
    user.refresh_from_db()
    assert user.check_password(STRONG)
    assert not is_signed_in(stranger)

    # And the password works at the sign-in form.
    fresh = Client()
    response = fresh.post(LOGIN, {"username": "casey", "password": STRONG})
    assert response.status_code == 302
    assert is_signed_in(fresh)


@pytest.mark.usefixtures("practice")
@pytest.mark.parametrize(
    ("weak", "reason"),
    [
        ("password1234", "This password is too common."),
        ("aaaaaaaaaaaa", 'Repeats like "aaa" are easy to guess.'),
    ],
)
def test_weak_passwords_are_refused_with_the_validators_reason(invite, weak, reason):
    link = invite()
    browser = Client()
    response = browser.post(link, passwords(weak))
    assert response.status_code == 200
    errors = response.context["form"].errors["new_password"]
    assert any(reason in error for error in errors), errors
    assert not is_signed_in(browser)
    assert not User.objects.get(username="casey").has_usable_password()


@pytest.mark.usefixtures("practice")
def test_a_password_like_the_username_is_refused_with_the_reason(invite):
    link = invite(username="lanternkeeper")
    response = Client().post(link, passwords("lanternkeeper-2025-xyz"))
    assert response.status_code == 200
    errors = response.context["form"].errors["new_password"]
    assert "Your password must not contain your username or email address." in errors


@pytest.mark.usefixtures("practice")
def test_different_passwords_are_a_field_error(invite):
    link = invite()
    browser = Client()

    response = browser.post(link, passwords(STRONG, STRONG + "x"))

    assert response.status_code == 200
    assert response.context["form"].errors["new_password_again"] == ["The two passwords differ."]
    assert not User.objects.get(username="casey").has_usable_password()
    assert not is_signed_in(browser)
    # The link was not used up.
    assert browser.get(link).status_code == 200


@pytest.mark.usefixtures("practice")
def test_an_administrator_using_a_link_is_signed_out_of_their_own_session(
    invite, admin_client, admin_user
):
    link = invite()

    response = admin_client.post(link, passwords(STRONG))

    assert response.status_code == 302
    assert admin_client.session["_auth_user_id"] == str(User.objects.get(username="casey").pk)
    assert AuditEvent.objects.filter(action="auth.signed_out", actor=admin_user).exists()


# Links that no longer work


@pytest.mark.usefixtures("practice")
@pytest.mark.parametrize(("hours", "works"), [(71, True), (73, False)])
def test_a_link_expires_after_72_hours(later, hours, works):
    user = UserFactory(username="slowpoke", password=None)
    link = link_for(user)

    later(hours=hours)
    response = Client().get(link)

    assert response.status_code == (200 if works else 400)
    assert (INVALID_LINK in response.content.decode()) is not works


@pytest.mark.usefixtures("practice")
def test_an_expired_link_cannot_set_a_password(settings, later):
    settings.PASSWORD_RESET_TIMEOUT = 60
    user = UserFactory(username="slowpoke", password=None)
    link = link_for(user)

    later(seconds=61)
    response = Client().post(link, passwords(STRONG))

    assert shows_invalid_link(response)
    user.refresh_from_db()
    assert not user.has_usable_password()
    assert not audit_for("auth.password_set", user).exists()


def tampered(link: str) -> str:
    prefix, uidb64, token = link.rstrip("/").rsplit("/", 2)
    last = "0" if token[-1] != "0" else "1"
    return f"{prefix}/{uidb64}/{token[:-1]}{last}/"


def with_uid(link: str, uidb64: str) -> str:
    prefix, _uidb64, token = link.rstrip("/").rsplit("/", 2)
    return f"{prefix}/{uidb64}/{token}/"


def encoded(value: bytes) -> str:
    return urlsafe_base64_encode(value)


@pytest.mark.usefixtures("practice")
@pytest.mark.parametrize(
    "spoil",
    [
        tampered,
        lambda link: with_uid(link, "garbage"),
        lambda link: with_uid(link, "!!"),
        lambda link: with_uid(link, encoded(b"not-a-uuid")),
        lambda link: with_uid(link, encoded(b"\xff\xfe")),
        lambda link: with_uid(link, encoded(force_bytes(uuid.uuid4()))),
    ],
    ids=["tampered-token", "garbage-uid", "punctuation-uid", "not-a-uuid", "not-utf8", "nobody"],
)
def test_a_spoiled_link_shows_the_invalid_link_page(spoil):
    user = UserFactory(username="target", password=None)
    link = spoil(link_for(user))
    browser = Client()

    assert shows_invalid_link(browser.get(link))
    assert shows_invalid_link(browser.post(link, passwords(STRONG)))
    user.refresh_from_db()
    assert not user.has_usable_password()


@pytest.mark.usefixtures("practice")
def test_another_users_uid_with_a_valid_token_does_not_work():
    first = UserFactory(username="first", password=None)
    second = UserFactory(username="second", password=None)
    link = with_uid(link_for(first), encoded(force_bytes(second.pk)))
    assert shows_invalid_link(Client().get(link))


@pytest.mark.usefixtures("practice")
def test_a_deactivated_users_link_does_not_work(admin_user):
    user = UserFactory(username="leaver", password=None)
    link = link_for(user)
    user_deactivate(actor=admin_user, user=user)
    assert shows_invalid_link(Client().post(link, passwords(STRONG)))
    user.refresh_from_db()
    assert not user.has_usable_password()


@pytest.mark.usefixtures("practice")
def test_using_a_newer_link_kills_the_older_one(later):
    user = UserFactory(username="other", password=None)
    older = link_for(user)
    later(hours=1)
    newer = link_for(user)
    assert newer != older

    assert Client().post(newer, passwords(STRONG)).status_code == 302

    assert shows_invalid_link(Client().get(older))


# When the practice requires two-step sign-in


def test_with_mfa_required_setting_the_password_leads_to_enrolment_not_in(invite):
    practice_create(actor=None, name="Hillside Clinic", mfa_required=True)
    link = invite(username="casey", full_name="Casey Nguyen")
    user = User.objects.get(username="casey")
    browser = Client()

    response = browser.post(link, passwords(STRONG))

    assert response.status_code == 302
    assert response["Location"] == "/accounts/mfa/setup/"
    assert not is_signed_in(browser)
    home = browser.get("/")
    assert home.status_code == 302
    assert home["Location"] == f"{LOGIN}?next=/"
    assert audit_for("auth.password_set", user).exists()
    assert not audit_for("auth.signed_in", user).exists()
    assert shows_invalid_link(Client().get(link))

    # Enrolling an authenticator finishes the sign-in.
    setup = browser.get("/accounts/mfa/setup/")
    assert setup.status_code == 200
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    enrolled = browser.post("/accounts/mfa/setup/", {"code": totp_code(device)})
    assert enrolled.status_code == 200
    assert "Save your recovery codes" in enrolled.content.decode()
    assert is_signed_in(browser)
    assert browser.get("/").status_code == 200
    assert changes_of(audit_for("auth.signed_in", user).get()) == {"method": "password+totp"}


def test_with_mfa_required_the_email_names_that_practice(invite, mail_server):
    practice_create(actor=None, name="Hillside Clinic", mfa_required=True)
    invite()
    assert mail_server.messages[-1]["Subject"] == "You are invited to Hillside Clinic on Ambula"


# Resending an invitation


@pytest.mark.usefixtures("practice")
def test_resending_an_invitation_sends_a_new_working_link(
    invite, admin_client, admin_user, mail_server, django_capture_on_commit_callbacks
):
    invite(username="casey")
    user = User.objects.get(username="casey")

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/accounts/users/{user.pk}/resend-invitation/", follow=True)

    assert response.status_code == 200
    assert "A new invitation was sent." in [str(m) for m in response.context["messages"]]
    assert len(mail_server.messages) == 2
    assert mail_server.messages[-1]["To"] == "casey@clinic.example"
    invitations = audit_for("accounts.user_invited", user)
    assert invitations.count() == 2
    assert all(event.actor == admin_user for event in invitations)
    link = emailed_link(mail_server.messages[-1])
    assert Client().post(link, passwords(STRONG)).status_code == 302


@pytest.mark.usefixtures("practice")
def test_resending_to_a_user_with_a_password_is_refused(
    admin_client, mail_server, django_capture_on_commit_callbacks
):
    user = UserFactory(username="settled", password=TEST_PASSWORD)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(f"/accounts/users/{user.pk}/resend-invitation/", follow=True)

    assert response.status_code == 200
    messages = [(m.level_tag, str(m)) for m in response.context["messages"]]
    assert messages == [("error", "This user has already set a password.")]
    assert callbacks == []
    assert mail_server.messages == []
    assert not audit_for("accounts.user_invited", user).exists()
    assert "Send a new invitation" not in response.content.decode()


@pytest.mark.usefixtures("practice")
def test_a_user_created_without_a_password_can_be_sent_an_invitation(
    admin_client, mail_server, django_capture_on_commit_callbacks
):
    user = user_create(
        actor=None,
        username="fromcli",
        email="fromcli@clinic.example",
        full_name="From Cli",
        roles=[Role.BILLER],
    )
    detail = admin_client.get(f"/accounts/users/{user.pk}/").content.decode()
    assert f"/accounts/users/{user.pk}/resend-invitation/" in detail

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(f"/accounts/users/{user.pk}/resend-invitation/")

    assert [message["To"] for message in mail_server.messages] == ["fromcli@clinic.example"]


@pytest.mark.usefixtures("practice")
def test_resending_an_invitation_makes_the_older_links_stop_working(
    invite, admin_client, mail_server, django_capture_on_commit_callbacks
):
    first = invite(username="casey")
    user = User.objects.get(username="casey")
    assert Client().get(first).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(f"/accounts/users/{user.pk}/resend-invitation/")

    second = emailed_link(mail_server.messages[-1])
    assert second != first
    assert shows_invalid_link(Client().get(first))
    assert shows_invalid_link(Client().post(first, passwords(STRONG)))
    user.refresh_from_db()
    assert not user.has_usable_password()
    assert Client().post(second, passwords(STRONG)).status_code == 302


# Links are built from BASE_URL, never from the request


@pytest.mark.usefixtures("practice")
@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8000", "https://clinic.example.org"])
def test_invitation_links_use_base_url_whatever_host_the_request_named(
    admin_client, admin_user, mail_server, django_capture_on_commit_callbacks, settings, base_url
):
    # Even a host the deployment accepts must not end up in a link mailed to someone.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "attacker.example"]
    settings.BASE_URL = base_url
    data = {
        "full_name": "Casey Nguyen",
        "username": "casey",
        "email": "casey@clinic.example",
        "roles": [Role.NURSE.value],
    }

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(INVITE, data, HTTP_HOST="attacker.example")
    user = User.objects.get(username="casey")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            f"/accounts/users/{user.pk}/resend-invitation/", HTTP_HOST="attacker.example"
        )

    assert response.status_code == 302
    assert len(mail_server.messages) == 2
    for message in mail_server.messages:
        body = message.get_content()
        assert f"{base_url}/accounts/set-password/" in body
        assert "attacker.example" not in body
    assert (
        Client().post(emailed_link(mail_server.messages[-1]), passwords(STRONG)).status_code == 302
    )


# Pages that are never stored


def never_cached(response) -> bool:
    directives = {part.strip() for part in response["Cache-Control"].split(",")}
    return {"no-store", "no-cache"} <= directives


@pytest.mark.usefixtures("practice")
def test_the_set_password_pages_are_never_cached():
    user = UserFactory(username="cached", password=None)
    link = link_for(user)
    browser = Client()

    page = browser.get(link)
    assert page.status_code == 200
    assert never_cached(page)
    refused = browser.post(link, passwords("short"))
    assert refused.status_code == 200
    assert never_cached(refused)
    assert never_cached(Client().get(tampered(link)))
