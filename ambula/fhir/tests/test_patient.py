"""Patient: US Core demographics, search on the indexed name columns, create and update."""

import hashlib
from datetime import date, timedelta

import pytest
from django.utils.timezone import localdate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oauth2_provider.models import AccessToken

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.fhir.mapper import US_CORE
from ambula.fhir.resources.patient import ETHNICITY_URL, MRN_SYSTEM, RACE_URL
from ambula.patients.demographics import patient_update
from ambula.patients.merge import patient_merge
from ambula.patients.models import Patient
from ambula.patients.tests.factories import registered_patient
from ambula.scheduling.tests.factories import make_provider

pytestmark = pytest.mark.django_db

PROFILE = US_CORE + "us-core-patient"


def client_id_of(api) -> str:
    checksum = hashlib.sha256(api.token.encode()).hexdigest()
    return AccessToken.objects.get(token_checksum=checksum).application.client_id


def new_patient(**overrides) -> dict:
    resource = {
        "resourceType": "Patient",
        "name": [
            {"use": "official", "family": "Okafor", "given": ["Adaeze", "Grace"]},
            {"use": "usual", "given": ["Ada"]},
        ],
        "gender": "female",
        "birthDate": "1988-02-14",
        "telecom": [
            {"system": "phone", "value": "217-555-0199", "use": "mobile"},
            {"system": "phone", "value": "2175550111", "use": "home"},
            {"system": "email", "value": "ada.okafor@example.test"},
        ],
        "address": [
            {
                "use": "home",
                "line": ["12 Elm St"],
                "city": "Springfield",
                "state": "IL",
                "postalCode": "62704",
            }
        ],
        "communication": [
            {
                "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es"}]},
                "preferred": True,
            }
        ],
        "maritalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"}
            ]
        },
        "extension": [
            {
                "url": RACE_URL,
                "extension": [
                    {
                        "url": "ombCategory",
                        "valueCoding": {
                            "system": "urn:oid:2.16.840.1.113883.6.238",
                            "code": "2054-5",
                        },
                    },
                    {"url": "text", "valueString": "Black or African American"},
                ],
            },
            {
                "url": ETHNICITY_URL,
                "extension": [
                    {
                        "url": "ombCategory",
                        "valueCoding": {
                            "system": "urn:oid:2.16.840.1.113883.6.238",
                            "code": "2186-5",
                        },
                    },
                    {"url": "text", "valueString": "Not Hispanic or Latino"},
                ],
            },
        ],
    }
    return resource | overrides


@pytest.fixture
def jose(front_desk):
    return registered_patient(
        actor=front_desk,
        given_name="José",
        family_name="Rivera",
        date_of_birth=date(1984, 3, 7),
        administrative_sex="M",
        mobile_phone="(217) 555-0140",
        email="jose.rivera@example.test",
    )


def test_read_is_a_valid_us_core_patient_with_its_must_support_elements(fhir, front_desk, jose):
    provider = make_provider()
    patient_update(
        actor=front_desk,
        patient=jose,
        race=["2106-3", "2131-1"],
        ethnicity="2135-2",
        preferred_language="Spanish",
        primary_care_provider=provider.user,
        marital_status="S",
        address_line="1 Oak Ave",
        city="Springfield",
        state="IL",
        postal_code="62701",
    )
    api = fhir(front_desk)
    response = api.get(f"Patient/{jose.pk}")
    assert response.status_code == 200
    resource = response.json()
    assert resource["meta"]["profile"] == [PROFILE]
    assert response["ETag"] == f'W/"{resource["meta"]["versionId"]}"'
    assert resource["identifier"][0] == {
        "use": "usual",
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                    "code": "MR",
                    "display": "Medical record number",
                }
            ],
            "text": "MRN",
        },
        "system": MRN_SYSTEM,
        "value": jose.mrn,
    }
    assert resource["name"][0] == {"use": "official", "family": "Rivera", "given": ["José"]}
    assert resource["gender"] == "male"
    assert resource["birthDate"] == "1984-03-07"
    assert resource["active"] is True
    assert {"system": "phone", "value": "(217) 555-0140", "use": "mobile"} in resource["telecom"]
    assert {"system": "email", "value": "jose.rivera@example.test"} in resource["telecom"]
    assert resource["address"][0]["postalCode"] == "62701"
    assert resource["communication"][0]["language"]["coding"][0]["code"] == "es"
    assert resource["maritalStatus"]["coding"][0]["code"] == "S"
    assert resource["generalPractitioner"][0]["reference"] == f"Practitioner/{provider.pk}"
    race = next(e for e in resource["extension"] if e["url"] == RACE_URL)
    assert {
        "url": "ombCategory",
        "valueCoding": {
            "system": "urn:oid:2.16.840.1.113883.6.238",
            "code": "2106-3",
            "display": "White",
        },
    } in race["extension"]
    assert any(
        part["url"] == "detailed" and part["valueCoding"]["code"] == "2131-1"
        for part in race["extension"]
    )
    assert race["extension"][-1] == {"url": "text", "valueString": "White, Other race"}
    ethnicity = next(e for e in resource["extension"] if e["url"] == ETHNICITY_URL)
    assert ethnicity["extension"][0]["valueCoding"]["code"] == "2135-2"
    assert "ssn" not in str(resource).lower()
    event = AuditEvent.objects.filter(action="fhir.read").latest("id")
    assert event.patient_id == jose.pk
    assert changes_of(event) == {"client": client_id_of(api), "resource": f"Patient/{jose.pk}"}


