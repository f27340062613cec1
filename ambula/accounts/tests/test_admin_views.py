"""User administration pages: the list, invitations, roles, and the per-user actions."""

import re
import uuid

import pytest
from django.conf import settings
from django.test import Client
from django.utils.timezone import now as timezone_now
from django_otp.oath import TOTP

from ambula.accounts import mfa
from ambula.accounts.models import RecoveryCode, TOTPDevice, User, UserSession
from ambula.accounts.roles import Role
from ambula.accounts.services import user_create, user_deactivate
from ambula.accounts.tests.factories import TEST_PASSWORD, UserFactory
from ambula.accounts.throttling import sign_in_failure_record, user_is_locked
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of

# A practice without two-step sign-in, so signing in through the form needs no second step.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("practice")]

LOGIN = "/accounts/login/"
USERS = "/accounts/users/"
INVITE = "/accounts/users/invite/"
DENIED_ROLES = [Role.PHYSICIAN, Role.FRONT_DESK, Role.BILLER, Role.NURSE, Role.PRIVACY_OFFICER]


def detail_url(user) -> str:
    return f"{USERS}{user.pk}/"


def action_url(user, action: str) -> str:
    return f"{USERS}{user.pk}/{action}/"


def audit_events(action: str, *, actor=None, target=None):
    events = AuditEvent.objects.filter(action=action)
    if actor is not None:
        events = events.filter(actor=actor)
    if target is not None:
        events = events.filter(target_id=str(target.pk))
    return events


def the_audit_event(action: str, *, actor, target) -> AuditEvent:
    """The one event of this action, by this actor, about this target, that succeeded."""
    event = audit_events(action, actor=actor, target=target).get()
    assert event.outcome == AuditEvent.Outcome.SUCCESS
    assert event.target_type == "accounts.user"
    return event


def account_events():
    return AuditEvent.objects.filter(action__startswith="accounts.")


def table_row(html: str, username: str) -> str:
    """The users table row whose username cell holds exactly this username."""
    rows = [row for row in html.split("<tr>") if f"<td>{username}</td>" in row]
    assert len(rows) == 1, f"expected one row for {username!r}, found {len(rows)}"
    return rows[0].split("</tr>")[0]


def status_of(html: str, username: str) -> str:
    row = table_row(html, username)
    return re.search(r'<span class="status [^"]+">([^<]+)</span>', row)[1]


def invitation_data(**overrides):
    return {
        "full_name": "Casey Nguyen",
        "username": "cnguyen",
        "email": "casey@clinic.example",
        "roles": [Role.NURSE.value, Role.FRONT_DESK.value],
    } | overrides


def sign_in_with_form(username: str, password: str = TEST_PASSWORD) -> Client:
    """A separate browser that signs in through the login form, as a person would."""
    browser = Client()
    response = browser.post(LOGIN, {"username": username, "password": password})
    assert response.status_code == 302, "sign-in through the form failed"
    assert response["Location"] == "/"
    return browser


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def set_password_link_in(text: str) -> re.Match | None:
    """The set-password link, which starts with BASE_URL whatever host the request named."""
    pattern = re.escape(settings.BASE_URL) + r"/accounts/set-password/[^/\s]+/[^/\s]+/"
    return re.search(pattern, text)


def lock(user) -> None:
    """Lock the username everywhere, as failures from many addresses would."""
    for _attempt in range(settings.LOGIN_THROTTLE["username_lock_after"]):
        sign_in_failure_record(username=user.username, address="")


def lock_from_one_address(user, address="203.0.113.50") -> None:
    """Lock the username at one address only, as ten wrong passwords from there would."""
    for _attempt in range(settings.LOGIN_THROTTLE["lock_after"]):
        sign_in_failure_record(username=user.username, address=address)


