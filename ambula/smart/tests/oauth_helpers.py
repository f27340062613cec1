"""Drive the OAuth endpoints like a client would: PKCE, the consent form, the token call."""

import base64
import hashlib
import json
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

REDIRECT_URI = "https://app.example.test/callback"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_url(client_id: str, scope: str, challenge: str | None, **extra) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "state": "state-123",
        "aud": "http://testserver/fhir",
        **({"code_challenge": challenge, "code_challenge_method": "S256"} if challenge else {}),
        **extra,
    }
    return "/oauth/authorize/?" + urlencode(params)


def consent_post(client, url: str, *, allow: bool = True, patient=None):
    """Submit the consent form shown at `url` as the browser would."""
    page = client.get(url)
    assert page.status_code == 200, page.content[:500]
    form = page.context["form"]
    data = {
        name: value
        for name, value in form.initial.items()
        if value is not None and name not in ("allow", "patient")
    }
    if allow:
        data["allow"] = "on"
    if patient is not None:
        data["patient"] = str(patient.pk)
    return client.post(url, data)


def code_from(response) -> str:
    assert response.status_code == 302, response.status_code
    location = response["Location"]
    assert location.startswith(REDIRECT_URI), location
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["state-123"]
    return query["code"][0]


def exchange(client, client_id: str, code: str, verifier: str):
    return client.post(
        "/oauth/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": client_id,
            "code_verifier": verifier,
        },
    )


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
