"""A peer system's view of the API: a registered client, a real token from the token endpoint,
and an off-the-shelf FHIR client (fhirpy) talking HTTP to the live server.

Records are seeded through the services, but no token is minted and no API call is made
in-process: if the token endpoint, the scopes or the wire format drift from what a standard
client expects, these tests say so.
"""

from __future__ import annotations

import base64
import hashlib
import io
import secrets
import uuid
from datetime import date, time, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import AuthorizationError, MultipleResourcesFound, ResourceNotFound
from PIL import Image

from ambula.accounts.roles import Role
from ambula.accounts.services import user_roles_change
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.fhir.tests.conftest import assert_valid
from ambula.patients.allergies import allergy_add
from ambula.patients.coverage import coverage_add, payer_create
from ambula.patients.documents import document_upload
from ambula.patients.medications import medication_add
from ambula.patients.models import Patient
from ambula.patients.problems import problem_add
from ambula.patients.services import patient_register
from ambula.scheduling.availability import wall_clock
from ambula.scheduling.booking import appointment_book
from ambula.scheduling.tests.factories import (
    make_block,
    make_location,
    make_provider,
    make_room,
    make_type,
)
from ambula.smart.services import api_client_register
from ambula.terminology.tests.factories import load_sample_codes

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN_PATH = "/oauth/token/"
FHIR_JSON = "application/fhir+json"


def register_internal(role: str, scopes: str = "system/*.cruds"):
    """An integration registered as the operator's CLI would: client id and secret."""
    return api_client_register(
        actor=None,
        name=f"Peer system {uuid.uuid4().hex[:6]}",
        kind="internal",
        scopes=scopes,
        role=role,
    )