def test_read_is_fast_in_queries(fhir, front_desk, jose, django_assert_max_num_queries):
    api = fhir(front_desk)
    api.get(f"Patient/{jose.pk}")  # the first read records version 1
    with django_assert_max_num_queries(12):
        assert api.get(f"Patient/{jose.pk}").status_code == 200


def test_unknown_and_malformed_ids_are_404(fhir, front_desk):
    api = fhir(front_desk)
    assert api.get("Patient/0190a0a0-0000-7000-8000-000000000000").status_code == 404
    assert api.get("Patient/not-a-uuid").status_code == 404


def test_a_merged_patient_is_inactive_and_points_to_the_survivor(fhir, front_desk, admin_user):
    duplicate = registered_patient(actor=front_desk, family_name="Lee", given_name="Ann")
    survivor = registered_patient(actor=front_desk, family_name="Lee", given_name="Anne")
    patient_merge(actor=admin_user, duplicate=duplicate, survivor=survivor)
    resource = fhir(front_desk).get(f"Patient/{duplicate.pk}").json()
    assert resource["active"] is False
    assert resource["link"] == [
        {"other": {"reference": f"Patient/{survivor.pk}"}, "type": "replaced-by"}
    ]


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [e["resource"]["id"] for e in response.json()["entry"] if e["search"]["mode"] == "match"]


def test_search_by_each_parameter(fhir, front_desk, jose):
    other = registered_patient(
        actor=front_desk,
        given_name="Maria",
        family_name="Riverside",
        date_of_birth=date(1990, 1, 2),
        administrative_sex="F",
    )
    api = fhir(front_desk)
    me = [str(jose.pk)]
    assert _ids(api.get("Patient", {"_id": str(jose.pk)})) == me
    assert _ids(api.get("Patient", {"identifier": f"{MRN_SYSTEM}|{jose.mrn}"})) == me
    assert _ids(api.get("Patient", {"identifier": jose.mrn})) == me
    assert _ids(api.get("Patient", {"identifier": f"http://other|{jose.mrn}"})) == []
    # accents and case do not matter; each word is a prefix of a name
    assert _ids(api.get("Patient", {"name": "jose"})) == me
    assert _ids(api.get("Patient", {"name": "JOSÉ riv"})) == me
    assert set(_ids(api.get("Patient", {"family": "river"}))) == {str(jose.pk), str(other.pk)}
    assert _ids(api.get("Patient", {"family:exact": "Rivera"})) == me
    assert _ids(api.get("Patient", {"given": "mar"})) == [str(other.pk)]
    assert _ids(api.get("Patient", {"name": "nobody"})) == []
    assert _ids(api.get("Patient", {"birthdate": "1984-03-07"})) == me
    assert _ids(api.get("Patient", {"birthdate": "ge1989"})) == [str(other.pk)]
    assert _ids(api.get("Patient", {"gender": "male"})) == me
    assert _ids(api.get("Patient", {"gender": "other"})) == []
    assert _ids(api.get("Patient", {"phone": "217.555.0140"})) == me
    assert _ids(api.get("Patient", {"telecom": "phone|2175550140"})) == me
    assert _ids(api.get("Patient", {"email": "JOSE.RIVERA@example.test"})) == me
    assert _ids(api.get("Patient", {"telecom": "email|jose.rivera@example.test"})) == me
    assert _ids(api.get("Patient", {"email": "nobody@example.test"})) == []


