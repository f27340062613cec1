"""A FHIR client on the Django test client with a real bearer token, and R4B validation."""

from __future__ import annotations

import json
from datetime import date

import pytest
from fhir.resources.R4B import get_fhir_model_class

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.patients.tests.factories import registered_patient
from ambula.smart.testing import issue_token, system_token


def assert_valid(resource: dict) -> None:
    """Every resource the server emits must validate against the R4B models, and so must
    everything inside a Bundle."""
    model = get_fhir_model_class(resource["resourceType"])
    model.model_validate(resource)
    for entry in resource.get("entry", []) if resource["resourceType"] == "Bundle" else []:
        if "resource" in entry:
            assert_valid(entry["resource"])


class FhirApi:
    """Calls /fhir/ as an app holding `token`; checks each answer's type and validity."""

    def __init__(self, client, token: str | None) -> None:
        self.client = client
        self.token = token

    def _headers(self, headers: dict) -> dict:
        found = {"HTTP_ACCEPT": "application/fhir+json"}
        if self.token:
            found["HTTP_AUTHORIZATION"] = f"Bearer {self.token}"
        for name, value in headers.items():
            found["HTTP_" + name.upper().replace("-", "_")] = value
        return found

    def _checked(self, response):
        if response.content:
            assert response["Content-Type"].startswith("application/fhir+json")
            assert_valid(response.json())
        return response

    def get(self, path: str, params: dict | None = None, **headers):
        return self._checked(
            self.client.get(f"/fhir/{path}", params or {}, **self._headers(headers))
        )

    def post(self, path: str, body: dict, **headers):
        return self._send("post", path, body, headers)

    def put(self, path: str, body: dict, **headers):
        return self._send("put", path, body, headers)

    def delete(self, path: str, **headers):
        return self._checked(self.client.delete(f"/fhir/{path}", **self._headers(headers)))

    def _send(self, method: str, path: str, body: dict, headers: dict):
        send = getattr(self.client, method)
        return self._checked(
            send(
                f"/fhir/{path}",
                data=json.dumps(body),
                content_type="application/fhir+json",
                **self._headers(headers),
            )
        )


@pytest.fixture
def fhir(client):
    """`fhir(user, scopes, patient=None)`: a FhirApi holding a fresh token for that user."""

    def make(user, scopes: str = "user/*.cruds", patient=None) -> FhirApi:
        return FhirApi(client, issue_token(user, scopes, patient=patient))

    return make


@pytest.fixture
def fhir_system(client):
    def make(scopes: str = "system/*.rs", role: str = Role.FRONT_DESK) -> FhirApi:
        return FhirApi(client, system_token(scopes, role=role))

    return make


@pytest.fixture
def front_desk(db, practice):
    return UserFactory(username="desk1", roles=[Role.FRONT_DESK])


@pytest.fixture
def nurse(db, practice):
    return UserFactory(username="nurse1", roles=[Role.NURSE])


@pytest.fixture
def privacy_officer(db, practice):
    return UserFactory(username="privacy1", roles=[Role.PRIVACY_OFFICER])


@pytest.fixture
def patient(front_desk):
    return registered_patient(actor=front_desk, date_of_birth=date(1970, 5, 1))