def enrol_authenticator(user) -> TOTPDevice:
    device = mfa.totp_enrolment_start(user=user)
    totp = TOTP(bytes.fromhex(device.key), step=30, t0=0, digits=6, drift=0)
    totp.time = timezone_now().timestamp()
    mfa.totp_enrolment_confirm(user=user, device=device, token=f"{totp.token():06d}")
    return device


# The users list


def test_users_list_shows_everyone_with_roles_and_status(admin_client, admin_user):
    active = UserFactory(username="active1", full_name="Alex Active", roles=[Role.PHYSICIAN])
    invited = UserFactory(
        username="invited1", full_name="Ines Invited", roles=[Role.BILLER], password=None
    )
    deactivated = UserFactory(username="gone1", full_name="Gale Gone", roles=[Role.NURSE])
    user_deactivate(actor=admin_user, user=deactivated)
    locked = UserFactory(
        username="locked1", full_name="Lee Locked", roles=[Role.FRONT_DESK, Role.BILLER]
    )
    lock(locked)

    response = admin_client.get(USERS)

    assert response.status_code == 200
    html = response.content.decode()
    assert status_of(html, active.username) == "Active"
    assert status_of(html, invited.username) == "Invited"
    assert status_of(html, deactivated.username) == "Deactivated"
    assert status_of(html, locked.username) == "Locked"
    assert status_of(html, admin_user.username) == "Active"
    assert "Physician" in table_row(html, active.username)
    assert "Biller" in table_row(html, invited.username)
    locked_row = table_row(html, locked.username)
    assert "Front desk" in locked_row
    assert "Biller" in locked_row
    assert "Administrator" in table_row(html, admin_user.username)
    assert "Alex Active" in html
    assert f'href="{detail_url(invited)}"' in html


@pytest.mark.parametrize("role", DENIED_ROLES)
@pytest.mark.parametrize(
    ("method", "page"),
    [("get", "list"), ("get", "invite"), ("get", "detail"), ("post", "deactivate")],
)
def test_users_pages_are_refused_to_other_roles_and_audited(client, sign_in, role, method, page):
    staff = UserFactory(username="staffer", roles=[role])
    other = UserFactory(username="other1", roles=[Role.NURSE])
    sign_in(client, staff)
    url = {
        "list": USERS,
        "invite": INVITE,
        "detail": detail_url(other),
        "deactivate": action_url(other, "deactivate"),
    }[page]

    response = getattr(client, method)(url)

    assert response.status_code == 403
    assert "You do not have access to this page" in response.content.decode()
    event = AuditEvent.objects.get(action="auth.access_denied")
    assert event.actor == staff
    assert event.outcome == AuditEvent.Outcome.DENIED
    assert changes_of(event)["capability"] == "accounts.manage"
    other.refresh_from_db()
    assert other.is_active
    assert not account_events().filter(actor=staff).exists()


def test_admin_may_open_the_users_pages(admin_client):
    assert admin_client.get(USERS).status_code == 200
    assert admin_client.get(INVITE).status_code == 200
    assert not AuditEvent.objects.filter(action="auth.access_denied").exists()


@pytest.mark.parametrize("url", [USERS, INVITE])
def test_anonymous_visitors_are_sent_to_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN}?next={url}"


def test_anonymous_post_to_an_action_changes_nothing(client, physician):
    response = client.post(action_url(physician, "deactivate"))
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)
    physician.refresh_from_db()
    assert physician.is_active


# Inviting


