"""Practitioner and PractitionerRole: the practice's providers, read-only."""

from datetime import date

import pytest

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.fhir.mapper import US_CORE
from ambula.fhir.resources.practitioner import NPI_SYSTEM, human_name
from ambula.fhir.resources.practitioner_role import TAXONOMY_SYSTEM
from ambula.scheduling.tests.factories import make_block, make_location, make_provider

pytestmark = pytest.mark.django_db


@pytest.fixture
def doctor(practice):
    return make_provider(full_name="Dr. Priya Natarajan")


@pytest.fixture
def nurse_practitioner(practice):
    provider = make_provider(full_name="Sam Okoro")
    provider.credentials = "NP"
    provider.taxonomy_code = "363LF0000X"
    provider.specialty = "Family nurse practitioner"
    provider.save()
    return provider


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return sorted(
        e["resource"]["id"] for e in response.json()["entry"] if e["search"]["mode"] == "match"
    )


def test_human_name_splits_the_one_name_ambula_keeps():
    assert human_name("Dr. Priya Natarajan") == {
        "use": "official",
        "text": "Dr. Priya Natarajan",
        "prefix": ["Dr."],
        "family": "Natarajan",
        "given": ["Priya"],
    }
    assert human_name("Cher") == {"use": "official", "text": "Cher", "family": "Cher"}


def test_practitioner_read_is_us_core_with_npi(fhir, front_desk, doctor):
    api = fhir(front_desk)
    response = api.get(f"Practitioner/{doctor.pk}")
    assert response.status_code == 200
    resource = response.json()
    assert resource["meta"]["profile"] == [US_CORE + "us-core-practitioner"]
    assert resource["identifier"] == [{"system": NPI_SYSTEM, "value": doctor.npi}]
    assert resource["name"][0]["family"] == "Natarajan"
    assert resource["name"][0]["given"] == ["Priya"]
    assert resource["qualification"] == [{"code": {"text": "MD"}}]
    assert resource["active"] is True
    event = AuditEvent.objects.filter(action="fhir.read").latest("id")
    assert changes_of(event)["resource"] == f"Practitioner/{doctor.pk}"
    assert event.patient_id is None


def test_practitioner_search(fhir, front_desk, doctor, nurse_practitioner):
    api = fhir(front_desk)
    assert _ids(api.get("Practitioner", {"_id": str(doctor.pk)})) == [str(doctor.pk)]
    assert _ids(api.get("Practitioner", {"identifier": f"{NPI_SYSTEM}|{doctor.npi}"})) == [
        str(doctor.pk)
    ]
    assert _ids(api.get("Practitioner", {"identifier": doctor.npi})) == [str(doctor.pk)]
    assert _ids(api.get("Practitioner", {"identifier": f"urn:x|{doctor.npi}"})) == []
    assert _ids(api.get("Practitioner", {"name": "nata"})) == [str(doctor.pk)]
    assert _ids(api.get("Practitioner", {"name": "SAM"})) == [str(nurse_practitioner.pk)]
    assert _ids(api.get("Practitioner", {"family": "okoro"})) == [str(nurse_practitioner.pk)]
    assert _ids(api.get("Practitioner", {"family": "sam"})) == []
    assert _ids(api.get("Practitioner", {"given": "priya"})) == [str(doctor.pk)]
    assert _ids(api.get("Practitioner", {"given": "natarajan"})) == []
    assert _ids(api.get("Practitioner", {"name": "zz"})) == []


def test_practitioner_history_after_a_change(fhir, front_desk, doctor):
    api = fhir(front_desk)
    assert api.get(f"Practitioner/{doctor.pk}").json()["meta"]["versionId"] == "1"
    doctor.credentials = "DO"
    doctor.save()
    assert api.get(f"Practitioner/{doctor.pk}").json()["meta"]["versionId"] == "2"
    old = api.get(f"Practitioner/{doctor.pk}/_history/1").json()
    assert old["qualification"] == [{"code": {"text": "MD"}}]
    history = api.get(f"Practitioner/{doctor.pk}/_history").json()
    assert len(history["entry"]) == 2


