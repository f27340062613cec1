"""SMART Backend Services (signed JWT assertions) and internal clients (client secret)."""

import base64
import time
import uuid

import pytest
from django.test import RequestFactory
from jwcrypto import jwk, jwt
from oauth2_provider.models import AccessToken

from ambula.accounts.roles import Role
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.smart.principal import Grant, authenticate
from ambula.smart.services import api_client_register

TOKEN_URL = "http://testserver/oauth/token/"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def rsa_key(kid="key-1"):
    return jwk.JWK.generate(kty="RSA", size=2048, kid=kid)


def ec_key(kid="key-ec"):
    return jwk.JWK.generate(kty="EC", crv="P-384", kid=kid)


def public_set(*keys):
    return {"keys": [key.export_public(as_dict=True) for key in keys]}


def assertion(key, client_id, *, alg="RS384", kid=None, **claims):
    body = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "exp": int(time.time()) + 240,
        "jti": str(uuid.uuid4()),
        **claims,
    }
    token = jwt.JWT(
        header={"alg": alg, "kid": kid or key.get("kid"), "typ": "JWT"},
        claims=body,
        expected_type="JWS",
    )
    token.make_signed_token(key)
    return token.serialize()


def ask(client, signed, scope="system/Patient.rs"):
    return client.post(
        "/oauth/token/",
        {
            "grant_type": "client_credentials",
            "scope": scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": signed,
        },
    )


@pytest.fixture
def key():
    return rsa_key()


@pytest.fixture
def backend(db, key):
    return api_client_register(
        actor=None,
        name="Population health",
        kind="backend",
        scopes="system/Patient.rs system/Appointment.rs",
        jwks=public_set(key),
        role=Role.FRONT_DESK,
    ).client