def test_invitation_creates_a_passwordless_user_and_emails_a_link(
    admin_client, admin_user, mail_server, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(INVITE, invitation_data(username="CNguyen"))

    user = User.objects.get(username="cnguyen")
    assert response.status_code == 302
    assert response["Location"] == detail_url(user)
    assert not user.has_usable_password()
    assert user.roles == [Role.FRONT_DESK, Role.NURSE]
    assert user.email == "casey@clinic.example"
    assert user.full_name == "Casey Nguyen"
    assert user.is_active

    assert len(mail_server.messages) == 1
    message = mail_server.messages[0]
    assert message["To"] == "casey@clinic.example"
    assert "Lakeside Family Practice" in message["Subject"]
    body = message.get_content()
    assert "cnguyen" in body
    assert "Casey Nguyen" in body
    assert set_password_link_in(body)
    assert "72 hours" in body

    the_audit_event("accounts.user_invited", actor=admin_user, target=user)
    created = the_audit_event("accounts.user_created", actor=admin_user, target=user)
    assert changes_of(created) == {"roles": ["front_desk", "nurse"]}

    detail = admin_client.get(response["Location"])
    assert "Invitation sent to casey@clinic.example." in messages_of(detail)
    assert "Send a new invitation" in detail.content.decode()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"username": "JLee", "email": "new@clinic.example"}, "This username is already in use."),
        ({"username": "newname", "email": "JLEE@Example.Test"}, "This email address is already"),
    ],
    ids=["username-other-case", "email-other-case"],
)
def test_invitation_to_a_taken_username_or_email_creates_and_sends_nothing(
    admin_client, mail_server, django_capture_on_commit_callbacks, overrides, message
):
    UserFactory(username="jlee", email="jlee@example.test")
    users_before = User.objects.count()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(INVITE, invitation_data(**overrides))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert User.objects.count() == users_before
    assert callbacks == []
    assert mail_server.messages == []
    assert not audit_events("accounts.user_invited").exists()


def test_invitation_without_a_role_is_refused(admin_client, mail_server):
    data = invitation_data()
    del data["roles"]
    response = admin_client.post(INVITE, data)
    assert response.status_code == 200
    assert response.context["form"].errors["roles"] == ["Choose at least one role."]
    assert not User.objects.filter(username="cnguyen").exists()
    assert mail_server.messages == []


def test_invitation_offers_no_patient_role(admin_client):
    response = admin_client.post(INVITE, invitation_data(roles=[Role.PATIENT.value]))
    assert response.status_code == 200
    assert "roles" in response.context["form"].errors
    assert not User.objects.filter(username="cnguyen").exists()


def test_invitation_with_malformed_fields_names_each_field(admin_client, mail_server):
    response = admin_client.post(
        INVITE, invitation_data(username="casey nguyen!", email="not-an-email", full_name="")
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["username"] == ["Use letters, digits, dots, dashes and underscores."]
    assert errors["email"] == ["Enter a valid email address."]
    assert errors["full_name"] == ["This field is required."]
    html = response.content.decode()
    assert 'id="id_username-error"' in html
    assert 'id="id_email-error"' in html
    assert User.objects.count() == 1  # the administrator
    assert mail_server.messages == []


def test_invitation_without_csrf_token_is_refused(admin_user, sign_in, mail_server):
    browser = sign_in(Client(enforce_csrf_checks=True), admin_user)

    response = browser.post(INVITE, invitation_data())

    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()
    assert not User.objects.filter(username="cnguyen").exists()
    assert mail_server.messages == []

    # The same browser, with the token from the form, gets through: the token was the reason.
    form = browser.get(INVITE).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)[1]
    response = browser.post(INVITE, invitation_data(csrfmiddlewaretoken=token))
    assert response.status_code == 302
    assert User.objects.filter(username="cnguyen").exists()


# Roles


def test_changing_roles_saves_and_audits_before_and_after(admin_client, admin_user):
    user = UserFactory(username="rolly", roles=[Role.FRONT_DESK])

    response = admin_client.post(detail_url(user), {"roles": [Role.BILLER.value, Role.NURSE.value]})

    assert response.status_code == 302
    assert response["Location"] == detail_url(user)
    user.refresh_from_db()
    assert user.roles == [Role.BILLER, Role.NURSE]
    event = the_audit_event("accounts.roles_changed", actor=admin_user, target=user)
    assert changes_of(event) == {"before": ["front_desk"], "after": ["biller", "nurse"]}
    assert "Roles saved." in messages_of(admin_client.get(detail_url(user)))


