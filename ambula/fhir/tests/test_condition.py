"""Condition: the problem list through FHIR (US Core Condition Problems and Health Concerns)."""

from datetime import date

import pytest

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.patients.models import Problem
from ambula.patients.problems import problem_add, problem_resolve, problem_strike
from ambula.patients.tests.factories import registered_patient
from ambula.terminology.tests.factories import load_sample_codes

pytestmark = pytest.mark.django_db

PROFILE = (
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition-problems-health-concerns"
)
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"


@pytest.fixture(autouse=True)
def codes():
    load_sample_codes()


@pytest.fixture
def diabetes(nurse, patient):
    return problem_add(
        actor=nurse, patient=patient, code="E11.9", onset=date(2020, 1, 15), note="Diet controlled"
    )


@pytest.fixture
def other_patient(front_desk):
    return registered_patient(actor=front_desk, date_of_birth=date(1980, 2, 2))


def new_condition(patient, code="I10", **extra) -> dict:
    return {
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]},
        "category": [{"coding": [{"system": CATEGORY, "code": "problem-list-item"}]}],
        "code": {"coding": [{"system": ICD10, "code": code}]},
        "subject": {"reference": f"Patient/{patient.pk}"},
        **extra,
    }


def ids(bundle) -> list[str]:
    return [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"]


def last_event(action):
    return AuditEvent.objects.filter(action=action).order_by("-id").first()


# --- Reading ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.NURSE, Role.PHYSICIAN])
def test_a_clinician_reads_a_problem_with_the_must_support_elements(fhir, patient, diabetes, role):
    clinician = UserFactory(username=f"reader-{role}", roles=[role])
    api = fhir(clinician)
    response = api.get(f"Condition/{diabetes.pk}")
    assert response.status_code == 200
    condition = response.json()
    assert condition["meta"]["profile"] == [PROFILE]
    assert condition["meta"]["versionId"] == "1"
    assert response["ETag"] == 'W/"1"'
    assert condition["clinicalStatus"]["coding"][0] == {"system": CLINICAL, "code": "active"}
    assert condition["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert condition["category"][0]["coding"][0]["code"] == "problem-list-item"
    assert condition["code"]["coding"][0] == {
        "system": ICD10,
        "code": "E11.9",
        "display": "Type 2 diabetes mellitus without complications",
    }
    assert condition["subject"] == {"reference": f"Patient/{patient.pk}"}
    assert condition["onsetDateTime"] == "2020-01-15"
    assert condition["recordedDate"].endswith("Z")
    assert condition["note"] == [{"text": "Diet controlled"}]
    assert "abatementDateTime" not in condition
    event = last_event("fhir.read")
    assert event.patient_id == patient.pk and event.actor_id == clinician.pk
    assert changes_of(event)["resource"] == f"Condition/{diabetes.pk}"
    assert changes_of(event)["client"]


def test_a_resolved_problem_carries_its_abatement(fhir, nurse, diabetes):
    problem_resolve(actor=nurse, problem=diabetes, resolved_on=date(2023, 6, 1))
    condition = fhir(nurse).get(f"Condition/{diabetes.pk}").json()
    assert condition["clinicalStatus"]["coding"][0]["code"] == "resolved"
    assert condition["abatementDateTime"] == "2023-06-01"


def test_the_front_desk_is_refused_even_with_a_wide_token(fhir, front_desk, diabetes):
    api = fhir(front_desk, "user/*.cruds")
    assert api.get(f"Condition/{diabetes.pk}").status_code == 403
    assert api.get("Condition", {"patient": str(diabetes.patient_id)}).status_code == 403
    assert api.post("Condition", new_condition(diabetes.patient)).status_code == 403
    assert not Problem.objects.filter(code="I10").exists()
    refused = last_event("fhir.refused")
    assert changes_of(refused)["refused_by"] == "role"


def test_a_token_without_the_write_scope_cannot_create(fhir, nurse, patient):
    response = fhir(nurse, "user/Condition.rs").post("Condition", new_condition(patient))
    assert response.status_code == 403
    assert not Problem.objects.exists()


def test_a_struck_out_problem_reads_as_gone_and_leaves_searches(fhir, nurse, patient, diabetes):
    problem_strike(actor=nurse, problem=diabetes)
    api = fhir(nurse)
    assert api.get(f"Condition/{diabetes.pk}").status_code == 410
    assert ids(api.get("Condition", {"patient": str(patient.pk)}).json()) == []


def test_an_unknown_id_is_404(fhir, nurse):
    api = fhir(nurse)
    assert api.get("Condition/0190f7a0-0000-7000-8000-000000000000").status_code == 404
    assert api.get("Condition/not-a-uuid").status_code == 404


# --- Searching --------------------------------------------------------------------------------


@pytest.fixture
def listed(nurse, patient, other_patient, diabetes):
    asthma = problem_add(actor=nurse, patient=patient, code="J45.909", onset=date(2010, 3, 1))
    problem_resolve(actor=nurse, problem=asthma, resolved_on=date(2015, 1, 1))
    theirs = problem_add(actor=nurse, patient=other_patient, code="E11.9")
    return {"diabetes": str(diabetes.pk), "asthma": str(asthma.pk), "theirs": str(theirs.pk)}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"diabetes", "asthma"}),
        ({"category": "problem-list-item"}, {"diabetes", "asthma"}),
        ({"category": f"{CATEGORY}|problem-list-item"}, {"diabetes", "asthma"}),
        ({"category": "health-concern"}, set()),
        ({"category": "http://example.test/other|problem-list-item"}, set()),
        ({"clinical-status": "active"}, {"diabetes"}),
        ({"clinical-status": f"{CLINICAL}|resolved"}, {"asthma"}),
        ({"clinical-status": "active,resolved"}, {"diabetes", "asthma"}),
        ({"clinical-status": "inactive"}, set()),
        ({"code": "E11.9"}, {"diabetes"}),
        ({"code": f"{ICD10}|J45.909"}, {"asthma"}),
        ({"code": "I10"}, set()),
        ({"onset-date": "2020-01-15"}, {"diabetes"}),
        ({"onset-date": "ge2015"}, {"diabetes"}),
        ({"onset-date": "lt2015-01-01"}, {"asthma"}),
        ({"onset-date": "2021"}, set()),
    ],
)
def test_search_by_patient_and_each_us_core_parameter(
    fhir, nurse, patient, listed, params, expected
):
    bundle = fhir(nurse).get("Condition", {"patient": str(patient.pk), **params}).json()
    assert set(ids(bundle)) == {listed[name] for name in expected}
    assert bundle["total"] == len(expected)


