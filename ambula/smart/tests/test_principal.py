from datetime import timedelta

import pytest
from django.test import RequestFactory
from django.utils.timezone import now as timezone_now
from oauth2_provider.models import AccessToken

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.smart.models import ApiClient
from ambula.smart.principal import Grant, Unauthorized, authenticate
from ambula.smart.services import api_client_revoke
from ambula.smart.testing import issue_token, system_token


def bearer(token: str):
    return RequestFactory().get("/fhir/Patient", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_patient_token_is_confined_to_its_patient(front_desk, patient):
    token = issue_token(front_desk, "launch/patient patient/*.rs", patient=patient)
    principal = authenticate(bearer(token))
    assert principal.user == front_desk
    assert principal.patient_id == patient.id
    assert principal.grant("Patient", "r") == Grant(patient.id)
    assert principal.grant("Appointment", "s") == Grant(patient.id)
    assert principal.grant("Patient", "u") is None
    assert principal.client_name.startswith("Test app")
    assert principal.client_id


def test_patient_scope_without_a_launch_patient_grants_nothing(front_desk):
    principal = authenticate(bearer(issue_token(front_desk, "patient/*.rs")))
    assert principal.patient_id is None
    assert principal.grant("Patient", "r") is None


def test_user_scope_is_not_confined(front_desk, patient):
    token = issue_token(front_desk, "patient/*.rs user/Appointment.cruds", patient=patient)
    principal = authenticate(bearer(token))
    assert principal.grant("Appointment", "c") == Grant(None)
    assert principal.grant("Appointment", "r") == Grant(None)
    assert principal.grant("Patient", "r") == Grant(patient.id)


def test_system_token_acts_as_the_service_account(db):
    principal = authenticate(bearer(system_token("system/Patient.rs", role=Role.BILLER)))
    assert principal.user.roles == [Role.BILLER]
    assert not principal.user.has_usable_password()
    assert principal.grant("Patient", "s") == Grant(None)
    assert principal.grant("Patient", "c") is None
    client = ApiClient.objects.get(application__client_id=principal.client_id)
    assert client.service_user == principal.user


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic abc",
        "Bearer nope",
        "Bearer " + "x" * 10000,
        "Bearer é",
    ],
)
def test_missing_or_bad_header_is_unauthorized(db, header):
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
    with pytest.raises(Unauthorized):
        authenticate(RequestFactory().get("/fhir/Patient", **extra))


def test_expired_token_is_unauthorized(front_desk):
    token = issue_token(front_desk, "user/*.rs", expires_in=-1)
    with pytest.raises(Unauthorized, match="expired"):
        authenticate(bearer(token))


def test_revoked_token_is_unauthorized(front_desk):
    token = issue_token(front_desk, "user/*.rs")
    authenticate(bearer(token))
    AccessToken.objects.get(user=front_desk).revoke()
    with pytest.raises(Unauthorized):
        authenticate(bearer(token))


def test_revoked_client_is_unauthorized(front_desk):
    token = issue_token(front_desk, "user/*.rs")
    client = ApiClient.objects.get()
    api_client_revoke(actor=None, client=client)
    with pytest.raises(Unauthorized):
        authenticate(bearer(token))


def test_inactive_user_is_unauthorized(front_desk):
    token = issue_token(front_desk, "user/*.rs")
    admin = UserFactory(roles=[Role.ADMIN])
    from ambula.accounts.services import user_deactivate

    user_deactivate(actor=admin, user=front_desk)
    with pytest.raises(Unauthorized, match="not active"):
        authenticate(bearer(token))


def test_token_is_stored_only_as_its_hash(front_desk):
    token = issue_token(front_desk, "user/*.rs")
    row = AccessToken.objects.get(user=front_desk)
    assert row.token == ""
    assert token not in row.token_checksum
    assert row.expires > timezone_now() + timedelta(minutes=59)


def test_authenticate_is_one_query(front_desk, patient, django_assert_num_queries):
    # Its speed is measured in bench/fhir_api.py, not asserted here.
    token = issue_token(front_desk, "patient/*.rs", patient=patient)
    request = bearer(token)
    with django_assert_num_queries(1):
        principal = authenticate(request)
    assert principal.patient_id == patient.pk