def test_saving_the_same_roles_records_nothing(admin_client):
    user = UserFactory(username="same1", roles=[Role.FRONT_DESK])
    response = admin_client.post(detail_url(user), {"roles": [Role.FRONT_DESK.value]})
    assert response.status_code == 302
    assert not audit_events("accounts.roles_changed").exists()


def test_user_detail_shows_the_current_roles_ticked(admin_client):
    user = UserFactory(username="ticks", roles=[Role.BILLER])
    html = admin_client.get(detail_url(user)).content.decode()
    assert re.search(r'<input[^>]*value="biller"[^>]*checked', html)
    assert not re.search(r'<input[^>]*value="nurse"[^>]*checked', html)


def test_roles_form_without_a_role_is_refused(admin_client):
    user = UserFactory(username="keeper", roles=[Role.NURSE])
    response = admin_client.post(detail_url(user), {})
    assert response.status_code == 200
    assert response.context["form"].errors["roles"] == ["Choose at least one role."]
    user.refresh_from_db()
    assert user.roles == [Role.NURSE]


def test_admin_cannot_remove_their_own_admin_role(admin_client, admin_user):
    response = admin_client.post(detail_url(admin_user), {"roles": [Role.PHYSICIAN.value]})

    assert response.status_code == 200
    assert "You cannot remove your own administrator role." in response.content.decode()
    admin_user.refresh_from_db()
    assert admin_user.roles == [Role.ADMIN]
    assert not audit_events("accounts.roles_changed").exists()
    assert admin_client.get(USERS).status_code == 200


def test_admin_can_add_a_role_to_themselves(admin_client, admin_user):
    response = admin_client.post(
        detail_url(admin_user), {"roles": [Role.ADMIN.value, Role.PHYSICIAN.value]}
    )
    assert response.status_code == 302
    admin_user.refresh_from_db()
    assert admin_user.roles == [Role.ADMIN, Role.PHYSICIAN]


def test_a_removed_role_stops_working_on_the_very_next_request(admin_client, admin_user, sign_in):
    colleague = UserFactory(username="deputy", roles=[Role.ADMIN, Role.PHYSICIAN])
    colleague_browser = sign_in(Client(), colleague)
    assert colleague_browser.get(USERS).status_code == 200

    response = admin_client.post(detail_url(colleague), {"roles": [Role.PHYSICIAN.value]})
    assert response.status_code == 302

    assert colleague_browser.get(USERS).status_code == 403
    denied = AuditEvent.objects.get(action="auth.access_denied")
    assert denied.actor == colleague
    assert denied.actor_roles == "physician"
    # Still signed in, with what the remaining role allows.
    assert colleague_browser.get("/").status_code == 200
    event = the_audit_event("accounts.roles_changed", actor=admin_user, target=colleague)
    assert changes_of(event) == {"before": ["admin", "physician"], "after": ["physician"]}


# Deactivate and reactivate


def test_deactivation_signs_the_user_out_everywhere_at_once(admin_client, admin_user, sign_in):
    user = UserFactory(username="leaver", full_name="Lou Leaver", roles=[Role.NURSE])
    quick_browser = sign_in(Client(), user)
    form_browser = sign_in_with_form(user.username)
    assert quick_browser.get("/").status_code == 200
    assert form_browser.get("/").status_code == 200

    response = admin_client.post(action_url(user, "deactivate"))

    assert response.status_code == 302
    assert response["Location"] == detail_url(user)
    user.refresh_from_db()
    assert not user.is_active
    for browser in (quick_browser, form_browser):
        response = browser.get("/")
        assert response.status_code == 302
        assert response["Location"] == f"{LOGIN}?next=/"
    assert UserSession.objects.get(user=user).ended_at is not None
    event = the_audit_event("accounts.user_deactivated", actor=admin_user, target=user)
    assert changes_of(event) == {"sessions_ended": 1}
    # And they cannot come back in through the form.
    refused = Client().post(LOGIN, {"username": user.username, "password": TEST_PASSWORD})
    assert refused.status_code == 200
    assert "_auth_user_id" not in refused.client.session
    page = admin_client.get(detail_url(user))
    assert "The user was deactivated and signed out everywhere." in messages_of(page)
    assert "Reactivate" in page.content.decode()