def token_from_endpoint(live_server, registration, scope: str) -> dict:
    """client_credentials against the real token endpoint, secret in HTTP Basic."""
    response = requests.post(
        f"{live_server.url}{TOKEN_PATH}",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(registration.client_id, registration.client_secret),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["token_type"].lower() == "bearer"
    assert answer["expires_in"] > 0
    return answer


def peer(live_server, token: str, **headers) -> SyncFHIRClient:
    return SyncFHIRClient(
        f"{live_server.url}/fhir", authorization=f"Bearer {token}", extra_headers=headers or None
    )


def raw(live_server, token: str, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}", "Accept": FHIR_JSON} | kwargs.pop("headers", {})
    response = requests.request(
        method, f"{live_server.url}/fhir/{path}", headers=headers, timeout=10, **kwargs
    )
    if response.content:
        assert response.headers["Content-Type"].startswith(FHIR_JSON)
        assert_valid(response.json())
    return response


@pytest.fixture
def desk_token(live_server, practice):
    registration = register_internal(Role.FRONT_DESK)
    answer = token_from_endpoint(live_server, registration, "system/*.cruds")
    return answer["access_token"], registration


def test_the_token_endpoint_refuses_a_wrong_secret_and_an_unknown_client(live_server, practice):
    registration = register_internal(Role.FRONT_DESK)
    for auth in ((registration.client_id, "not-the-secret"), ("no-such-client", "x")):
        response = requests.post(
            f"{live_server.url}{TOKEN_PATH}",
            data={"grant_type": "client_credentials", "scope": "system/*.rs"},
            auth=auth,
            timeout=10,
        )
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
    assert AuditEvent.objects.filter(action="smart.token_refused").count() == 2
    assert not AuditEvent.objects.filter(action="smart.token_issued").exists()


def test_the_token_endpoint_never_grants_more_than_the_client_was_registered_for(
    live_server, practice
):
    registration = register_internal(Role.FRONT_DESK, scopes="system/Patient.rs")
    response = requests.post(
        f"{live_server.url}{TOKEN_PATH}",
        data={"grant_type": "client_credentials", "scope": "system/Patient.cruds"},
        auth=(registration.client_id, registration.client_secret),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"].split() == ["system/Patient.rs"]
    token = response.json()["access_token"]
    assert raw(live_server, token, "GET", "Patient").status_code == 200
    created = raw(live_server, token, "POST", "Patient", json=a_patient("Narrow"))
    assert created.status_code == 403
    assert raw(live_server, token, "GET", "Appointment").status_code == 403
    assert not Patient.objects.filter(family_name="Narrow").exists()


def test_no_token_or_a_made_up_one_is_refused_by_fhirpy(live_server, practice):
    for authorization in (None, "Bearer made-up-token"):
        client = SyncFHIRClient(f"{live_server.url}/fhir", authorization=authorization)
        with pytest.raises(AuthorizationError):
            client.resources("Patient").fetch()


def a_patient(family: str, **extra) -> dict:
    """A new patient; the duplicate check compares names and birth dates, so each differs."""
    number = sum(family.encode()) % 28 + 1
    return {
        "resourceType": "Patient",
        "name": [{"family": family, "given": [f"Adaeze{family[:3]}"]}],
        "gender": "female",
        "birthDate": f"19{50 + len(family) % 40}-03-{number:02d}",
        **extra,
    }


def test_fhirpy_creates_reads_searches_and_updates_a_patient(live_server, desk_token):
    token, registration = desk_token
    client = peer(live_server, token)

    adaeze = a_patient(
        "Okonkwo-Peer",
        name=[{"family": "Okonkwo-Peer", "given": ["Adaeze"]}],
        birthDate="1984-03-07",
    )
    created = client.resource("Patient", **adaeze)
    created.save()
    assert created.id
    assert created["meta"]["versionId"] == "1"
    patient = Patient.objects.get(pk=created.id)
    assert (patient.family_name, patient.given_name) == ("Okonkwo-Peer", "Adaeze")
    assert patient.date_of_birth == date(1984, 3, 7)

    read = client.reference("Patient", created.id).to_resource()
    assert read["name"][0]["family"] == "Okonkwo-Peer"
    assert read["birthDate"] == "1984-03-07"

    by_name = client.resources("Patient").search(name="Okonkwo").fetch_all()
    assert [found.id for found in by_name] == [created.id]
    assert client.resources("Patient").search(name="Nobody-Called-This").fetch_all() == []
    by_birthdate = client.resources("Patient").search(birthdate="1984-03-07").fetch_all()
    assert created.id in [found.id for found in by_birthdate]
    assert client.resources("Patient").search(birthdate="1901-01-01").fetch_all() == []
    assert client.resources("Patient").search(name="Okonkwo").count() == 1

    read["name"][0]["given"] = ["Ada"]
    read.save()
    assert read["meta"]["versionId"] == "2"
    patient.refresh_from_db()
    assert patient.given_name == "Ada"
    assert client.reference("Patient", created.id).to_resource()["name"][0]["given"] == ["Ada"]

    # A stale If-Match loses; the current one wins.
    stale = peer(live_server, token, **{"If-Match": 'W/"1"'})
    with pytest.raises(MultipleResourcesFound):  # fhirpy's name for any 412
        stale.resource("Patient", id=created.id, **a_patient("Stale")).save()
    patient.refresh_from_db()
    assert patient.family_name == "Okonkwo-Peer"
    current = peer(live_server, token, **{"If-Match": 'W/"2"'})
    current.resource("Patient", id=created.id, **adaeze).save()
    answer = raw(live_server, token, "GET", f"Patient/{created.id}")
    assert answer.headers["ETag"] == 'W/"3"'
    assert answer.json()["name"][0]["given"] == ["Adaeze"]

    with pytest.raises(ResourceNotFound):
        client.reference("Patient", str(uuid.uuid4())).to_resource()

    reads = AuditEvent.objects.filter(action="fhir.read", patient_id=patient.pk)
    assert reads.exists()
    assert all(changes_of(event)["client"] == registration.client_id for event in reads)
    assert AuditEvent.objects.filter(action="fhir.created", patient_id=patient.pk).count() == 1
    assert AuditEvent.objects.filter(action="fhir.updated", patient_id=patient.pk).count() == 2


def test_a_retried_conditional_create_does_not_register_the_patient_twice(live_server, desk_token):
    token, _registration = desk_token
    body = a_patient("Retried")
    condition = {"If-None-Exist": f"family=Retried&birthdate={body['birthDate']}"}
    headers = {"Content-Type": FHIR_JSON} | condition
    first = raw(live_server, token, "POST", "Patient", json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = raw(live_server, token, "POST", "Patient", json=body, headers=headers)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert Patient.objects.filter(family_name="Retried").count() == 1


def test_fhirpy_searches_appointments_by_patient_and_date(live_server, desk_token):
    token, _registration = desk_token
    clerk = UserFactory(username="clerk-appt", roles=[Role.FRONT_DESK])
    patient = patient_register(
        actor=clerk,
        given_name="Lena",
        family_name="Ødegaard",
        date_of_birth=date(1990, 2, 3),
        administrative_sex="F",
    )
    other = patient_register(
        actor=clerk,
        given_name="Omar",
        family_name="Haddad",
        date_of_birth=date(1970, 6, 5),
        administrative_sex="M",
    )
    location, provider, visit = make_location("North Clinic"), make_provider(), make_type("Check")
    make_block(provider, location)
    make_room(location)
    day = date.today() + timedelta(days=7)
    booked = [
        appointment_book(
            actor=clerk,
            patient=who,
            provider=provider,
            location=location,
            appointment_type=visit,
            starts_at=wall_clock(day, time(hour)),
        )
        for who, hour in ((patient, 9), (other, 10))
    ]
    client = peer(live_server, token)
    found = client.resources("Appointment").search(patient=str(patient.pk)).fetch_all()
    assert [appointment.id for appointment in found] == [str(booked[0].pk)]
    participants = [p["actor"]["reference"] for p in found[0]["participant"]]
    assert f"Patient/{patient.pk}" in participants
    in_week = (
        client.resources("Appointment")
        .search(patient=str(patient.pk))
        .search(date__ge=day.isoformat(), date__lt=(day + timedelta(days=1)).isoformat())
    )
    assert [appointment.id for appointment in in_week.fetch_all()] == [str(booked[0].pk)]
    later = (
        client.resources("Appointment")
        .search(patient=str(patient.pk))
        .search(date__ge=(day + timedelta(days=30)).isoformat())
    )
    assert later.fetch_all() == []


# --- a user-facing app: authorization code + PKCE --------------------------------------------


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_an_app_launched_through_pkce_sees_only_the_chosen_patient(
    live_server, practice, client, sign_in
):
    doctor = UserFactory(username="dr-app", roles=[Role.PHYSICIAN])
    chosen = patient_register(
        actor=doctor,
        given_name="Priya",
        family_name="Santos",
        date_of_birth=date(1975, 4, 9),
        administrative_sex="F",
    )
    other = patient_register(
        actor=doctor,
        given_name="Felix",
        family_name="Santos",
        date_of_birth=date(1961, 8, 1),
        administrative_sex="M",
    )
    redirect_uri = "https://app.example.test/callback"
    app = api_client_register(
        actor=None,
        name="Patient summary app",
        kind="app",
        redirect_uris=redirect_uri,
        scopes="launch/patient patient/*.rs",
    )
    verifier, challenge = pkce_pair()
    asked = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": redirect_uri,
        "scope": "launch/patient patient/Patient.rs patient/Appointment.rs",
        "state": "peer-state-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "aud": "http://testserver/fhir",
    }
    sign_in(client, doctor)
    consent = client.get("/oauth/authorize/", asked)
    assert consent.status_code == 200
    approval = {
        name: value for name, value in consent.context["form"].initial.items() if value is not None
    }
    approval |= {"allow": "on", "patient": str(chosen.pk)}
    redirected = client.post(f"/oauth/authorize/?{urlencode(asked)}", approval)
    assert redirected.status_code == 302
    landing = urlsplit(redirected["Location"])
    assert f"{landing.scheme}://{landing.netloc}{landing.path}" == redirect_uri
    answer = parse_qs(landing.query)
    assert answer["state"] == ["peer-state-1"]

    def exchange(code: str, verifier: str) -> requests.Response:
        return requests.post(
            f"{live_server.url}{TOKEN_PATH}",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": app.client_id,
                "code_verifier": verifier,
            },
            timeout=10,
        )

    wrong = exchange(answer["code"][0], pkce_pair()[0])
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    again = client.post(f"/oauth/authorize/?{urlencode(asked)}", approval)
    granted = exchange(parse_qs(urlsplit(again["Location"]).query)["code"][0], verifier)
    assert granted.status_code == 200, granted.text
    token = granted.json()
    assert token["patient"] == str(chosen.pk)

    app_client = peer(live_server, token["access_token"])
    assert app_client.reference("Patient", str(chosen.pk)).to_resource()["id"] == str(chosen.pk)
    found = app_client.resources("Patient").search(name="Santos").fetch_all()
    assert [patient.id for patient in found] == [str(chosen.pk)]
    refused = raw(live_server, token["access_token"], "GET", f"Patient/{other.pk}")
    assert refused.status_code in (403, 404)
    written = raw(live_server, token["access_token"], "POST", "Patient", json=a_patient("Nope"))
    assert written.status_code == 403
    assert not Patient.objects.filter(family_name="Nope").exists()


# --- every listed resource, with a freshly registered client -----------------------------------


def seed_one_of_everything() -> dict[str, object]:
    """One record of each kind, through the owning apps' services."""
    clerk = UserFactory(username="seed-clerk", roles=[Role.FRONT_DESK])
    nurse = UserFactory(username="seed-nurse", roles=[Role.NURSE])
    admin = UserFactory(username="seed-admin", roles=[Role.ADMIN])
    patient = patient_register(
        actor=clerk,
        given_name="Sample",
        family_name="Everything",
        date_of_birth=date(1980, 1, 2),
        administrative_sex="F",
    )
    load_sample_codes()
    problem_add(actor=nurse, patient=patient, code="I10")
    allergy_add(actor=nurse, patient=patient, substance="Latex", severity="mild")
    medication_add(actor=nurse, patient=patient, name="Metformin", route="oral")
    payer = payer_create(actor=admin, name="Sample Health Plan", payer_id="SMP01")
    coverage_add(
        actor=clerk,
        patient=patient,
        payer=payer,
        member_id="SMP123456",
        priority=1,
        relationship="18",
    )
    card = io.BytesIO()
    Image.new("RGB", (8, 8)).save(card, "PNG")
    document_upload(
        actor=clerk,
        patient=patient,
        category="insurance_card",
        uploaded_file=SimpleUploadedFile("card.png", card.getvalue()),
    )
    location, provider = make_location("Sample Clinic"), make_provider()
    make_block(provider, location)
    make_room(location)
    appointment_book(
        actor=clerk,
        patient=patient,
        provider=provider,
        location=location,
        appointment_type=make_type("Sample visit"),
        starts_at=wall_clock(date.today() + timedelta(days=3), time(10)),
    )
    return {"patient": patient, "admin": admin}


def test_a_fresh_client_can_read_and_search_every_listed_resource(live_server, practice):
    seeded = seed_one_of_everything()
    registration = register_internal(Role.PHYSICIAN)
    # The audit trail is the privacy officer's: the service account holds both roles.
    user_roles_change(
        actor=seeded["admin"],
        user=registration.client.service_user,
        roles=[Role.PHYSICIAN, Role.PRIVACY_OFFICER],
    )
    token = token_from_endpoint(live_server, registration, "system/*.rs")["access_token"]

    statement = requests.get(
        f"{live_server.url}/fhir/metadata", headers={"Accept": FHIR_JSON}, timeout=10
    ).json()
    assert_valid(statement)
    listed = [entry["type"] for entry in statement["rest"][0]["resource"]]
    assert {"Patient", "Appointment", "AuditEvent"} <= set(listed)
    empty = []
    for resource_type in listed:
        response = raw(live_server, token, "GET", resource_type)
        assert response.status_code == 200, (resource_type, response.text)
        bundle = response.json()
        assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "searchset")
        matches = [e for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]
        if not matches:
            empty.append(resource_type)
            continue
        first = matches[0]["resource"]
        read = raw(live_server, token, "GET", f"{resource_type}/{first['id']}")
        assert read.status_code == 200, (resource_type, read.text)
        assert read.json()["id"] == first["id"]
        assert read.json()["resourceType"] == resource_type
    # The seed holds a record of every type; free slots depend on today's clock.
    assert set(empty) <= {"Slot"}, empty