def test_practitioner_is_read_only(fhir, admin_user, doctor):
    api = fhir(admin_user)
    current = api.get(f"Practitioner/{doctor.pk}").json()
    assert api.put(f"Practitioner/{doctor.pk}", current).status_code == 405
    # 405 once the engine checks the interaction before the role (engine-bugs.md item 1)
    assert api.post("Practitioner", {"resourceType": "Practitioner"}).status_code == 405
    assert api.delete(f"Practitioner/{doctor.pk}").status_code == 405


def test_a_portal_user_gets_403(fhir, doctor):
    portal_user = UserFactory(roles=[Role.PATIENT])
    assert fhir(portal_user).get(f"Practitioner/{doctor.pk}").status_code == 403
    assert fhir(portal_user).get(f"PractitionerRole/{doctor.pk}").status_code == 403


def test_a_patient_scoped_token_reads_practitioners(fhir, front_desk, patient, doctor):
    api = fhir(front_desk, scopes="patient/*.rs", patient=patient)
    assert api.get(f"Practitioner/{doctor.pk}").status_code == 200


def test_role_read_names_practitioner_practice_specialty_and_locations(
    fhir, front_desk, practice, doctor
):
    north = make_location("North")
    south = make_location("South")
    make_block(doctor, north, weekdays=[0])
    make_block(doctor, south, weekdays=[1], valid_until=date(2001, 1, 1))  # long over
    response = fhir(front_desk).get(f"PractitionerRole/{doctor.pk}")
    assert response.status_code == 200
    role = response.json()
    assert role["meta"]["profile"] == [US_CORE + "us-core-practitionerrole"]
    assert role["practitioner"]["reference"] == f"Practitioner/{doctor.pk}"
    assert role["organization"] == {"reference": f"Organization/{practice.pk}"}
    assert role["code"][0]["coding"][0]["code"] == "doctor"
    assert role["specialty"][0]["coding"][0] == {
        "system": TAXONOMY_SYSTEM,
        "code": "207Q00000X",
        "display": "Family medicine",
    }
    assert role["location"] == [{"reference": f"Location/{north.pk}"}]


def test_role_search_by_practitioner_and_specialty_with_include(
    fhir, front_desk, doctor, nurse_practitioner
):
    api = fhir(front_desk)
    assert _ids(api.get("PractitionerRole", {"practitioner": f"Practitioner/{doctor.pk}"})) == [
        str(doctor.pk)
    ]
    assert _ids(api.get("PractitionerRole", {"practitioner": str(doctor.pk)})) == [str(doctor.pk)]
    assert _ids(api.get("PractitionerRole", {"specialty": f"{TAXONOMY_SYSTEM}|363LF0000X"})) == [
        str(nurse_practitioner.pk)
    ]
    assert _ids(api.get("PractitionerRole", {"specialty": "urn:other|363LF0000X"})) == []
    bundle = api.get(
        "PractitionerRole", {"specialty": "207Q00000X", "_include": "PractitionerRole:practitioner"}
    ).json()
    modes = {(e["resource"]["resourceType"], e["search"]["mode"]) for e in bundle["entry"]}
    assert modes == {("PractitionerRole", "match"), ("Practitioner", "include")}
    included = next(e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "include")
    assert included["id"] == str(doctor.pk)
    assert api.get("PractitionerRole", {"_include": "PractitionerRole:location"}).status_code == 400


def test_role_search_queries_do_not_grow_with_the_providers(
    fhir, front_desk, practice, django_assert_max_num_queries
):
    location = make_location()
    for _ in range(6):
        make_block(make_provider(), location, weekdays=[2])
    api = fhir(front_desk)
    api.get("PractitionerRole")  # versions recorded once
    with django_assert_max_num_queries(20):
        bundle = api.get("PractitionerRole").json()
    assert bundle["total"] == 6