def bearer(token):
    return RequestFactory().get("/fhir/Patient", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_good_assertion_gets_a_system_token(client, backend, key):
    client_id = backend.application.client_id
    response = ask(client, assertion(key, client_id), scope="system/Patient.rs system/*.cruds")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["scope"] == "system/Appointment.rs system/Patient.rs"
    assert "refresh_token" not in body
    principal = authenticate(bearer(body["access_token"]))
    assert principal.user == backend.service_user
    assert principal.user.roles == [Role.FRONT_DESK]
    assert principal.grant("Patient", "s") == Grant(None)
    assert principal.grant("Patient", "c") is None
    issued = AuditEvent.objects.get(action="smart.token_issued")
    assert issued.actor == backend.service_user
    assert changes_of(issued)["grant_type"] == "client_credentials"


def test_es384_keys_work_too(client, db):
    key = ec_key()
    backend = api_client_register(
        actor=None,
        name="EC",
        kind="backend",
        scopes="system/*.rs",
        jwks=public_set(key),
        role=Role.BILLER,
    ).client
    response = ask(client, assertion(key, backend.application.client_id, alg="ES384"))
    assert response.status_code == 200, response.content


def refused(client, signed, scope="system/Patient.rs"):
    response = ask(client, signed, scope)
    assert response.status_code in (400, 401), response.content
    assert not AccessToken.objects.exists()
    return changes_of(AuditEvent.objects.filter(action="smart.token_refused").latest("sequence"))


def test_wrong_key_is_refused(client, backend):
    impostor = rsa_key("key-1")  # same kid, different key
    reason = refused(client, assertion(impostor, backend.application.client_id))
    assert "signature" in reason["reason"]


def test_unknown_kid_is_refused(client, backend, key):
    reason = refused(client, assertion(key, backend.application.client_id, kid="other"))
    assert "kid" in reason["reason"]


def test_replayed_jti_is_refused(client, backend, key):
    signed = assertion(key, backend.application.client_id)
    assert ask(client, signed).status_code == 200
    response = ask(client, signed)
    assert response.status_code == 401
    reason = changes_of(AuditEvent.objects.get(action="smart.token_refused"))
    assert "jti" in reason["reason"]


def test_wrong_audience_is_refused(client, backend, key):
    signed = assertion(key, backend.application.client_id, aud="https://elsewhere.test/token")
    assert "aud" in refused(client, signed)["reason"]


def test_expired_assertion_is_refused(client, backend, key):
    signed = assertion(key, backend.application.client_id, exp=int(time.time()) - 120)
    assert "expired" in refused(client, signed)["reason"]


def test_assertion_valid_too_long_is_refused(client, backend, key):
    signed = assertion(key, backend.application.client_id, exp=int(time.time()) + 3600)
    assert "five minutes" in refused(client, signed)["reason"]


def test_sub_must_be_the_client(client, backend, key):
    signed = assertion(key, backend.application.client_id, sub="someone-else")
    assert "sub" in refused(client, signed)["reason"]


def test_missing_jti_is_refused(client, backend, key):
    signed = assertion(key, backend.application.client_id, jti="")
    assert "jti" in refused(client, signed)["reason"]


def test_symmetric_algorithm_is_refused(client, backend):
    secret = jwk.JWK.generate(kty="oct", size=256, kid="key-1")
    signed = assertion(secret, backend.application.client_id, alg="HS256")
    assert "RS384" in refused(client, signed)["reason"]


@pytest.mark.parametrize("garbage", ["", "not-a-jwt", "a.b.c", "x" * 20000, "é.é.é"])
def test_malformed_assertions_are_refused(client, backend, garbage):
    refused(client, garbage)


def test_wrong_assertion_type_is_refused(client, backend, key):
    response = client.post(
        "/oauth/token/",
        {
            "grant_type": "client_credentials",
            "scope": "system/Patient.rs",
            "client_assertion_type": "urn:something:else",
            "client_assertion": assertion(key, backend.application.client_id),
        },
    )
    assert response.status_code == 401


def test_only_system_scopes(client, backend, key):
    response = ask(client, assertion(key, backend.application.client_id), scope="patient/*.rs")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_revoked_backend_is_refused(client, backend, key):
    from ambula.smart.services import api_client_revoke

    api_client_revoke(actor=None, client=backend)
    refused(client, assertion(key, backend.application.client_id))


@pytest.fixture
def internal(db):
    return api_client_register(
        actor=None,
        name="Lab interface",
        kind="internal",
        scopes="system/Patient.rs",
        role=Role.NURSE,
    )


def basic(client_id, secret):
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def test_internal_client_with_its_secret(client, internal):
    response = client.post(
        "/oauth/token/",
        {"grant_type": "client_credentials", "scope": "system/Patient.rs"},
        HTTP_AUTHORIZATION=basic(internal.client_id, internal.client_secret),
    )
    assert response.status_code == 200, response.content
    principal = authenticate(bearer(response.json()["access_token"]))
    assert principal.user.roles == [Role.NURSE]


def test_internal_client_with_a_wrong_secret(client, internal):
    response = client.post(
        "/oauth/token/",
        {"grant_type": "client_credentials", "scope": "system/Patient.rs"},
        HTTP_AUTHORIZATION=basic(internal.client_id, "wrong"),
    )
    assert response.status_code == 401
    refusal = AuditEvent.objects.get(action="smart.token_refused")
    assert refusal.actor_username == internal.client_id


def test_a_backend_cannot_use_a_secret(client, backend):
    response = client.post(
        "/oauth/token/",
        {
            "grant_type": "client_credentials",
            "scope": "system/Patient.rs",
            "client_id": backend.application.client_id,
            "client_secret": "anything",
        },
    )
    assert response.status_code == 401


def test_an_app_cannot_use_client_credentials(client, db):
    from ambula.smart.tests.oauth_helpers import REDIRECT_URI

    app = api_client_register(
        actor=None,
        name="App",
        kind="confidential_app",
        scopes="user/*.rs",
        redirect_uris=REDIRECT_URI,
    )
    response = client.post(
        "/oauth/token/",
        {"grant_type": "client_credentials", "scope": "user/*.rs"},
        HTTP_AUTHORIZATION=basic(app.client_id, app.client_secret),
    )
    assert response.status_code in (400, 401)
    assert not AccessToken.objects.exists()


def test_introspection_needs_client_authentication(client, internal):
    token = client.post(
        "/oauth/token/",
        {"grant_type": "client_credentials", "scope": "system/Patient.rs"},
        HTTP_AUTHORIZATION=basic(internal.client_id, internal.client_secret),
    ).json()["access_token"]
    assert client.post("/oauth/introspect/", {"token": token}).status_code == 401
    response = client.post(
        "/oauth/introspect/",
        {"token": token},
        HTTP_AUTHORIZATION=basic(internal.client_id, internal.client_secret),
    )
    assert response.status_code == 200
    assert response.json()["active"] is True
