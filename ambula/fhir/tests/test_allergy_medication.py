"""AllergyIntolerance and MedicationStatement: the allergy and medication lists through FHIR."""

from datetime import date

import pytest

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.patients.allergies import allergies_none_known, allergy_add, allergy_status_change
from ambula.patients.medications import medication_add, medication_stop, medication_strike
from ambula.patients.models import Allergy, Medication
from ambula.patients.tests.factories import registered_patient

pytestmark = pytest.mark.django_db

ALLERGY_PROFILE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-allergyintolerance"
CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
SNOMED = "http://snomed.info/sct"
UNKNOWN_ID = "0190f7a0-0000-7000-8000-000000000000"


@pytest.fixture
def other_patient(front_desk):
    return registered_patient(actor=front_desk, date_of_birth=date(1980, 2, 2))


def ids(bundle) -> set[str]:
    return {e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"}


def last_event(action):
    return AuditEvent.objects.filter(action=action).order_by("-id").first()


# === AllergyIntolerance =======================================================================


@pytest.fixture
def penicillin(nurse, patient):
    return allergy_add(
        actor=nurse, patient=patient, substance="Penicillin", reaction="Hives", severity="severe"
    )


def new_allergy(patient, substance="Latex", **extra) -> dict:
    return {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]},
        "code": {"text": substance},
        "patient": {"reference": f"Patient/{patient.pk}"},
        "reaction": [{"manifestation": [{"text": "Rash"}], "severity": "moderate"}],
        **extra,
    }


@pytest.mark.parametrize("role", [Role.NURSE, Role.PHYSICIAN])
def test_a_clinician_reads_an_allergy(fhir, patient, penicillin, role):
    api = fhir(UserFactory(username=f"reader-{role}", roles=[role]))
    response = api.get(f"AllergyIntolerance/{penicillin.pk}")
    assert response.status_code == 200
    allergy = response.json()
    assert allergy["meta"]["profile"] == [ALLERGY_PROFILE]
    assert allergy["clinicalStatus"]["coding"][0] == {"system": CLINICAL, "code": "active"}
    assert allergy["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert allergy["code"] == {"text": "Penicillin"}
    assert allergy["patient"] == {"reference": f"Patient/{patient.pk}"}
    assert allergy["reaction"] == [{"manifestation": [{"text": "Hives"}], "severity": "severe"}]
    assert changes_of(last_event("fhir.read"))["resource"] == f"AllergyIntolerance/{penicillin.pk}"


def test_an_unknown_severity_and_no_reaction_leave_reaction_out(fhir, nurse, patient):
    allergy = allergy_add(actor=nurse, patient=patient, substance="Dust", severity="unknown")
    assert "reaction" not in fhir(nurse).get(f"AllergyIntolerance/{allergy.pk}").json()


def test_a_severity_without_a_described_reaction_marks_the_manifestation_absent(
    fhir, nurse, patient
):
    allergy = allergy_add(actor=nurse, patient=patient, substance="Dust", severity="mild")
    reaction = fhir(nurse).get(f"AllergyIntolerance/{allergy.pk}").json()["reaction"][0]
    assert reaction["severity"] == "mild"
    assert reaction["manifestation"][0]["extension"][0]["valueCode"] == "unknown"


def test_the_front_desk_cannot_read_or_write_allergies(fhir, front_desk, patient, penicillin):
    api = fhir(front_desk, "user/*.cruds")
    assert api.get(f"AllergyIntolerance/{penicillin.pk}").status_code == 403
    assert api.get("AllergyIntolerance", {"patient": str(patient.pk)}).status_code == 403
    assert api.post("AllergyIntolerance", new_allergy(patient)).status_code == 403
    assert api.delete(f"AllergyIntolerance/{penicillin.pk}").status_code == 403
    penicillin.refresh_from_db()
    assert penicillin.status == "active"
    assert not Allergy.objects.filter(substance="Latex").exists()


def test_search_allergies_by_patient_and_clinical_status(
    fhir, nurse, patient, other_patient, penicillin
):
    resolved = allergy_add(actor=nurse, patient=patient, substance="Sulfa", severity="mild")
    allergy_status_change(actor=nurse, allergy=resolved, status="resolved")
    struck = allergy_add(actor=nurse, patient=patient, substance="Eggs", severity="mild")
    allergy_status_change(actor=nurse, allergy=struck, status="entered_in_error")
    theirs = allergy_add(actor=nurse, patient=other_patient, substance="Latex", severity="mild")
    api = fhir(nurse)
    search = lambda **params: ids(api.get("AllergyIntolerance", params).json())  # noqa: E731
    mine = str(patient.pk)
    assert search(patient=mine) == {str(penicillin.pk), str(resolved.pk)}
    assert search(patient=f"Patient/{mine}") == {str(penicillin.pk), str(resolved.pk)}
    assert search(patient=mine, **{"clinical-status": "active"}) == {str(penicillin.pk)}
    assert search(patient=mine, **{"clinical-status": f"{CLINICAL}|resolved"}) == {str(resolved.pk)}
    assert search(patient=mine, **{"clinical-status": "inactive"}) == set()
    assert search(patient=UNKNOWN_ID) == set()
    assert search(patient=str(other_patient.pk)) == {str(theirs.pk)}
    assert api.get(f"AllergyIntolerance/{struck.pk}").status_code == 410
    scoped = fhir(nurse, "patient/*.rs", patient=patient)
    assert ids(scoped.get("AllergyIntolerance").json()) == {str(penicillin.pk), str(resolved.pk)}
    assert scoped.get(f"AllergyIntolerance/{theirs.pk}").status_code == 404


def test_create_an_allergy_through_the_service(fhir, nurse, patient):
    allergies_none_known(actor=nurse, patient=patient)
    response = fhir(nurse).post("AllergyIntolerance", new_allergy(patient))
    assert response.status_code == 201, response.json()
    allergy = Allergy.objects.get(pk=response.json()["id"])
    assert (allergy.substance, allergy.reaction, allergy.severity, allergy.status) == (
        "Latex",
        "Rash",
        "moderate",
        "active",
    )
    patient.refresh_from_db()
    assert not patient.no_known_allergies
    assert last_event("patients.allergy_added").patient_id == patient.pk


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (
            {"code": {"coding": [{"system": SNOMED, "code": "111088007"}]}},
            "AllergyIntolerance.code",
        ),
        ({"code": {"text": "x" * 201}}, "AllergyIntolerance.code"),
        (
            {"clinicalStatus": {"coding": [{"system": CLINICAL, "code": "inactive"}]}},
            "AllergyIntolerance.clinicalStatus",
        ),
        (
            {"clinicalStatus": {"coding": [{"system": CLINICAL, "code": "resolved"}]}},
            "AllergyIntolerance.clinicalStatus",
        ),
        (
            {"verificationStatus": {"coding": [{"system": VERIFICATION, "code": "refuted"}]}},
            "AllergyIntolerance.verificationStatus",
        ),
        ({"patient": {"reference": f"Patient/{UNKNOWN_ID}"}}, "AllergyIntolerance.patient"),
        (
            {"reaction": [{"manifestation": [{"text": "a"}]}, {"manifestation": [{"text": "b"}]}]},
            "AllergyIntolerance.reaction",
        ),
    ],
)
def test_bad_allergies_are_422_and_write_nothing(fhir, nurse, patient, change, path):
    response = fhir(nurse).post("AllergyIntolerance", new_allergy(patient) | change)
    assert response.status_code == 422, response.json()
    assert path in response.json()["issue"][0]["expression"]
    assert not Allergy.objects.exists()


