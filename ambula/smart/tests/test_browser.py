"""The authorization-code flow in a real browser: sign in, pick a patient, approve, exchange."""

import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from playwright.sync_api import expect

from ambula.accounts.tests.factories import TEST_PASSWORD
from ambula.core.services import practice_create
from ambula.smart.services import api_client_register
from ambula.smart.tests.oauth_helpers import pkce_pair

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REDIRECT_URI = "http://localhost:9/callback"


def test_standalone_launch_in_the_browser(page, live_server, physician, patient):
    practice_create(actor=None, name="Lakeside Family Practice", mfa_required=False)
    app = api_client_register(
        actor=None,
        name="Chart Viewer",
        kind="app",
        scopes="openid fhirUser launch/patient patient/*.rs",
        redirect_uris=REDIRECT_URI,
    )
    # The app's own page is not running; answer for it so the browser can land there.
    page.route(f"{REDIRECT_URI}**", lambda route: route.fulfill(status=200, body="app"))
    verifier, challenge = pkce_pair()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "openid fhirUser launch/patient patient/*.rs",
            "state": "browser-state",
            "aud": f"{live_server.url}/fhir",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    page.goto(f"{live_server.url}/oauth/authorize/?{query}")

    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
    page.get_by_label("Username").fill(physician.username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", name="Allow Chart Viewer?")).to_be_visible()
    page.get_by_label("Find by name, date of birth or MRN").fill("Okafor")
    page.get_by_role("button", name="Search").click()
    page.get_by_label(re.compile("Okafor, Ada")).check()
    with page.expect_request(re.compile(re.escape(REDIRECT_URI))) as landed:
        page.get_by_role("button", name="Allow").click()

    query = parse_qs(urlsplit(landed.value.url).query)
    assert query["state"] == ["browser-state"]
    response = requests.post(
        f"{live_server.url}/oauth/token/",
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": REDIRECT_URI,
            "client_id": app.client_id,
            "code_verifier": verifier,
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["patient"] == str(patient.pk)
    assert page.console_errors == []
