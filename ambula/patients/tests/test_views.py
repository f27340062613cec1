import uuid
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.utils.timezone import localdate

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.patients.models import Patient
from ambula.patients.mrn import mrn_from_number
from ambula.patients.services import patient_register
from ambula.patients.tests.factories import JOSE

pytestmark = pytest.mark.django_db

FORM = {
    "given_name": "José",
    "family_name": "Rivera",
    "date_of_birth": "1984-03-07",
    "administrative_sex": "M",
    "mobile_phone": "217 555 0140",
    "email": "jose.rivera@example.test",
    "state": "il",
    "postal_code": "62701",
}


@pytest.fixture
def desk_client(client, sign_in, practice, front_desk):
    return sign_in(client, front_desk)


@pytest.fixture
def jose(front_desk):
    return patient_register(actor=front_desk, **JOSE)


def chart_views():
    return AuditEvent.objects.filter(action="patients.chart_viewed")


def test_the_front_desk_searches_patients(desk_client, jose):
    response = desk_client.get("/patients/")
    assert response.status_code == 200
    assert response.context["patients"] == []
    assert b"Register a patient" in response.content

    response = desk_client.get("/patients/", {"q": "rivera, jo"})
    assert response.status_code == 200
    assert response.context["patients"] == [jose]
    assert b"<html" in response.content
    assert jose.mrn.encode() in response.content
    assert f"/patients/{jose.pk}/".encode() in response.content


def test_an_htmx_search_returns_only_the_results(desk_client, jose):
    response = desk_client.get("/patients/", {"q": "rivera"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert [template.name for template in response.templates] == ["patients/_results.html"]
    assert b"<html" not in response.content
    assert jose.mrn.encode() in response.content


def test_a_search_without_results_says_so(desk_client, jose):
    response = desk_client.get("/patients/", {"q": "nobody"}, headers={"HX-Request": "true"})
    assert "No patient matches “nobody”" in response.content.decode()


def test_registration_redirects_to_the_chart_with_a_message(desk_client):
    response = desk_client.post("/patients/new/", FORM)
    patient = Patient.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/patients/{patient.pk}/"
    assert [str(message) for message in get_messages(response.wsgi_request)] == [
        f"Registered José Rivera, MRN {mrn_from_number(1)}."
    ]
    # The form shapes the input before the service stores it.
    assert (patient.mobile_phone, patient.state) == ("(217) 555-0140", "IL")
    assert patient.ssn is None


def test_the_registration_form_shows_for_the_front_desk(desk_client):
    response = desk_client.get("/patients/new/")
    assert response.status_code == 200
    assert b'name="given_name"' in response.content
    assert b"Register anyway" not in response.content


def test_a_likely_duplicate_asks_before_registering(desk_client, jose):
    response = desk_client.post("/patients/new/", {**FORM, "given_name": "Joe"})
    assert response.status_code == 200
    content = response.content.decode()
    assert "This patient may already be registered" in content
    assert f"/patients/{jose.pk}/" in content
    assert "Register anyway" in content
    assert 'name="allow_duplicate" value="on"' in content
    assert Patient.objects.count() == 1

    response = desk_client.post(
        "/patients/new/", {**FORM, "given_name": "Joe", "allow_duplicate": "on"}
    )
    assert response.status_code == 302
    assert Patient.objects.count() == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mobile_phone", "555-01"),
        ("postal_code", "6270"),
        ("ssn", "123-45-678"),
        ("email", "jose@"),
        ("date_of_birth", "1984-02-30"),
    ],
)
def test_field_errors_are_shown_and_nothing_is_registered(desk_client, field, value):
    response = desk_client.post("/patients/new/", {**FORM, field: value})
    assert response.status_code == 200
    assert list(response.context["form"].errors) == [field]
    assert not Patient.objects.exists()


def test_a_date_of_birth_in_the_future_is_a_field_error(desk_client):
    born = (localdate() + timedelta(days=1)).isoformat()
    response = desk_client.post("/patients/new/", {**FORM, "date_of_birth": born})
    assert response.status_code == 200
    assert response.context["form"].errors["date_of_birth"] == [
        "The date of birth is in the future."
    ]
    assert not Patient.objects.exists()


def test_an_ssn_typed_without_dashes_is_kept(desk_client):
    desk_client.post("/patients/new/", {**FORM, "ssn": "123456789"})
    assert Patient.objects.get().ssn == "123456789"


def test_the_chart_records_one_view(desk_client, front_desk, jose):
    response = desk_client.get(f"/patients/{jose.pk}/")
    assert response.status_code == 200
    assert jose.mrn.encode() in response.content
    event = chart_views().get()
    assert event.patient_id == jose.pk
    assert event.category == "demographics"
    assert event.actor == front_desk


def test_an_unknown_chart_is_404_and_records_nothing(desk_client, jose):
    response = desk_client.get(f"/patients/{uuid.uuid4()}/")
    assert response.status_code == 404
    assert not chart_views().exists()


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("url", ["/patients/", "/patients/new/", "chart"])
def test_a_portal_user_is_refused_everywhere(client, sign_in, practice, jose, url, method):
    sign_in(client, UserFactory(roles=[Role.PATIENT]))
    if url == "chart":
        url = f"/patients/{jose.pk}/"
    response = getattr(client, method)(url, FORM if method == "post" else {"q": "rivera"})
    assert response.status_code == 403
    assert Patient.objects.count() == 1
    assert not chart_views().exists()
    assert not AuditEvent.objects.filter(action="patients.searched").exists()


def test_a_biller_may_search_but_not_register(client, sign_in, practice, jose):
    sign_in(client, UserFactory(roles=[Role.BILLER]))
    assert client.get("/patients/", {"q": "rivera"}).context["patients"] == [jose]
    assert client.get(f"/patients/{jose.pk}/").status_code == 200
    assert client.get("/patients/new/").status_code == 403
    assert client.post("/patients/new/", {**FORM, "given_name": "Ana"}).status_code == 403
    assert Patient.objects.count() == 1


def test_anonymous_users_are_sent_to_sign_in(client, practice, jose):
    response = client.get(f"/patients/{jose.pk}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert not chart_views().exists()


def test_registering_without_a_csrf_token_is_refused(sign_in, practice, front_desk):
    client = sign_in(Client(enforce_csrf_checks=True), front_desk)
    response = client.post("/patients/new/", FORM)
    assert response.status_code == 403
    assert not Patient.objects.exists()