# --- transaction and batch Bundles ---------------------------------------------------------------


def post_bundle(live_server, token: str, bundle: dict) -> requests.Response:
    return raw(live_server, token, "POST", "", json=bundle, headers={"Content-Type": FHIR_JSON})


def entry(resource: dict, full_url: str | None = None) -> dict:
    found = {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}
    if full_url:
        found["fullUrl"] = full_url
    return found


@pytest.fixture
def clinical_token(live_server, practice):
    registration = register_internal(Role.PHYSICIAN)
    return token_from_endpoint(live_server, registration, "system/*.cruds")["access_token"]


def test_a_transaction_with_one_invalid_entry_writes_nothing(live_server, clinical_token):
    before = Patient.objects.count()
    invalid = a_patient("Second", gender="sometimes")
    response = post_bundle(
        live_server,
        clinical_token,
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [entry(a_patient("First")), entry(invalid)],
        },
    )
    assert 400 <= response.status_code < 500
    assert response.json()["resourceType"] == "OperationOutcome"
    assert Patient.objects.count() == before
    assert not Patient.objects.filter(family_name="First").exists()


def test_a_malformed_or_empty_bundle_is_refused(live_server, clinical_token):
    for bundle in (
        {"resourceType": "Bundle", "type": "collection", "entry": []},
        {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {}}]},
        {"resourceType": "Patient"},
    ):
        response = post_bundle(live_server, clinical_token, bundle)
        assert response.status_code == 400, bundle
    huge = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [entry(a_patient(f"Many{n}")) for n in range(501)],
    }
    assert post_bundle(live_server, clinical_token, huge).status_code == 413
    assert not Patient.objects.filter(family_name__startswith="Many").exists()