def test_us_core_combinations(fhir, front_desk, jose):
    registered_patient(
        actor=front_desk,
        given_name="Joseph",
        family_name="Rivera",
        date_of_birth=date(1950, 6, 1),
        administrative_sex="F",
    )
    api = fhir(front_desk)
    me = [str(jose.pk)]
    assert _ids(api.get("Patient", {"birthdate": "1984-03-07", "name": "rivera"})) == me
    assert _ids(api.get("Patient", {"gender": "male", "name": "rivera"})) == me
    assert _ids(api.get("Patient", {"family": "rivera", "gender": "male"})) == me
    assert _ids(api.get("Patient", {"birthdate": "1984-03-07", "family": "rivera"})) == me
    assert _ids(api.get("Patient", {"birthdate": "1984-03-08", "family": "rivera"})) == []


def test_paging_is_stable_and_count_is_capped(fhir, front_desk):
    for number in range(5):
        registered_patient(actor=front_desk, family_name=f"Pager{number}")
    api = fhir(front_desk)
    first = api.get("Patient", {"family": "pager", "_count": "2"}).json()
    assert first["total"] == 5
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = api.client.get(next_url.replace("http://testserver", ""), **api._headers({})).json()
    names = [e["resource"]["name"][0]["family"] for e in first["entry"] + second["entry"]]
    assert names == ["Pager0", "Pager1", "Pager2", "Pager3"]
    capped = api.get("Patient", {"family": "pager", "_count": "100000"}).json()
    self_link = next(link["url"] for link in capped["link"] if link["relation"] == "self")
    assert "_count=200" in self_link
    assert len(capped["entry"]) == 5


def test_an_unknown_parameter_is_ignored_with_an_outcome_or_refused_when_strict(
    fhir, front_desk, jose
):
    api = fhir(front_desk)
    bundle = api.get("Patient", {"family": "rivera", "shoe-size": "42"}).json()
    assert [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"] == [
        str(jose.pk)
    ]
    outcome = next(e for e in bundle["entry"] if e["search"]["mode"] == "outcome")
    assert "shoe-size" in outcome["resource"]["issue"][0]["diagnostics"]
    strict = api.get("Patient", {"family": "rivera", "shoe-size": "42"}, Prefer="handling=strict")
    assert strict.status_code == 400
    assert strict.json()["resourceType"] == "OperationOutcome"


def test_malformed_search_values_are_400(fhir, front_desk):
    api = fhir(front_desk)
    assert api.get("Patient", {"birthdate": "03/07/1984"}).status_code == 400
    assert api.get("Patient", {"name": ""}).status_code == 400
    assert api.get("Patient", {"family:fuzzy": "x"}).status_code == 400


def test_search_is_audited(fhir, front_desk, jose):
    api = fhir(front_desk)
    api.get("Patient", {"family": "rivera"})
    event = AuditEvent.objects.filter(action="fhir.searched").latest("id")
    details = changes_of(event)
    assert details["client"] == client_id_of(api)
    assert details["results"] == 1
    assert event.patient_id == jose.pk


def test_create_registers_the_patient_with_every_element(fhir, front_desk):
    api = fhir(front_desk)
    response = api.post("Patient", new_patient())
    assert response.status_code == 201, response.content
    resource = response.json()
    patient = Patient.objects.get(pk=resource["id"])
    assert (patient.given_name, patient.middle_name, patient.family_name) == (
        "Adaeze",
        "Grace",
        "Okafor",
    )
    assert patient.preferred_name == "Ada"
    assert patient.administrative_sex == "F"
    assert patient.mobile_phone == "(217) 555-0199"
    assert patient.home_phone == "(217) 555-0111"
    assert patient.preferred_language == "Spanish"
    assert patient.race == ["2054-5"]
    assert patient.ethnicity == "2186-5"
    assert patient.marital_status == "M"
    assert response["Location"].endswith(f"/Patient/{patient.pk}/_history/1")
    assert resource["identifier"][0]["value"] == patient.mrn
    assert AuditEvent.objects.filter(action="patients.registered", patient_id=patient.pk).exists()
    created = AuditEvent.objects.get(action="fhir.created")
    assert changes_of(created)["client"] == client_id_of(api)


