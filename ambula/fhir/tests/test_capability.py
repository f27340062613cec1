"""GET /fhir/metadata says exactly what the server does."""

import pytest

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.fhir.tests.conftest import assert_valid

pytestmark = pytest.mark.django_db

ISSUE_TYPES = {
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
    "Coverage",
    "Condition",
    "AllergyIntolerance",
    "MedicationStatement",
    "DocumentReference",
    "Schedule",
    "Slot",
    "Appointment",
    "AuditEvent",
}
SAMPLE_VALUES = {
    "string": "a",
    "token": "x",
    "date": "ge2026-01-01",
    "reference": "Patient/0193a0c4-7a44-7c5e-8a8e-4d1c2f9a6b10",
    "special": "x",
}


@pytest.fixture
def statement(client):
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    assert_valid(response.json())
    return response.json()


@pytest.fixture
def everyone(practice):
    """A user whose roles open every type, so that only the statement decides."""
    return UserFactory(username="all1", roles=[Role.PHYSICIAN, Role.ADMIN, Role.FRONT_DESK])


def test_it_lists_the_types_of_the_issue_and_their_profiles(statement):
    resources = {entry["type"]: entry for entry in statement["rest"][0]["resource"]}
    assert set(resources) == ISSUE_TYPES
    assert resources["Patient"]["supportedProfile"] == [
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"
    ]
    security = statement["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    uris = {item["url"]: item["valueUri"] for item in security["extension"][0]["extension"]}
    assert uris["token"].endswith("/oauth/token/")
    assert uris["authorize"].endswith("/oauth/authorize/")


def test_every_listed_search_parameter_is_understood(statement, fhir, everyone):
    api = fhir(everyone)
    for entry in statement["rest"][0]["resource"]:
        for param in entry["searchParam"]:
            value = SAMPLE_VALUES[param["type"]]
            response = api.get(entry["type"], {param["name"]: value}, prefer="handling=strict")
            diagnostics = " ".join(
                issue.get("diagnostics", "") for issue in response.json().get("issue", [])
            )
            assert "Unknown search parameter" not in diagnostics, (entry["type"], param)
            assert response.status_code in (200, 400), (entry["type"], param, diagnostics)


def test_every_listed_type_searches_and_unlisted_writes_are_405(statement, fhir, everyone):
    api = fhir(everyone)
    for entry in statement["rest"][0]["resource"]:
        kind = entry["type"]
        codes = {item["code"] for item in entry["interaction"]}
        assert {"read", "search-type"} <= codes
        if kind != "Slot":  # a Slot search needs its schedule
            assert api.get(kind).status_code == 200, kind
        if "create" not in codes:
            assert api.post(kind, {"resourceType": kind}).status_code == 405, kind
        if "delete" not in codes:
            assert api.delete(f"{kind}/0193a0c4-7a44-7c5e-8a8e-4d1c2f9a6b10").status_code == 405


def test_an_unknown_parameter_is_ignored_and_said_or_refused_when_strict(fhir, everyone):
    api = fhir(everyone)
    lenient = api.get("Patient", {"shoe-size": "42"}).json()
    outcomes = [entry for entry in lenient["entry"] if entry["search"]["mode"] == "outcome"]
    assert "shoe-size" in outcomes[0]["resource"]["issue"][0]["diagnostics"]
    strict = api.get("Patient", {"shoe-size": "42"}, prefer="handling=strict")
    assert strict.status_code == 400