# FHIR resolves urn:uuid references whatever the entries' order: the record may come first.
@pytest.mark.parametrize("patient_first", [True, False], ids=["patient-first", "record-first"])
@pytest.mark.parametrize("clinical_type", ["AllergyIntolerance", "Condition"])
def test_a_transaction_links_a_new_record_to_a_new_patient_by_urn_uuid(
    live_server, clinical_token, clinical_type, patient_first
):
    load_sample_codes()
    placeholder = f"urn:uuid:{uuid.uuid4()}"
    record = {
        "AllergyIntolerance": {
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                        "code": "active",
                    }
                ]
            },
            "verificationStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                        "code": "confirmed",
                    }
                ]
            },
            "code": {"text": "Peanuts"},
            "patient": {"reference": placeholder},
        },
        "Condition": {
            "resourceType": "Condition",
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": "active",
                    }
                ]
            },
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                            "code": "problem-list-item",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I10"}]},
            "subject": {"reference": placeholder},
        },
    }[clinical_type]
    entries = [entry(a_patient("Linked"), full_url=placeholder), entry(record)]
    response = post_bundle(
        live_server,
        clinical_token,
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": entries if patient_first else entries[::-1],
        },
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["type"] == "transaction-response"
    statuses = [item["response"]["status"] for item in answer["entry"]]
    assert all(status.startswith("201") for status in statuses)
    patient = Patient.objects.get(family_name="Linked")
    (created,) = [
        item["resource"]
        for item in answer["entry"]
        if item["resource"]["resourceType"] == clinical_type
    ]
    target = created.get("patient") or created.get("subject")
    assert target["reference"] == f"Patient/{patient.pk}"
    assert placeholder not in response.text
    listed = raw(live_server, clinical_token, "GET", clinical_type, params={"patient": patient.pk})
    assert [e["resource"]["id"] for e in listed.json()["entry"]] == [created["id"]]


def test_a_batch_keeps_the_good_entries_and_reports_the_bad_one(live_server, clinical_token):
    response = post_bundle(
        live_server,
        clinical_token,
        {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                entry(a_patient("BatchGood")),
                entry(a_patient("BatchBad", birthDate="not-a-date")),
                entry(a_patient("BatchAlsoGood")),
                {"request": {"method": "GET", "url": f"Patient/{uuid.uuid4()}"}},
            ],
        },
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["type"] == "batch-response"
    statuses = [item["response"]["status"] for item in answer["entry"]]
    assert statuses[0].startswith("201") and statuses[2].startswith("201")
    assert statuses[1][:1] == "4"
    assert statuses[3].startswith("404")
    assert answer["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert set(
        Patient.objects.filter(family_name__startswith="Batch").values_list(
            "family_name", flat=True
        )
    ) == {"BatchGood", "BatchAlsoGood"}