def test_a_likely_duplicate_is_409_and_if_none_exist_returns_the_existing(fhir, front_desk, jose):
    api = fhir(front_desk)
    twin = new_patient(
        name=[{"family": "Rivera", "given": ["Jose"]}],
        birthDate="1984-03-07",
        gender="male",
        telecom=[],
        extension=[],
    )
    response = api.post("Patient", twin)
    assert response.status_code == 409
    issue = response.json()["issue"][0]
    assert issue["code"] == "duplicate"
    assert str(jose.pk) not in issue["diagnostics"]  # no oracle of who else is registered
    assert Patient.objects.count() == 1
    found = api.post("Patient", twin, If_None_Exist=f"identifier={MRN_SYSTEM}|{jose.mrn}")
    assert found.status_code == 200
    assert found.json()["id"] == str(jose.pk)


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"gender": "other"}, "Patient.gender"),
        ({"gender": "mal"}, "Patient.gender"),
        ({"birthDate": (localdate() + timedelta(days=3)).isoformat()}, "Patient.birthDate"),
        ({"birthDate": "1870-01-01"}, "Patient.birthDate"),
        ({"birthDate": "1988"}, "Patient.birthDate"),
        ({"birthDate": "1988-02-30"}, "Patient.birthDate"),
        ({"name": [{"use": "official", "given": ["Solo"]}]}, "Patient.name.family"),
        ({"name": []}, "Patient.name"),
        ({"telecom": [{"system": "phone", "value": "12", "use": "mobile"}]}, "Patient.telecom"),
        ({"address": [{"state": "Illinois"}]}, "Patient.address.state"),
        ({"address": [{"postalCode": "ABCDE"}]}, "Patient.address.postalCode"),
        ({"maritalStatus": {"coding": [{"code": "XX"}]}}, "Patient.maritalStatus"),
        (
            {
                "extension": [
                    {
                        "url": RACE_URL,
                        "extension": [
                            {
                                "url": "ombCategory",
                                "valueCoding": {
                                    "system": "urn:oid:2.16.840.1.113883.6.238",
                                    "code": "9999-9",
                                },
                            }
                        ],
                    }
                ]
            },
            "Patient.extension:race",
        ),
        ({"generalPractitioner": [{"reference": "Organization/x"}]}, "Patient.generalPractitioner"),
    ],
)
def test_bad_input_is_422_with_the_path_and_writes_nothing(fhir, front_desk, changes, path):
    response = fhir(front_desk).post("Patient", new_patient(**changes))
    assert response.status_code == 422, response.content
    issues = response.json()["issue"]
    assert any(path in issue.get("expression", []) for issue in issues), issues
    assert Patient.objects.count() == 0
    assert not AuditEvent.objects.filter(action="fhir.created").exists()


def test_a_structurally_broken_patient_is_422(fhir, front_desk):
    response = fhir(front_desk).post("Patient", new_patient(gender=7, birthDate="yesterday"))
    assert response.status_code == 422
    assert Patient.objects.count() == 0


def test_update_replaces_the_demographics_and_versions_them(fhir, front_desk, jose):
    api = fhir(front_desk)
    first = api.get(f"Patient/{jose.pk}").json()
    assert first["meta"]["versionId"] == "1"
    changed = {
        **first,
        "name": [{"use": "official", "family": "Rivera-Cruz", "given": ["José"]}],
        "telecom": [{"system": "phone", "value": "(217) 555-0177", "use": "mobile"}],
        "deceasedDateTime": "2024-01-02",
    }
    response = api.put(f"Patient/{jose.pk}", changed, If_Match='W/"1"')
    assert response.status_code == 200, response.content
    updated = response.json()
    assert updated["meta"]["versionId"] == "2"
    assert updated["deceasedDateTime"] == "2024-01-02"
    jose.refresh_from_db()
    assert jose.family_name == "Rivera-Cruz"
    assert jose.search_family_name == "rivera-cruz"
    assert jose.mobile_phone == "(217) 555-0177"
    assert jose.email == ""  # left out of the update: cleared
    assert jose.status == Patient.Status.DECEASED
    # SMS reminders had no consent: a new mobile number moves them to a channel that works
    assert jose.reminder_channel == Patient.ReminderChannel.NONE
    assert AuditEvent.objects.filter(action="patients.demographics_updated").exists()
    assert AuditEvent.objects.filter(action="fhir.updated").exists()

    old = api.get(f"Patient/{jose.pk}/_history/1").json()
    assert old["name"][0]["family"] == "Rivera"
    assert old["meta"]["versionId"] == "1"
    history = api.get(f"Patient/{jose.pk}/_history").json()
    assert history["type"] == "history"
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]

    stale = api.put(f"Patient/{jose.pk}", first, If_Match='W/"1"')
    assert stale.status_code == 412
    jose.refresh_from_db()
    assert jose.family_name == "Rivera-Cruz"


def test_an_update_with_bad_values_is_422_and_changes_nothing(fhir, front_desk, jose):
    api = fhir(front_desk)
    current = api.get(f"Patient/{jose.pk}").json()
    future = (localdate() + timedelta(days=1)).isoformat()
    response = api.put(f"Patient/{jose.pk}", {**current, "birthDate": future, "gender": "other"})
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["Patient.gender"]
    response = api.put(f"Patient/{jose.pk}", {**current, "birthDate": future})
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["Patient.birthDate"]
    response = api.put(f"Patient/{jose.pk}", {**current, "deceasedBoolean": True})
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["Patient.deceasedBoolean"]
    jose.refresh_from_db()
    assert jose.date_of_birth == date(1984, 3, 7)
    assert api.get(f"Patient/{jose.pk}").json()["meta"]["versionId"] == "1"


