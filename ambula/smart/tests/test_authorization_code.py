"""Standalone launch: authorization code with PKCE, consent, patient picker, token, refresh."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import RequestFactory
from oauth2_provider.models import AccessToken, RefreshToken

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.scheduling.tests.factories import make_provider
from ambula.smart.principal import Unauthorized, authenticate
from ambula.smart.services import api_client_register
from ambula.smart.tests.oauth_helpers import (
    REDIRECT_URI,
    authorize_url,
    code_from,
    consent_post,
    exchange,
    jwt_claims,
    pkce_pair,
)

APP_SCOPES = "openid fhirUser launch/patient offline_access patient/*.rs user/Patient.rs"


@pytest.fixture
def app_client(db):
    return api_client_register(
        actor=None, name="Chart Viewer", kind="app", scopes=APP_SCOPES, redirect_uris=REDIRECT_URI
    ).client


@pytest.fixture
def doctor(db, practice):
    return make_provider(full_name="Dr. Mara Quinn").user


def bearer(token):
    return RequestFactory().get("/fhir/Patient", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_full_launch_with_patient_refresh_and_fhir_user(
    client, sign_in, doctor, patient, app_client
):
    client_id = app_client.application.client_id
    sign_in(client, doctor)
    verifier, challenge = pkce_pair()
    url = authorize_url(client_id, APP_SCOPES, challenge)

    page = client.get(url)
    assert page.status_code == 200
    assert b"Chart Viewer" in page.content
    assert b"Which patient?" in page.content

    search = client.get(url + "&patient_query=Okafor")
    assert b"Okafor, Ada" in search.content
    assert AuditEvent.objects.filter(action="patients.searched", actor=doctor).exists()

    code = code_from(consent_post(client, url + "&patient_query=Okafor", patient=patient))
    response = exchange(client, client_id, code, verifier)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["patient"] == str(patient.pk)
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert set(body["scope"].split()) == set(APP_SCOPES.split())
    assert body["refresh_token"]
    claims = jwt_claims(body["id_token"])
    assert claims["fhirUser"] == (
        f"http://testserver/fhir/Practitioner/{doctor.provider_profile.pk}"
    )
    assert claims["aud"] == client_id

    principal = authenticate(bearer(body["access_token"]))
    assert principal.user == doctor
    assert principal.patient_id == patient.pk

    refreshed = client.post(
        "/oauth/token/",
        {
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "client_id": client_id,
        },
    )
    assert refreshed.status_code == 200, refreshed.content
    again = refreshed.json()
    assert again["patient"] == str(patient.pk)
    assert again["refresh_token"] != body["refresh_token"]
    assert authenticate(bearer(again["access_token"])).patient_id == patient.pk
    with pytest.raises(Unauthorized):
        authenticate(bearer(body["access_token"]))

    # A rotated refresh token cannot be used again.
    replay = client.post(
        "/oauth/token/",
        {
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "client_id": client_id,
        },
    )
    assert replay.status_code == 400

    actions = list(
        AuditEvent.objects.filter(action__startswith="smart.")
        .exclude(action="smart.client_registered")
        .values_list("action", flat=True)
    )
    assert actions == [
        "smart.access_approved",
        "smart.token_issued",
        "smart.token_refreshed",
        "smart.token_refused",
    ]
    issued = AuditEvent.objects.get(action="smart.token_issued")
    assert issued.actor == doctor
    assert issued.patient_id == patient.pk
    assert changes_of(issued)["client_id"] == client_id


def test_the_code_works_once(client, sign_in, doctor, patient, app_client):
    client_id = app_client.application.client_id
    sign_in(client, doctor)
    verifier, challenge = pkce_pair()
    url = authorize_url(client_id, "patient/*.rs launch/patient", challenge)
    code = code_from(consent_post(client, url + "&patient_query=Okafor", patient=patient))
    assert exchange(client, client_id, code, verifier).status_code == 200
    assert exchange(client, client_id, code, verifier).status_code == 400


def test_wrong_verifier_is_refused_and_audited(client, sign_in, doctor, patient, app_client):
    client_id = app_client.application.client_id
    sign_in(client, doctor)
    _verifier, challenge = pkce_pair()
    url = authorize_url(client_id, "patient/*.rs launch/patient", challenge)
    code = code_from(consent_post(client, url + "&patient_query=Okafor", patient=patient))
    other_verifier, _ = pkce_pair()
    response = exchange(client, client_id, code, other_verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.exists()
    refused = AuditEvent.objects.get(action="smart.token_refused")
    assert refused.actor_username == client_id
    assert changes_of(refused)["error"] == "invalid_grant"


def test_missing_pkce_is_refused(client, sign_in, doctor, app_client):
    sign_in(client, doctor)
    response = client.get(authorize_url(app_client.application.client_id, "user/Patient.rs", None))
    assert response.status_code == 302
    assert parse_qs(urlsplit(response["Location"]).query)["error"] == ["invalid_request"]


def test_plain_pkce_is_refused(client, sign_in, doctor, app_client):
    sign_in(client, doctor)
    url = authorize_url(app_client.application.client_id, "user/Patient.rs", None)
    challenge = "abcdefghijklmnopqrstuvwxyz0123456789abcdefghij"
    response = client.get(f"{url}&code_challenge={challenge}&code_challenge_method=plain")
    assert response.status_code == 400
    assert b"PKCE" in response.content


def test_scopes_wider_than_the_client_are_narrowed(client, sign_in, doctor, patient):
    narrow = api_client_register(
        actor=None,
        name="Narrow",
        kind="app",
        scopes="patient/Patient.rs launch/patient",
        redirect_uris=REDIRECT_URI,
    ).client
    client_id = narrow.application.client_id
    sign_in(client, doctor)
    verifier, challenge = pkce_pair()
    url = authorize_url(client_id, "patient/*.cruds user/*.cruds openid launch/patient", challenge)
    assert client.get(url).context["form"].initial["scope"] == "launch/patient patient/Patient.rs"
    code = code_from(consent_post(client, url + "&patient_query=Okafor", patient=patient))
    body = exchange(client, client_id, code, verifier).json()
    assert body["scope"] == "launch/patient patient/Patient.rs"
    assert "id_token" not in body


def test_consent_drops_types_the_role_cannot_read(client, sign_in, app_client, practice):
    from ambula.accounts.policy import can
    from ambula.fhir.registry import all_mappers

    desk = UserFactory(roles=[Role.FRONT_DESK])
    hidden = [m.resource_type for m in all_mappers() if not can(desk, m.read_capability)]
    if not hidden:
        pytest.skip("every FHIR resource is readable by the front desk")
    wide = api_client_register(
        actor=None,
        name="Wide",
        kind="app",
        scopes=f"user/Patient.rs user/{hidden[0]}.rs",
        redirect_uris=REDIRECT_URI,
    ).client
    sign_in(client, desk)
    _, challenge = pkce_pair()
    url = authorize_url(
        wide.application.client_id, f"user/Patient.rs user/{hidden[0]}.rs", challenge
    )
    assert client.get(url).context["form"].initial["scope"] == "user/Patient.rs"


def test_unknown_scope_is_refused(client, sign_in, doctor, app_client):
    sign_in(client, doctor)
    _, challenge = pkce_pair()
    response = client.get(
        authorize_url(app_client.application.client_id, "patient/*.rs admin/everything", challenge)
    )
    assert response.status_code == 302
    assert parse_qs(urlsplit(response["Location"]).query)["error"] == ["invalid_scope"]
    refusal = AuditEvent.objects.get(action="smart.token_refused")
    assert refusal.actor == doctor
    assert changes_of(refusal) == {
        "client_id": app_client.application.client_id,
        "error": "invalid_scope",
        "step": "authorize",
    }


def test_no_refresh_token_without_offline_access(client, sign_in, doctor, app_client):
    client_id = app_client.application.client_id
    sign_in(client, doctor)
    verifier, challenge = pkce_pair()
    code = code_from(consent_post(client, authorize_url(client_id, "user/Patient.rs", challenge)))
    body = exchange(client, client_id, code, verifier).json()
    assert "refresh_token" not in body
    assert "patient" not in body
    assert not RefreshToken.objects.exists()


def test_no_fhir_user_for_someone_who_is_not_a_provider(client, sign_in, app_client, practice):
    desk = UserFactory(roles=[Role.FRONT_DESK])
    client_id = app_client.application.client_id
    sign_in(client, desk)
    verifier, challenge = pkce_pair()
    url = authorize_url(client_id, "openid fhirUser user/Patient.rs", challenge)
    body = exchange(client, client_id, code_from(consent_post(client, url)), verifier).json()
    claims = jwt_claims(body["id_token"])
    assert "fhirUser" not in claims
    assert claims["sub"] == str(desk.pk)


def test_deny_redirects_with_access_denied_and_is_audited(client, sign_in, doctor, app_client):
    sign_in(client, doctor)
    _, challenge = pkce_pair()
    url = authorize_url(app_client.application.client_id, "user/Patient.rs", challenge)
    response = consent_post(client, url, allow=False)
    assert response.status_code == 302
    assert parse_qs(urlsplit(response["Location"]).query)["error"] == ["access_denied"]
    assert AuditEvent.objects.filter(action="smart.access_denied", actor=doctor).exists()


def test_launch_patient_must_be_chosen(client, sign_in, doctor, app_client):
    sign_in(client, doctor)
    _, challenge = pkce_pair()
    url = authorize_url(app_client.application.client_id, "launch/patient patient/*.rs", challenge)
    response = consent_post(client, url)
    assert response.status_code == 302
    assert response["Location"].startswith("/oauth/authorize/")
    assert not AccessToken.objects.exists()


def test_a_patient_outside_the_users_reach_cannot_be_chosen(
    client, sign_in, app_client, patient, practice
):
    biller_free = UserFactory(roles=[Role.BILLER])
    sign_in(client, biller_free)
    _, challenge = pkce_pair()
    url = authorize_url(app_client.application.client_id, "launch/patient patient/*.rs", challenge)
    page = client.get(url)
    data = {k: v for k, v in page.context["form"].initial.items() if v is not None}
    data.update(allow="on", patient="00000000-0000-7000-8000-000000000000")
    response = client.post(url, data)
    assert response["Location"].startswith("/oauth/authorize/")


def test_unregistered_redirect_uri_is_not_followed(client, sign_in, doctor, app_client):
    sign_in(client, doctor)
    _, challenge = pkce_pair()
    url = authorize_url(app_client.application.client_id, "user/Patient.rs", challenge)
    response = client.get(url.replace("app.example.test", "evil.example.test"))
    assert response.status_code == 400


def test_another_fhir_server_as_audience_is_refused(client, sign_in, doctor, app_client):
    sign_in(client, doctor)
    _, challenge = pkce_pair()
    url = authorize_url(app_client.application.client_id, "user/Patient.rs", challenge).replace(
        "aud=http", "aud=https%3A%2F%2Fother.example.test%2Ffhir&x=http"
    )
    assert client.get(url).status_code == 400


def test_unknown_client_is_refused(client, sign_in, doctor, db):
    sign_in(client, doctor)
    _, challenge = pkce_pair()
    assert (
        client.get(authorize_url("no-such-client", "user/Patient.rs", challenge)).status_code == 400
    )


def test_anonymous_users_sign_in_first(client, app_client):
    _, challenge = pkce_pair()
    response = client.get(
        authorize_url(app_client.application.client_id, "user/Patient.rs", challenge)
    )
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_revoked_client_cannot_start_a_launch(client, sign_in, doctor, app_client):
    from ambula.smart.services import api_client_revoke

    api_client_revoke(actor=None, client=app_client)
    sign_in(client, doctor)
    _, challenge = pkce_pair()
    url = authorize_url(app_client.application.client_id, "user/Patient.rs", challenge)
    assert client.get(url).status_code == 400


def test_revocation_endpoint_revokes_and_audits(client, sign_in, doctor, app_client):
    client_id = app_client.application.client_id
    sign_in(client, doctor)
    verifier, challenge = pkce_pair()
    code = code_from(consent_post(client, authorize_url(client_id, "user/Patient.rs", challenge)))
    access = exchange(client, client_id, code, verifier).json()["access_token"]
    authenticate(bearer(access))
    response = client.post("/oauth/revoke/", {"token": access, "client_id": client_id})
    assert response.status_code == 200
    with pytest.raises(Unauthorized):
        authenticate(bearer(access))
    assert AuditEvent.objects.filter(action="smart.token_revoked").exists()


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"grant_type": "authorization_code"},
        {"grant_type": "password", "username": "x", "password": "y"},
        {"grant_type": "authorization_code", "code": "x" * 100000, "client_id": "y"},
        {"grant_type": "refresh_token", "refresh_token": "nope", "client_id": "nope"},
    ],
)
def test_bad_token_requests_are_refused(client, db, data):
    response = client.post("/oauth/token/", data)
    assert 400 <= response.status_code < 500
    assert not AccessToken.objects.exists()


def test_tampered_consent_form_issues_nothing(client, sign_in, doctor, app_client):
    sign_in(client, doctor)
    _, challenge = pkce_pair()
    url = authorize_url(app_client.application.client_id, "launch/patient patient/*.rs", challenge)
    data = {k: v for k, v in client.get(url).context["form"].initial.items() if v is not None}
    for tampered in ({"patient": "not-a-uuid"}, {"client_id": "someone-else"}, {"scope": ""}):
        response = client.post(url, {**data, "allow": "on", **tampered})
        assert response.status_code in (302, 400)
        assert not response.get("Location", "").startswith(REDIRECT_URI + "?code")
    assert not AccessToken.objects.exists()


def test_confidential_app_must_send_its_secret(client, sign_in, doctor, db):
    import base64

    registration = api_client_register(
        actor=None,
        name="Server app",
        kind="confidential_app",
        scopes="user/Patient.rs",
        redirect_uris=REDIRECT_URI,
    )
    client_id = registration.client_id
    sign_in(client, doctor)
    verifier, challenge = pkce_pair()
    code = code_from(consent_post(client, authorize_url(client_id, "user/Patient.rs", challenge)))
    assert exchange(client, client_id, code, verifier).status_code == 401
    credentials = base64.b64encode(f"{client_id}:{registration.client_secret}".encode()).decode()
    response = client.post(
        "/oauth/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        HTTP_AUTHORIZATION=f"Basic {credentials}",
    )
    assert response.status_code == 200, response.content


def test_a_deactivated_user_cannot_refresh(client, sign_in, doctor, app_client, admin_user):
    from ambula.accounts.services import user_deactivate

    client_id = app_client.application.client_id
    sign_in(client, doctor)
    verifier, challenge = pkce_pair()
    url = authorize_url(client_id, "offline_access user/Patient.rs", challenge)
    body = exchange(client, client_id, code_from(consent_post(client, url)), verifier).json()
    user_deactivate(actor=admin_user, user=doctor)
    response = client.post(
        "/oauth/token/",
        {
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "client_id": client_id,
        },
    )
    assert response.status_code == 400
    assert (
        "deactivated" in changes_of(AuditEvent.objects.get(action="smart.token_refused"))["reason"]
    )


def test_consent_is_asked_even_when_the_app_says_auto(client, sign_in, doctor, app_client):
    client_id = app_client.application.client_id
    sign_in(client, doctor)
    verifier, challenge = pkce_pair()
    url = authorize_url(client_id, "user/Patient.rs", challenge)
    exchange(client, client_id, code_from(consent_post(client, url)), verifier)
    _, challenge = pkce_pair()
    again = client.get(
        authorize_url(client_id, "user/Patient.rs", challenge, approval_prompt="auto")
    )
    assert again.status_code == 200
    assert b"Allow Chart Viewer?" in again.content