def test_a_duplicate_active_allergy_is_422_on_the_code(fhir, nurse, patient, penicillin):
    response = fhir(nurse).post("AllergyIntolerance", new_allergy(patient, "penicillin"))
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["AllergyIntolerance.code"]
    assert Allergy.objects.count() == 1


def test_update_resolves_an_allergy_with_history_and_if_match(fhir, nurse, penicillin):
    api = fhir(nurse)
    path = f"AllergyIntolerance/{penicillin.pk}"
    body = api.get(path).json()
    body["clinicalStatus"]["coding"][0]["code"] = "resolved"
    assert api.put(path, body, if_match='W/"9"').status_code == 412
    penicillin.refresh_from_db()
    assert penicillin.status == "active"
    response = api.put(path, body, if_match='W/"1"')
    assert response.status_code == 200, response.json()
    assert response.json()["meta"]["versionId"] == "2"
    penicillin.refresh_from_db()
    assert penicillin.status == "resolved"
    history = api.get(f"{path}/_history").json()
    assert [e["resource"]["clinicalStatus"]["coding"][0]["code"] for e in history["entry"]] == [
        "resolved",
        "active",
    ]
    body = response.json()
    body["clinicalStatus"]["coding"][0]["code"] = "active"
    assert api.put(path, body).status_code == 422


def test_update_cannot_rename_the_substance(fhir, nurse, penicillin):
    api = fhir(nurse)
    body = api.get(f"AllergyIntolerance/{penicillin.pk}").json()
    body["code"] = {"text": "Amoxicillin"}
    response = api.put(f"AllergyIntolerance/{penicillin.pk}", body)
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["AllergyIntolerance.code"]
    penicillin.refresh_from_db()
    assert penicillin.substance == "Penicillin"


