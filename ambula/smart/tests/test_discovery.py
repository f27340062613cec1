"""Discovery documents and the OpenID Connect signing key."""

import os
import stat

from django.conf import settings

from ambula.smart import keys


def test_smart_configuration(client, db):
    response = client.get("/.well-known/smart-configuration")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    body = response.json()
    assert body["authorization_endpoint"] == "http://testserver/oauth/authorize/"
    assert body["token_endpoint"] == "http://testserver/oauth/token/"
    assert body["issuer"] == "http://testserver/oauth"
    assert "private_key_jwt" in body["token_endpoint_auth_methods_supported"]
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert {"authorization_code", "client_credentials", "refresh_token"} <= set(
        body["grant_types_supported"]
    )
    assert {
        "launch-standalone",
        "client-public",
        "client-confidential-symmetric",
        "client-confidential-asymmetric",
        "context-standalone-patient",
        "permission-offline",
        "permission-v2",
        "permission-v1",
        "sso-openid-connect",
        "authorize-post",
    } <= set(body["capabilities"])
    assert client.post("/.well-known/smart-configuration").status_code == 405


def test_openid_configuration_and_keys_agree(client, db):
    discovery = client.get("/oauth/.well-known/openid-configuration").json()
    assert discovery["issuer"] == "http://testserver/oauth"
    keys_document = client.get("/oauth/.well-known/jwks.json").json()
    assert keys_document["keys"][0]["kty"] == "RSA"
    assert "d" not in keys_document["keys"][0]


def test_signing_key_is_created_once_and_private(tmp_path, settings, monkeypatch):
    monkeypatch.delenv(keys.KEY_VARIABLE, raising=False)
    settings.KEYS_DIR = tmp_path / "keys"
    first = keys.oidc_private_key()
    path = tmp_path / "keys" / keys.KEY_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "PRIVATE KEY" in first
    keys._cached.clear()
    assert keys.oidc_private_key() == first


def test_signing_key_from_the_environment(monkeypatch):
    monkeypatch.setenv(keys.KEY_VARIABLE, "-----BEGIN PRIVATE KEY-----\nx\n")
    assert keys.oidc_private_key().startswith("-----BEGIN PRIVATE KEY-----")
    assert settings.OAUTH2_PROVIDER["PKCE_REQUIRED"] is True
