"""The engine itself: authentication, content negotiation, errors, the CapabilityStatement."""

import pytest

from ambula.fhir.tests.conftest import FhirApi, assert_valid
from ambula.smart.services import api_client_register, api_client_revoke
from ambula.smart.testing import issue_token

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


def test_an_expired_token_is_401(client, front_desk, patient):
    api = FhirApi(client, issue_token(front_desk, "user/*.rs", expires_in=-1))
    response = api.get(f"Patient/{patient.pk}")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_a_token_of_a_revoked_client_is_401(client, front_desk, admin_user, patient):
    api_client = api_client_register(
        actor=admin_user,
        name="Soon gone",
        kind="app",
        scopes="user/*.rs",
        redirect_uris="https://app.example.test/callback",
    ).client
    api = FhirApi(client, issue_token(front_desk, "user/*.rs", client=api_client))
    assert api.get(f"Patient/{patient.pk}").status_code == 200
    api_client_revoke(actor=admin_user, client=api_client)
    assert api.get(f"Patient/{patient.pk}").status_code == 401


def test_a_token_of_a_deactivated_user_is_401(client, front_desk, patient):
    api = FhirApi(client, issue_token(front_desk, "user/*.rs"))
    front_desk.is_active = False
    front_desk.save(update_fields=["is_active"])
    assert api.get(f"Patient/{patient.pk}").status_code == 401


def test_a_scope_wider_than_the_role_grants_only_the_role(fhir, front_desk, patient):
    """The front desk's user/*.cruds token: demographics yes, the clinical chart no."""
    api = fhir(front_desk, "user/*.cruds")
    assert api.get(f"Patient/{patient.pk}").status_code == 200
    assert api.get("Condition", {"patient": str(patient.pk)}).status_code == 403
    assert api.get("AuditEvent").status_code == 403


def test_a_scope_narrower_than_the_role_grants_only_the_scope(fhir, front_desk, patient):
    api = fhir(front_desk, "user/Patient.r")
    assert api.get(f"Patient/{patient.pk}").status_code == 200
    assert api.get("Patient").status_code == 403  # search is "s", not granted
    body = api.get(f"Patient/{patient.pk}").json()
    assert api.put(f"Patient/{patient.pk}", body).status_code == 403