def test_search_without_patient_and_by_last_updated(fhir, nurse, listed):
    api = fhir(nurse)
    assert set(ids(api.get("Condition", {"code": "E11.9"}).json())) == {
        listed["diabetes"],
        listed["theirs"],
    }
    assert len(ids(api.get("Condition", {"_lastUpdated": "ge2000-01-01"}).json())) == 3
    assert ids(api.get("Condition", {"_lastUpdated": "lt2000-01-01"}).json()) == []


def test_a_malformed_date_is_a_400(fhir, nurse, listed):
    response = fhir(nurse).get("Condition", {"onset-date": "yesterday"})
    assert response.status_code == 400


def test_a_patient_scoped_token_sees_only_its_patient(fhir, nurse, patient, listed):
    api = fhir(nurse, "patient/*.rs", patient=patient)
    assert set(ids(api.get("Condition").json())) == {listed["diabetes"], listed["asthma"]}
    assert ids(api.get("Condition", {"code": "E11.9"}).json()) == [listed["diabetes"]]
    assert api.get(f"Condition/{listed['theirs']}").status_code == 404
    assert api.post("Condition", new_condition(patient)).status_code == 403


def test_searches_are_audited(fhir, nurse, patient, listed):
    fhir(nurse).get("Condition", {"patient": str(patient.pk)})
    event = last_event("fhir.searched")
    assert event.patient_id == patient.pk
    assert changes_of(event)["results"] == 2


# --- Writing ----------------------------------------------------------------------------------


def test_create_adds_to_the_problem_list_through_the_service(fhir, nurse, patient):
    body = new_condition(
        patient, code="i10", onsetDateTime="2019-04-02", note=[{"text": "Home readings"}]
    )
    response = fhir(nurse).post("Condition", body)
    assert response.status_code == 201, response.json()
    created = response.json()
    problem = Problem.objects.get(pk=created["id"])
    assert (problem.code, problem.description) == ("I10", "Essential (primary) hypertension")
    assert (problem.onset, problem.note, problem.status) == (
        date(2019, 4, 2),
        "Home readings",
        "active",
    )
    assert response["Location"].endswith(f"/fhir/Condition/{problem.pk}/_history/1")
    assert created["code"]["coding"][0]["display"] == "Essential (primary) hypertension"
    assert AuditEvent.objects.filter(
        action="patients.problem_added", patient_id=patient.pk
    ).exists()
    assert changes_of(last_event("fhir.created"))["resource"] == f"Condition/{problem.pk}"