def test_deactivating_twice_records_one_event(admin_client, admin_user):
    user = UserFactory(username="twice", roles=[Role.NURSE])
    admin_client.post(action_url(user, "deactivate"))
    admin_client.post(action_url(user, "deactivate"))
    assert audit_events("accounts.user_deactivated", target=user).count() == 1


def test_admin_cannot_deactivate_themselves(admin_client, admin_user):
    response = admin_client.post(action_url(admin_user, "deactivate"), follow=True)

    assert response.status_code == 200
    assert "You cannot deactivate your own account." in messages_of(response)
    admin_user.refresh_from_db()
    assert admin_user.is_active
    assert not audit_events("accounts.user_deactivated").exists()
    assert admin_client.get(USERS).status_code == 200


def test_reactivation_lets_the_user_sign_in_again(admin_client, admin_user):
    user = UserFactory(username="returner", roles=[Role.BILLER])
    user_deactivate(actor=admin_user, user=user)

    response = admin_client.post(action_url(user, "reactivate"), follow=True)

    assert response.status_code == 200
    assert "The user can sign in again." in messages_of(response)
    user.refresh_from_db()
    assert user.is_active
    the_audit_event("accounts.user_reactivated", actor=admin_user, target=user)
    assert sign_in_with_form(user.username).get("/").status_code == 200


def test_reactivating_an_active_user_records_nothing(admin_client, physician):
    admin_client.post(action_url(physician, "reactivate"))
    assert not audit_events("accounts.user_reactivated").exists()


def test_a_session_that_changed_its_password_stays_ended_after_reactivation(
    admin_client, admin_user
):
    user = UserFactory(username="changer", roles=[Role.NURSE])
    browser = sign_in_with_form(user.username)
    changed = browser.post(
        "/accounts/me/password/",
        {
            "current_password": TEST_PASSWORD,
            "new_password": "crisp-orbit-lantern-meadow-47",
            "new_password_again": "crisp-orbit-lantern-meadow-47",
        },
    )
    assert changed.status_code == 302
    assert browser.get("/").status_code == 200

    admin_client.post(action_url(user, "deactivate"))
    assert browser.get("/").status_code == 302
    event = the_audit_event("accounts.user_deactivated", actor=admin_user, target=user)
    assert changes_of(event) == {"sessions_ended": 1}
    admin_client.post(action_url(user, "reactivate"))

    # "Signed out everywhere" must hold after reactivation too: the old session stays dead.
    assert browser.get("/").status_code == 302


# Two-step sign-in reset


def test_reset_mfa_removes_the_authenticator_and_recovery_codes(admin_client, admin_user):
    user = UserFactory(username="phoneless", roles=[Role.PHYSICIAN])
    enrol_authenticator(user)
    assert RecoveryCode.objects.filter(user=user).count() == mfa.RECOVERY_CODE_COUNT
    assert "On" in table_row(admin_client.get(USERS).content.decode(), user.username)
    assert action_url(user, "reset-mfa") in admin_client.get(detail_url(user)).content.decode()

    response = admin_client.post(action_url(user, "reset-mfa"), follow=True)

    assert response.status_code == 200
    assert any("Two-step sign-in was reset" in message for message in messages_of(response))
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not RecoveryCode.objects.filter(user=user).exists()
    assert not mfa.mfa_is_enrolled(user=user)
    event = the_audit_event("accounts.mfa_reset", actor=admin_user, target=user)
    assert changes_of(event) == {
        "devices_removed": 1,
        "recovery_codes_removed": mfa.RECOVERY_CODE_COUNT,
        "sessions_ended": 0,
    }
    assert "Not set up" in table_row(admin_client.get(USERS).content.decode(), user.username)