def test_delete_marks_an_allergy_entered_in_error(fhir, nurse, penicillin):
    api = fhir(nurse)
    assert api.delete(f"AllergyIntolerance/{penicillin.pk}").status_code == 204
    penicillin.refresh_from_db()
    assert penicillin.status == "entered_in_error"
    assert api.get(f"AllergyIntolerance/{penicillin.pk}").status_code == 410
    assert changes_of(last_event("fhir.deleted"))["resource"].startswith("AllergyIntolerance/")


# === MedicationStatement ======================================================================


@pytest.fixture
def metformin(nurse, patient):
    return medication_add(
        actor=nurse,
        patient=patient,
        name="Metformin",
        dose="500 mg",
        route="oral",
        frequency="twice daily",
        started_on=date(2021, 3, 1),
        note="With meals",
    )


def new_statement(patient, **extra) -> dict:
    return {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": {"text": "Lisinopril"},
        "subject": {"reference": f"Patient/{patient.pk}"},
        "effectivePeriod": {"start": "2022-05-01"},
        "dosage": [
            {"text": "10 mg daily", "route": {"coding": [{"system": SNOMED, "code": "26643006"}]}}
        ],
        **extra,
    }


def test_a_clinician_reads_a_medication_statement(fhir, physician, patient, metformin):
    response = fhir(physician).get(f"MedicationStatement/{metformin.pk}")
    assert response.status_code == 200
    statement = response.json()
    assert "profile" not in statement["meta"]
    assert statement["status"] == "active"
    assert statement["medicationCodeableConcept"] == {"text": "Metformin"}
    assert statement["subject"] == {"reference": f"Patient/{patient.pk}"}
    assert statement["effectivePeriod"] == {"start": "2021-03-01"}
    assert statement["dateAsserted"].endswith("Z")
    assert statement["dosage"][0]["text"] == "500 mg twice daily"
    assert statement["dosage"][0]["route"]["coding"][0] == {
        "system": SNOMED,
        "code": "26643006",
        "display": "Oral route",
    }
    assert statement["note"] == [{"text": "With meals"}]


def test_a_route_without_a_code_is_sent_as_text(fhir, nurse, patient):
    other = medication_add(actor=nurse, patient=patient, name="Herbal tea", route="other")
    route = fhir(nurse).get(f"MedicationStatement/{other.pk}").json()["dosage"][0]["route"]
    assert route == {"text": "Other"}


def test_the_front_desk_cannot_read_medications(fhir, front_desk, metformin):
    api = fhir(front_desk, "user/*.cruds")
    assert api.get(f"MedicationStatement/{metformin.pk}").status_code == 403
    assert api.get("MedicationStatement").status_code == 403


def test_search_medications_by_patient_status_and_effective(
    fhir, nurse, patient, other_patient, metformin
):
    stopped = medication_add(
        actor=nurse, patient=patient, name="Ibuprofen", route="oral", started_on=date(2019, 1, 1)
    )
    medication_stop(actor=nurse, medication=stopped, stopped_on=date(2019, 2, 1))
    struck = medication_add(actor=nurse, patient=patient, name="Wrong", route="oral")
    medication_strike(actor=nurse, medication=struck)
    theirs = medication_add(actor=nurse, patient=other_patient, name="Aspirin", route="oral")
    api = fhir(nurse)
    search = lambda **params: ids(api.get("MedicationStatement", params).json())  # noqa: E731
    mine = str(patient.pk)
    both = {str(metformin.pk), str(stopped.pk)}
    assert search(patient=mine) == both
    assert search(patient=mine, status="active") == {str(metformin.pk)}
    assert search(patient=mine, status="stopped") == {str(stopped.pk)}
    assert search(patient=mine, status="entered-in-error") == set()
    assert search(patient=mine, effective="2019-01-15") == {str(stopped.pk)}
    assert search(patient=mine, effective="2020") == set()
    assert search(patient=mine, effective="2024-06") == {str(metformin.pk)}
    assert search(patient=mine, effective="ge2019-03-01") == {str(metformin.pk)}
    assert search(patient=mine, effective="lt2020-01-01") == {str(stopped.pk)}
    assert api.get("MedicationStatement", {"effective": "soon"}).status_code == 400
    assert api.get(f"MedicationStatement/{struck.pk}").status_code == 410
    scoped = fhir(nurse, "patient/*.rs", patient=other_patient)
    assert ids(scoped.get("MedicationStatement").json()) == {str(theirs.pk)}
    assert scoped.get(f"MedicationStatement/{metformin.pk}").status_code == 404