def test_create_a_resolved_problem(fhir, nurse, patient):
    body = new_condition(
        patient,
        clinicalStatus={"coding": [{"system": CLINICAL, "code": "resolved"}]},
        onsetDateTime="2019-04-02",
        abatementDateTime="2020-05-03T10:00:00Z",
    )
    response = fhir(nurse).post("Condition", body)
    assert response.status_code == 201, response.json()
    problem = Problem.objects.get(pk=response.json()["id"])
    assert (problem.status, problem.resolved_on) == ("resolved", date(2020, 5, 3))


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"code": {"coding": [{"system": ICD10, "code": "E11.99"}]}}, "Condition.code"),
        (
            {"code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]}},
            "Condition.code",
        ),
        ({"code": {"text": "diabetes"}}, "Condition.code"),
        ({"onsetDateTime": "2999-01-01"}, "Condition.onsetDateTime"),
        ({"onsetDateTime": "1950-01-01"}, "Condition.onsetDateTime"),
        ({"onsetDateTime": "2019-04"}, "Condition.onsetDateTime"),
        ({"onsetAge": {"value": 40, "unit": "a"}}, "Condition.onsetAge"),
        ({"abatementDateTime": "2020-01-01"}, "Condition.abatementDateTime"),
        (
            {"clinicalStatus": {"coding": [{"system": CLINICAL, "code": "remission"}]}},
            "Condition.clinicalStatus",
        ),
        (
            {"verificationStatus": {"coding": [{"system": VERIFICATION, "code": "provisional"}]}},
            "Condition.verificationStatus",
        ),
        (
            {"category": [{"coding": [{"system": CATEGORY, "code": "encounter-diagnosis"}]}]},
            "Condition.category",
        ),
        ({"note": [{"text": "x" * 2001}]}, "Condition.note"),
        (
            {"subject": {"reference": "Patient/0190f7a0-0000-7000-8000-000000000000"}},
            "Condition.subject",
        ),
        ({"subject": {"reference": "Group/abc"}}, "Condition.subject"),
    ],
)
def test_bad_input_is_422_naming_the_element_and_writes_nothing(fhir, nurse, patient, change, path):
    response = fhir(nurse).post("Condition", new_condition(patient) | change)
    assert response.status_code == 422, response.json()
    assert path in response.json()["issue"][0]["expression"]
    assert not Problem.objects.exists()


def test_a_structurally_invalid_condition_is_422(fhir, nurse, patient):
    body = new_condition(patient) | {"onsetDateTime": "not a date"}
    assert fhir(nurse).post("Condition", body).status_code == 422
    body = new_condition(patient) | {"subject": "Patient/1"}
    assert fhir(nurse).post("Condition", body).status_code == 422


def test_a_second_active_entry_of_the_same_code_is_422(fhir, nurse, patient, diabetes):
    response = fhir(nurse).post("Condition", new_condition(patient, code="E11.9"))
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["Condition.code"]
    assert Problem.objects.count() == 1


def test_if_none_exist_returns_the_listed_problem(fhir, nurse, patient, diabetes):
    response = fhir(nurse).post(
        "Condition",
        new_condition(patient, code="E11.9"),
        if_none_exist=f"patient={patient.pk}&code=E11.9&clinical-status=active",
    )
    assert response.status_code == 200
    assert response.json()["id"] == str(diabetes.pk)


def current(api, problem) -> dict:
    return api.get(f"Condition/{problem.pk}").json()