def test_reset_mfa_signs_the_user_out_on_their_next_request(admin_client, admin_user):
    user = UserFactory(username="phonelost", roles=[Role.PHYSICIAN])
    # Signed in before enrolling (the practice does not require two-step sign-in).
    browser = sign_in_with_form(user.username)
    enrol_authenticator(user)
    assert browser.get("/").status_code == 200

    admin_client.post(action_url(user, "reset-mfa"))

    response = browser.get("/")
    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN}?next=/"
    assert not UserSession.objects.filter(user=user, ended_at=None).exists()
    event = the_audit_event("accounts.mfa_reset", actor=admin_user, target=user)
    assert changes_of(event) == {
        "devices_removed": 1,
        "recovery_codes_removed": mfa.RECOVERY_CODE_COUNT,
        "sessions_ended": 1,
    }
    # The administrator's own session goes on.
    assert admin_client.get(USERS).status_code == 200


# Unlock


def test_unlock_lifts_a_sign_in_lock(admin_client, admin_user):
    user = UserFactory(username="lockedout", roles=[Role.FRONT_DESK])
    lock(user)
    assert user_is_locked(user=user)
    assert status_of(admin_client.get(USERS).content.decode(), user.username) == "Locked"
    detail = admin_client.get(detail_url(user)).content.decode()
    assert action_url(user, "unlock") in detail
    refused = Client().post(LOGIN, {"username": user.username, "password": TEST_PASSWORD})
    assert "Too many attempts" in refused.content.decode()

    response = admin_client.post(action_url(user, "unlock"), follow=True)

    assert "The sign-in lock was lifted." in messages_of(response)
    assert not user_is_locked(user=user)
    assert status_of(admin_client.get(USERS).content.decode(), user.username) == "Active"
    the_audit_event("accounts.user_unlocked", actor=admin_user, target=user)
    assert sign_in_with_form(user.username).get("/").status_code == 200


def test_a_user_locked_at_one_address_shows_as_locked_and_can_be_unlocked(admin_client):
    user = UserFactory(username="pairlocked", roles=[Role.NURSE])
    lock_from_one_address(user)
    assert user_is_locked(user=user)

    assert status_of(admin_client.get(USERS).content.decode(), user.username) == "Locked"
    assert action_url(user, "unlock") in admin_client.get(detail_url(user)).content.decode()


# Odd requests


def test_unknown_action_redirects_and_changes_nothing(admin_client, physician):
    events_before = AuditEvent.objects.count()

    response = admin_client.post(action_url(physician, "delete"))

    assert response.status_code == 302
    assert response["Location"] == detail_url(physician)
    physician.refresh_from_db()
    assert physician.is_active
    assert physician.has_usable_password()
    assert physician.roles == [Role.PHYSICIAN]
    assert AuditEvent.objects.count() == events_before


@pytest.mark.parametrize("action", ["", "deactivate"])
def test_a_user_who_does_not_exist_is_not_found(admin_client, action):
    missing = uuid.uuid4()
    url = f"{USERS}{missing}/" + (f"{action}/" if action else "")
    response = admin_client.post(url) if action else admin_client.get(url)
    assert response.status_code == 404


@pytest.mark.parametrize(
    "action", ["deactivate", "reactivate", "reset-mfa", "unlock", "resend-invitation"]
)
def test_actions_refuse_get(admin_client, physician, action):
    response = admin_client.get(action_url(physician, action))
    assert response.status_code == 405
    physician.refresh_from_db()
    assert physician.is_active
    assert not account_events().exclude(action="accounts.user_created").exists()


def test_user_created_without_a_request_has_no_actor(admin_client):
    user = user_create(
        actor=None, username="cli1", email="cli1@example.test", full_name="C", roles=["nurse"]
    )
    event = audit_events("accounts.user_created", target=user).get()
    assert event.actor is None
    assert status_of(admin_client.get(USERS).content.decode(), "cli1") == "Invited"