def test_delete_is_not_allowed(fhir, front_desk, jose):
    response = fhir(front_desk).delete(f"Patient/{jose.pk}")
    assert response.status_code == 405
    assert Patient.objects.filter(pk=jose.pk).exists()


def test_a_patient_scoped_token_sees_only_its_patient(fhir, front_desk, jose, patient):
    api = fhir(front_desk, scopes="patient/*.rs", patient=jose)
    assert api.get(f"Patient/{jose.pk}").status_code == 200
    assert api.get(f"Patient/{patient.pk}").status_code == 404
    assert _ids(api.get("Patient")) == [str(jose.pk)]
    assert _ids(api.get("Patient", {"_id": str(patient.pk)})) == []
    assert api.put(f"Patient/{jose.pk}", api.get(f"Patient/{jose.pk}").json()).status_code == 403


def test_a_role_without_demographics_gets_403_and_it_is_audited(fhir, front_desk, jose):
    portal_user = UserFactory(roles=[Role.PATIENT])
    response = fhir(portal_user).get(f"Patient/{jose.pk}")
    assert response.status_code == 403
    assert fhir(portal_user).get("Patient", {"name": "rivera"}).status_code == 403
    refused = AuditEvent.objects.filter(action="fhir.refused").latest("id")
    assert changes_of(refused)["refused_by"] == "role"


def test_a_read_only_role_cannot_write(fhir, privacy_officer, jose):
    api = fhir(privacy_officer)
    assert api.get(f"Patient/{jose.pk}").status_code == 200
    assert api.post("Patient", new_patient()).status_code == 403
    assert Patient.objects.count() == 1


def test_a_read_scope_cannot_create(fhir, front_desk):
    assert (
        fhir(front_desk, scopes="user/Patient.rs").post("Patient", new_patient()).status_code == 403
    )


def test_putting_back_what_was_read_changes_nothing(fhir, front_desk, jose, physician):
    # A physician without a provider profile is shown by name only; that survives the trip.
    patient_update(
        actor=front_desk,
        patient=jose,
        primary_care_provider=physician,
        preferred_language="Klingon",
        gender_identity="Nonbinary",
    )
    api = fhir(front_desk)
    current = api.get(f"Patient/{jose.pk}").json()
    assert current["generalPractitioner"] == [{"display": physician.full_name}]
    assert current["communication"][0]["language"] == {"text": "Klingon"}
    edits = AuditEvent.objects.filter(action="patients.demographics_updated").count()
    version = current["meta"]["versionId"]
    response = api.put(f"Patient/{jose.pk}", current, If_Match=f'W/"{version}"')
    assert response.status_code == 200, response.content
    assert response.json() == current
    assert AuditEvent.objects.filter(action="patients.demographics_updated").count() == edits


def test_update_sets_the_primary_care_provider_by_practitioner_reference(fhir, front_desk, jose):
    provider = make_provider()
    api = fhir(front_desk)
    current = api.get(f"Patient/{jose.pk}").json()
    changed = {**current, "generalPractitioner": [{"reference": f"Practitioner/{provider.pk}"}]}
    assert api.put(f"Patient/{jose.pk}", changed).status_code == 200
    jose.refresh_from_db()
    assert jose.primary_care_provider == provider.user
    missing = {
        **current,
        "generalPractitioner": [{"reference": "Practitioner/0190a0a0-0000-7000-8000-000000000000"}],
    }
    response = api.put(f"Patient/{jose.pk}", missing)
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["Patient.generalPractitioner"]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    gender=st.one_of(st.sampled_from(["male", "female", "unknown", "other"]), st.text(max_size=8)),
    birth=st.one_of(st.dates().map(date.isoformat), st.text(max_size=12)),
    phone=st.text(max_size=20),
    state=st.text(max_size=5),
)
def test_any_patient_input_gets_an_answer_never_a_crash(
    fhir, front_desk, gender, birth, phone, state
):
    resource = new_patient(
        gender=gender,
        birthDate=birth,
        telecom=[{"system": "phone", "value": phone or "x", "use": "mobile"}],
        address=[{"state": state or "IL"}],
    )
    response = fhir(front_desk).post("Patient", resource)
    assert response.status_code in (201, 409, 422), response.content
