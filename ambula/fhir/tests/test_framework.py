"""The engine itself: authentication, content negotiation, errors, the CapabilityStatement."""

import pytest

from ambula.fhir.tests.conftest import FhirApi, assert_valid

pytestmark = pytest.mark.django_db


def test_metadata_needs_no_token_and_lists_the_registered_types(client):
    response = client.get("/fhir/metadata", HTTP_ACCEPT="application/fhir+json")
    assert response.status_code == 200
    statement = response.json()
    assert_valid(statement)
    assert statement["fhirVersion"] == "4.0.1"


def test_a_request_without_a_token_is_401_with_www_authenticate(client):
    response = client.get("/fhir/Patient")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith('Bearer realm="ambula"')
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "login"


def test_a_made_up_token_is_401(client):
    response = FhirApi(client, "not-a-real-token").get("Patient")
    assert response.status_code == 401


def test_xml_is_refused_with_an_outcome(client, fhir, front_desk):
    api = fhir(front_desk)
    response = api.client.get(
        "/fhir/Patient",
        HTTP_ACCEPT="application/fhir+xml",
        HTTP_AUTHORIZATION=f"Bearer {api.token}",
    )
    assert response.status_code == 406
    assert response.json()["resourceType"] == "OperationOutcome"
    response = api.client.get("/fhir/Patient?_format=xml", HTTP_AUTHORIZATION=f"Bearer {api.token}")
    assert response.status_code == 415


def test_an_unknown_resource_type_is_404_not_supported(fhir, front_desk):
    response = fhir(front_desk).get("Spaceship")
    assert response.status_code == 404
    assert response.json()["issue"][0]["code"] == "not-supported"


def test_malformed_json_is_400_and_a_non_fhir_body_415(client, fhir, front_desk):
    api = fhir(front_desk)
    response = api.client.post(
        "/fhir/Patient",
        data="{not json",
        content_type="application/fhir+json",
        HTTP_AUTHORIZATION=f"Bearer {api.token}",
    )
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "structure"
    response = api.client.post(
        "/fhir/Patient",
        data="<Patient/>",
        content_type="application/fhir+xml",
        HTTP_AUTHORIZATION=f"Bearer {api.token}",
    )
    assert response.status_code == 415