def test_update_resolves_and_changes_the_note_with_history(fhir, nurse, diabetes):
    api = fhir(nurse)
    body = current(api, diabetes)
    body["clinicalStatus"]["coding"][0]["code"] = "resolved"
    body["abatementDateTime"] = "2024-02-29"
    body["note"] = [{"text": "Resolved with weight loss"}]
    response = api.put(f"Condition/{diabetes.pk}", body, if_match='W/"1"')
    assert response.status_code == 200, response.json()
    assert response.json()["meta"]["versionId"] == "2"
    diabetes.refresh_from_db()
    assert (diabetes.status, diabetes.resolved_on, diabetes.note) == (
        "resolved",
        date(2024, 2, 29),
        "Resolved with weight loss",
    )
    history = api.get(f"Condition/{diabetes.pk}/_history").json()
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]
    first = api.get(f"Condition/{diabetes.pk}/_history/1").json()
    assert first["clinicalStatus"]["coding"][0]["code"] == "active"
    assert changes_of(last_event("fhir.updated"))["resource"] == f"Condition/{diabetes.pk}"


def test_update_with_a_stale_version_is_412_and_changes_nothing(fhir, nurse, diabetes):
    api = fhir(nurse)
    body = current(api, diabetes)
    body["note"] = [{"text": "Changed"}]
    assert api.put(f"Condition/{diabetes.pk}", body, if_match='W/"7"').status_code == 412
    diabetes.refresh_from_db()
    assert diabetes.note == "Diet controlled"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"code": {"coding": [{"system": ICD10, "code": "I10"}]}}, "Condition.code"),
        ({"onsetDateTime": "2021-01-01"}, "Condition.onsetDateTime"),
        (
            {"subject": {"reference": "Patient/0190f7a0-0000-7000-8000-000000000000"}},
            "Condition.subject",
        ),
        ({"note": [{"text": "y" * 2001}]}, "Condition.note"),
        (
            {
                "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "resolved"}]},
                "abatementDateTime": "2019-12-31",
            },
            "Condition.abatementDateTime",
        ),
    ],
)
def test_update_refuses_what_the_problem_list_cannot_change(fhir, nurse, diabetes, change, path):
    api = fhir(nurse)
    body = current(api, diabetes) | change
    response = api.put(f"Condition/{diabetes.pk}", body)
    assert response.status_code == 422, response.json()
    assert path in response.json()["issue"][0]["expression"]
    diabetes.refresh_from_db()
    assert (diabetes.status, diabetes.note) == ("active", "Diet controlled")


def test_a_resolved_problem_cannot_become_active_again(fhir, nurse, diabetes):
    problem_resolve(actor=nurse, problem=diabetes, resolved_on=date(2024, 1, 1))
    api = fhir(nurse)
    body = current(api, diabetes)
    body["clinicalStatus"]["coding"][0]["code"] = "active"
    del body["abatementDateTime"]
    response = api.put(f"Condition/{diabetes.pk}", body)
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["Condition.clinicalStatus"]


def test_update_to_entered_in_error_strikes_it_out(fhir, nurse, diabetes):
    api = fhir(nurse)
    body = current(api, diabetes)
    del body["clinicalStatus"]
    body["verificationStatus"]["coding"][0]["code"] = "entered-in-error"
    response = api.put(f"Condition/{diabetes.pk}", body)
    assert response.status_code == 200, response.json()
    diabetes.refresh_from_db()
    assert diabetes.status == "entered_in_error"
    assert api.get(f"Condition/{diabetes.pk}").status_code == 410


def test_delete_strikes_out_and_the_record_stays(fhir, nurse, diabetes):
    api = fhir(nurse)
    assert api.delete(f"Condition/{diabetes.pk}").status_code == 204
    diabetes.refresh_from_db()
    assert diabetes.status == "entered_in_error"
    assert api.get(f"Condition/{diabetes.pk}").status_code == 410
    assert api.delete(f"Condition/{diabetes.pk}").status_code == 204
    assert AuditEvent.objects.filter(action="patients.problem_struck").count() == 1
    assert changes_of(last_event("fhir.deleted"))["resource"] == f"Condition/{diabetes.pk}"


def test_paging_and_sorting_by_onset(fhir, nurse, patient, listed):
    api = fhir(nurse)
    params = {"patient": str(patient.pk), "_sort": "-onset-date", "_count": "1"}
    first = api.get("Condition", params).json()
    assert ids(first) == [listed["diabetes"]]
    assert first["total"] == 2
    following = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = api.get("Condition?" + following.partition("?")[2]).json()
    assert ids(second) == [listed["asthma"]]
    assert not [link for link in second["link"] if link["relation"] == "next"]
    ascending = api.get("Condition", params | {"_sort": "onset-date", "_count": "5"}).json()
    assert ids(ascending) == [listed["asthma"], listed["diabetes"]]
