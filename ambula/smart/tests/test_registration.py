"""Registering and revoking clients: the service, the admin pages and the command line."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from oauth2_provider.models import AccessToken, Application

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.core.errors import AccessDenied
from ambula.smart.models import ApiClient
from ambula.smart.services import api_client_register, api_client_revoke
from ambula.smart.testing import issue_token
from ambula.smart.tests.test_backend_services import public_set, rsa_key

APP = {"name": "Chart Viewer", "kind": "app", "scopes": "patient/*.rs launch/patient"}
URI = "https://app.example.test/callback"


def test_register_an_app(admin_user):
    registration = api_client_register(actor=admin_user, redirect_uris=URI, **APP)
    client = registration.client
    assert registration.client_secret is None
    assert client.application.client_type == Application.CLIENT_PUBLIC
    assert client.application.redirect_uris == URI
    assert client.allowed_scopes == "launch/patient patient/*.rs"
    assert client.created_by == admin_user
    event = AuditEvent.objects.get(action="smart.client_registered")
    assert event.actor == admin_user
    assert changes_of(event)["client_id"] == registration.client_id


def test_secret_is_returned_once_and_stored_hashed(admin_user):
    registration = api_client_register(
        actor=admin_user, name="Lab", kind="internal", scopes="system/*.rs", role=Role.NURSE
    )
    stored = Application.objects.get(client_id=registration.client_id).client_secret
    assert registration.client_secret and registration.client_secret not in stored
    service_user = registration.client.service_user
    assert service_user.roles == [Role.NURSE]
    assert not service_user.has_usable_password()


def test_only_practice_managers_register(db):
    with pytest.raises(AccessDenied):
        api_client_register(actor=UserFactory(roles=[Role.PHYSICIAN]), redirect_uris=URI, **APP)
    assert not ApiClient.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"kind": "robot"}, "kind"),
        ({"scopes": ""}, "scopes"),
        ({"scopes": "patient/*.rs everything"}, "scopes"),
        ({"scopes": "patient/Observation.rs?category=lab"}, "scopes"),
        ({"scopes": "system/*.rs"}, "scopes"),
        ({"redirect_uris": ""}, "redirect_uris"),
        ({"redirect_uris": "http://app.example.test/cb"}, "redirect_uris"),
        ({"redirect_uris": "app.example.test/cb"}, "redirect_uris"),
        ({"redirect_uris": "https://app.example.test/cb#frag"}, "redirect_uris"),
    ],
)
def test_bad_app_registrations_change_nothing(admin_user, changes, field):
    with pytest.raises(ValidationError) as raised:
        api_client_register(actor=admin_user, **{**APP, "redirect_uris": URI, **changes})
    assert field in raised.value.message_dict
    assert not Application.objects.exists()


def test_http_redirects_are_allowed_on_localhost(admin_user):
    api_client_register(actor=admin_user, **APP, redirect_uris="http://localhost:5173/cb")


@pytest.mark.parametrize(
    ("jwks", "role", "field"),
    [
        (None, "front_desk", "jwks"),
        ("{not json", "front_desk", "jwks"),
        ({"keys": []}, "front_desk", "jwks"),
        ({"keys": [{"kty": "RSA"}]}, "front_desk", "jwks"),
        ("x" * 70000, "front_desk", "jwks"),
        ("private", "front_desk", "jwks"),
        ("duplicate", "front_desk", "jwks"),
        ("good", None, "role"),
        ("good", "patient", "role"),
    ],
)
def test_bad_backend_registrations_change_nothing(admin_user, jwks, role, field):
    key = rsa_key()
    jwks = (
        {
            "good": public_set(key),
            "private": {"keys": [key.export(as_dict=True)]},
            "duplicate": public_set(key, key),
        }.get(jwks, jwks)
        if isinstance(jwks, str)
        else jwks
    )
    with pytest.raises(ValidationError) as raised:
        api_client_register(
            actor=admin_user, name="Svc", kind="backend", scopes="system/*.rs", jwks=jwks, role=role
        )
    assert field in raised.value.message_dict
    assert not Application.objects.exists()


def test_revoke_ends_every_token(admin_user, db):
    user = UserFactory(roles=[Role.PHYSICIAN])
    issue_token(user, "user/*.rs")
    client = ApiClient.objects.get()
    api_client_revoke(actor=admin_user, client=client)
    assert not AccessToken.objects.exists()
    client.refresh_from_db()
    assert client.revoked_at is not None
    event = AuditEvent.objects.get(action="smart.client_revoked")
    assert changes_of(event)["tokens_revoked"] == 1
    # Revoking twice is harmless and not audited twice.
    api_client_revoke(actor=admin_user, client=client)
    assert AuditEvent.objects.filter(action="smart.client_revoked").count() == 1


# --- Pages --------------------------------------------------------------------------------------


def test_admin_registers_a_client_and_sees_the_secret_once(admin_client):
    assert admin_client.get("/practice/api-clients/").status_code == 200
    assert admin_client.get("/practice/api-clients/new/").status_code == 200
    response = admin_client.post(
        "/practice/api-clients/new/",
        {"name": "Lab", "kind": "internal", "scopes": "system/Patient.rs", "role": "nurse"},
    )
    assert response.status_code == 200
    secret = response.context["registration"].client_secret
    client_id = response.context["registration"].client_id
    assert secret.encode() in response.content
    listing = admin_client.get("/practice/api-clients/")
    assert client_id.encode() in listing.content
    assert secret.encode() not in listing.content


def test_register_form_shows_field_errors(admin_client):
    response = admin_client.post(
        "/practice/api-clients/new/",
        {"name": "App", "kind": "app", "scopes": "system/*.rs", "redirect_uris": ""},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["scopes"]
    assert not ApiClient.objects.exists()


def test_admin_revokes_from_the_list(admin_client, admin_user):
    registration = api_client_register(actor=admin_user, redirect_uris=URI, **APP)
    response = admin_client.post(
        "/practice/api-clients/revoke/", {"client_id": registration.client_id}
    )
    assert response.status_code == 302
    registration.client.refresh_from_db()
    assert registration.client.revoked_at is not None


def test_revoking_an_unknown_client_changes_nothing(admin_client):
    response = admin_client.post(
        "/practice/api-clients/revoke/", {"client_id": "nope"}, follow=True
    )
    assert b"There is no such client" in response.content


def test_other_roles_cannot_manage_clients(client, sign_in, db):
    sign_in(client, UserFactory(roles=[Role.PHYSICIAN]))
    assert client.get("/practice/api-clients/").status_code == 403
    assert client.post("/practice/api-clients/new/", {"name": "x"}).status_code == 403


# --- Command line -------------------------------------------------------------------------------


def test_cli_creates_a_secret_client(db, capsys):
    call_command(
        "apiclient",
        "create",
        "--name",
        "Lab feed",
        "--scopes",
        "system/*.rs",
        "--kind",
        "internal",
        "--role",
        "nurse",
    )
    out = capsys.readouterr().out
    client = ApiClient.objects.get()
    assert f"client_id: {client.application.client_id}" in out
    assert "client_secret: " in out


def test_cli_creates_an_app_without_a_secret(db, capsys):
    call_command(
        "apiclient",
        "create",
        "--name",
        "Viewer",
        "--scopes",
        "patient/*.rs",
        "--redirect-uri",
        URI,
    )
    out = capsys.readouterr().out
    assert "client_id: " in out
    assert "client_secret" not in out


def test_cli_backend_with_a_jwks_file(db, tmp_path, capsys):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(public_set(rsa_key())))
    call_command(
        "apiclient",
        "create",
        "--name",
        "Svc",
        "--scopes",
        "system/*.rs",
        "--kind",
        "backend",
        "--jwks-file",
        str(path),
        "--role",
        "biller",
    )
    assert ApiClient.objects.get().jwks["keys"][0]["kid"] == "key-1"


@pytest.mark.parametrize(
    "arguments",
    [
        ["--name", "X", "--scopes", "nonsense"],
        ["--name", "X", "--scopes", "patient/*.rs"],  # an app without a redirect URI
        ["--name", "X", "--scopes", "system/*.rs", "--kind", "backend", "--jwks-file", "/nope"],
    ],
)
def test_cli_refuses_bad_input(db, arguments):
    with pytest.raises(CommandError):
        call_command("apiclient", "create", *arguments)
    assert not ApiClient.objects.exists()


def test_the_ambula_command_routes_to_it(db, capsys):
    from ambula.cli import main

    main(
        [
            "apiclient",
            "create",
            "--name",
            "Feed",
            "--scopes",
            "system/*.rs",
            "--kind",
            "internal",
            "--role",
            "front_desk",
        ]
    )
    assert "client_secret: " in capsys.readouterr().out
    assert ApiClient.objects.get().kind == "internal"


def test_nightly_cleanup_forgets_expired_tokens_and_assertion_ids(db):
    from datetime import timedelta

    from django.utils.timezone import now as timezone_now

    from ambula.smart.models import AssertionJti
    from ambula.smart.tasks import clear_expired_tokens

    user = UserFactory(roles=[Role.PHYSICIAN])
    issue_token(user, "user/*.rs", expires_in=-10)
    live = issue_token(user, "user/*.rs")
    AssertionJti.objects.create(client_id="c", jti="old", expires_at=timezone_now() - timedelta(1))
    AssertionJti.objects.create(client_id="c", jti="new", expires_at=timezone_now() + timedelta(1))
    clear_expired_tokens.call_local()
    assert AccessToken.objects.count() == 1
    assert list(AssertionJti.objects.values_list("jti", flat=True)) == ["new"]
    assert live