def test_create_a_medication_statement(fhir, nurse, patient):
    response = fhir(nurse).post("MedicationStatement", new_statement(patient))
    assert response.status_code == 201, response.json()
    medication = Medication.objects.get(pk=response.json()["id"])
    assert (medication.name, medication.dose, medication.route, medication.started_on) == (
        "Lisinopril",
        "10 mg daily",
        "oral",
        date(2022, 5, 1),
    )
    assert response.json()["dosage"][0]["text"] == "10 mg daily"
    assert last_event("patients.medication_added").patient_id == patient.pk


def test_create_a_completed_medication_stops_it(fhir, nurse, patient):
    body = new_statement(
        patient, status="completed", effectivePeriod={"start": "2022-05-01", "end": "2022-06-01"}
    )
    response = fhir(nurse).post("MedicationStatement", body)
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "stopped"
    medication = Medication.objects.get(pk=response.json()["id"])
    assert (medication.status, medication.stopped_on) == ("stopped", date(2022, 6, 1))


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"status": "on-hold"}, "MedicationStatement.status"),
        ({"status": "entered-in-error"}, "MedicationStatement.status"),
        (
            {"medicationCodeableConcept": {"coding": [{"system": SNOMED, "code": "1"}]}},
            "MedicationStatement.medicationCodeableConcept",
        ),
        (
            {"medicationCodeableConcept": {"text": "x" * 201}},
            "MedicationStatement.medicationCodeableConcept.text",
        ),
        ({"effectivePeriod": {"start": "2999-01-01"}}, "MedicationStatement.effectivePeriod.start"),
        (
            {"effectivePeriod": {"start": "2022-05-01", "end": "2022-06-01"}},
            "MedicationStatement.effectivePeriod.end",
        ),
        (
            {"status": "stopped", "effectivePeriod": {"start": "2022-05-01", "end": "2022-04-01"}},
            "MedicationStatement.effectivePeriod.end",
        ),
        (
            {"dosage": [{"route": {"coding": [{"system": SNOMED, "code": "999"}]}}]},
            "MedicationStatement.dosage[0].route",
        ),
        ({"dosage": [{"text": "x" * 101}]}, "MedicationStatement.dosage[0].text"),
        (
            {"effectiveDateTime": "2022-05-01", "effectivePeriod": None},
            "MedicationStatement.effectiveDateTime",
        ),
        ({"subject": {"reference": f"Patient/{UNKNOWN_ID}"}}, "MedicationStatement.subject"),
    ],
)
def test_bad_medication_statements_are_422_and_write_nothing(fhir, nurse, patient, change, path):
    body = {key: value for key, value in (new_statement(patient) | change).items() if value}
    response = fhir(nurse).post("MedicationStatement", body)
    assert response.status_code == 422, response.json()
    assert path in response.json()["issue"][0]["expression"]
    assert not Medication.objects.exists()


def test_update_stops_a_medication_with_history_and_if_match(fhir, nurse, metformin):
    api = fhir(nurse)
    path = f"MedicationStatement/{metformin.pk}"
    body = api.get(path).json()
    body["status"] = "stopped"
    body["effectivePeriod"]["end"] = "2024-01-31"
    assert api.put(path, body, if_match='W/"2"').status_code == 412
    response = api.put(path, body, if_match='W/"1"')
    assert response.status_code == 200, response.json()
    metformin.refresh_from_db()
    assert (metformin.status, metformin.stopped_on) == ("stopped", date(2024, 1, 31))
    versions = [e["resource"]["status"] for e in api.get(f"{path}/_history").json()["entry"]]
    assert versions == ["stopped", "active"]
    assert api.get(f"{path}/_history/1").json()["status"] == "active"


def test_update_refuses_changes_the_list_cannot_make(fhir, nurse, metformin):
    api = fhir(nurse)
    path = f"MedicationStatement/{metformin.pk}"
    body = api.get(path).json()
    body["dosage"][0]["text"] = "1000 mg twice daily"
    response = api.put(path, body)
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["MedicationStatement.dosage[0].text"]
    metformin.refresh_from_db()
    assert metformin.dose == "500 mg"


def test_update_and_delete_strike_out(fhir, nurse, patient, metformin):
    api = fhir(nurse)
    other = medication_add(actor=nurse, patient=patient, name="Wrong", route="oral")
    body = api.get(f"MedicationStatement/{other.pk}").json()
    body["status"] = "entered-in-error"
    assert api.put(f"MedicationStatement/{other.pk}", body).status_code == 200
    assert api.get(f"MedicationStatement/{other.pk}").status_code == 410
    assert api.delete(f"MedicationStatement/{metformin.pk}").status_code == 204
    metformin.refresh_from_db()
    assert metformin.status == "entered_in_error"
    assert api.get(f"MedicationStatement/{metformin.pk}").status_code == 410
