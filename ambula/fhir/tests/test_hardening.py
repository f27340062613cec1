"""Restricted records, wrong input and protocol details across the engine."""

import json
from datetime import date

import pytest

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.fhir.models import ResourceVersion
from ambula.fhir.tests.test_condition import new_condition
from ambula.fhir.views import preferences
from ambula.patients.demographics import patient_restriction_set
from ambula.patients.models import Patient, Problem
from ambula.patients.problems import problem_add
from ambula.patients.tests.factories import registered_patient
from ambula.terminology.tests.factories import load_sample_codes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def codes():
    load_sample_codes()


@pytest.fixture
def physician_user(practice):
    return UserFactory(username="dr1", roles=[Role.PHYSICIAN])


@pytest.fixture
def restricted(front_desk, physician_user):
    patient = registered_patient(actor=front_desk, date_of_birth=date(1985, 3, 3))
    problem_add(actor=physician_user, patient=patient, code="E11.9")
    return patient_restriction_set(actor=physician_user, patient=patient, restricted=True)


def refusals(patient):
    return AuditEvent.objects.filter(action="fhir.refused", patient_id=patient.pk)


# --- Restricted records -------------------------------------------------------------------------


def test_a_restricted_record_is_403_to_read_and_left_out_of_searches(
    fhir, nurse, patient, restricted
):
    api = fhir(nurse)
    assert api.get(f"Patient/{restricted.pk}").status_code == 403
    assert refusals(restricted).count() == 1
    found = api.get("Patient", {"birthdate": "1985-03-03"}).json()
    assert found["total"] == 0
    conditions = api.get("Condition", {"patient": str(restricted.pk)}).json()
    assert conditions["total"] == 0
    assert api.get(f"Patient/{restricted.pk}/$everything").status_code == 403


def test_a_refused_write_on_a_restricted_record_is_audited_and_changes_nothing(
    fhir, nurse, restricted
):
    api = fhir(nurse)
    response = api.post("Condition", new_condition(restricted, code="I10"))
    assert response.status_code == 403
    assert not Problem.objects.filter(patient=restricted, code="I10").exists()
    assert refusals(restricted).count() == 1
    assert changes_of(refusals(restricted).get())["refused_by"] == "restricted record"


def test_emergency_access_opens_the_record_to_the_api_while_it_lasts(fhir, nurse, restricted):
    from ambula.patients.emergency import emergency_access_grant

    emergency_access_grant(actor=nurse, patient=restricted, reason="Covering the clinic today")
    api = fhir(nurse)
    assert api.get(f"Patient/{restricted.pk}").status_code == 200
    assert api.get("Patient", {"birthdate": "1985-03-03"}).json()["total"] == 1


def test_the_primary_care_provider_reads_a_restricted_record(fhir, front_desk, physician_user):
    from ambula.patients.demographics import patient_update

    patient = registered_patient(actor=front_desk, date_of_birth=date(1990, 1, 1))
    patient_update(actor=front_desk, patient=patient, primary_care_provider=physician_user)
    patient_restriction_set(actor=physician_user, patient=patient, restricted=True)
    assert fhir(physician_user).get(f"Patient/{patient.pk}").status_code == 200


# --- $everything and patient-scoped tokens --------------------------------------------------------


def test_everything_follows_the_document_category_rule(fhir, front_desk, nurse, patient):
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    from ambula.patients.documents import document_upload

    def png():
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buffer, "PNG")
        return SimpleUploadedFile("scan.png", buffer.getvalue(), "image/png")

    lab = document_upload(actor=nurse, patient=patient, uploaded_file=png(), category="lab_result")
    card = document_upload(
        actor=front_desk, patient=patient, uploaded_file=png(), category="insurance_card"
    )
    bundle = fhir(front_desk).get(f"Patient/{patient.pk}/$everything").json()
    documents = {
        entry["resource"]["id"]
        for entry in bundle["entry"]
        if entry["resource"]["resourceType"] == "DocumentReference"
    }
    assert documents == {str(card.pk)}
    assert str(lab.pk) not in json.dumps(bundle)


def test_a_patient_scoped_token_cannot_reach_the_audit_trail(fhir, privacy_officer, patient):
    api = fhir(privacy_officer, "patient/*.rs", patient=patient)
    assert api.get("AuditEvent").status_code == 403
    assert fhir(privacy_officer, "user/AuditEvent.rs").get("AuditEvent").status_code == 200


# --- Protocol details ---------------------------------------------------------------------------


def test_count_zero_gives_the_total_and_no_next_link(fhir, front_desk, patient):
    bundle = fhir(front_desk).get("Patient", {"_count": "0"}).json()
    assert bundle["total"] == 1
    assert bundle["entry"] == []
    assert [link["relation"] for link in bundle["link"]] == ["self"]


def test_paging_walks_every_match_once(fhir, front_desk):
    for number in range(5):
        registered_patient(
            actor=front_desk, family_name=f"Pager{number}", date_of_birth=date(1960, 1, number + 1)
        )
    api, seen, params = fhir(front_desk), [], {"family": "pager", "_count": "2"}
    page = api.get("Patient", params).json()
    while True:
        seen += [entry["resource"]["id"] for entry in page["entry"]]
        following = [link["url"] for link in page["link"] if link["relation"] == "next"]
        if not following:
            break
        page = api.get("Patient?" + following[0].split("?", 1)[1]).json()
    assert len(seen) == len(set(seen)) == 5


def test_preferences_are_comma_separated():
    assert preferences('return=minimal, handling=strict; x="y"') == {
        "return": "minimal",
        "handling": "strict",
    }
    assert preferences("") == {}


def test_a_missing_token_gets_a_challenge_without_an_error_code(client):
    challenge = client.get("/fhir/Patient")["WWW-Authenticate"]
    assert challenge == 'Bearer realm="ambula"'


def test_if_match_star_matches_any_version(fhir, front_desk, patient):
    api = fhir(front_desk)
    body = api.get(f"Patient/{patient.pk}").json()
    body["name"][0]["given"] = ["Starred"]
    assert api.put(f"Patient/{patient.pk}", body, if_match="*").status_code == 200


# --- Bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "element",
    [
        {"code": {"coding": None}},
        {"note": [None]},
        {"onsetDateTime": None},
    ],
)
def test_a_null_anywhere_is_422_with_its_path(fhir, nurse, patient, element):
    before = Problem.objects.count()
    response = fhir(nurse).post("Condition", new_condition(patient) | element)
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"][0].startswith("Condition.")
    assert Problem.objects.count() == before


@pytest.mark.parametrize(
    "entry",
    [
        {"request": {"method": ["GET"], "url": "Patient"}},
        {"request": {"method": "GET", "url": 5}},
        {"fullUrl": 5, "request": {"method": "GET", "url": "Patient"}},
        {"request": {"method": "POST", "url": "Patient", "ifNoneExist": 5}, "resource": {}},
        {"request": {"method": "GET", "url": "http://[/Patient"}},
        "not an entry",
    ],
)
def test_a_malformed_bundle_entry_is_a_400(fhir, front_desk, entry):
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [entry]}
    response = fhir(front_desk).post("", bundle)
    if response.status_code == 200:  # a batch answers a bad url in the entry's own response
        assert response.json()["entry"][0]["response"]["status"] == "400"
    else:
        assert response.status_code == 400


@pytest.mark.parametrize(
    "params",
    [
        {"_offset": "99999999999999999999"},
        {"_id": ",".join(["0193a0c4-7a44-7c5e-8a8e-4d1c2f9a6b10"] * 150)},
        {"gender": ",".join(["male"] * 150)},
        {"_lastUpdated": "ge9999-12-31T23:59:59.999999Z"},
        {"birthdate": "0001-01-01"},
        {"_count": "-1"},
        {"_sort": "shoe-size"},
    ],
)
def test_out_of_range_search_input_is_a_400(fhir, front_desk, params):
    response = fhir(front_desk).get("Patient", params)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_deeply_nested_json_is_a_400(fhir, front_desk):
    api = fhir(front_desk)
    response = api.client.post(
        "/fhir/Patient",
        data="[" * 100_000,
        content_type="application/fhir+json",
        HTTP_AUTHORIZATION=f"Bearer {api.token}",
    )
    assert response.status_code == 400


def test_a_transaction_with_return_minimal_still_links_its_entries(fhir, physician_user):
    patient_url = "urn:uuid:7f7d1c4e-3a10-4e0c-9a55-1b2c3d4e5f60"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient_url,
                "resource": {
                    "resourceType": "Patient",
                    "name": [{"family": "Minimal", "given": ["Mo"]}],
                    "gender": "female",
                    "birthDate": "1977-07-07",
                },
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": new_condition(Patient(pk=None))
                | {"subject": {"reference": patient_url}},
                "request": {"method": "POST", "url": "Condition"},
            },
        ],
    }
    response = fhir(physician_user).post("", bundle, prefer="return=minimal")
    assert response.status_code == 200, response.json()
    entries = response.json()["entry"]
    assert all("resource" not in entry for entry in entries)
    created = Patient.objects.get(family_name="Minimal")
    assert Problem.objects.filter(patient=created).count() == 1


@pytest.mark.django_db(transaction=True)
def test_after_a_delete_the_latest_version_stays_deleted(
    fhir, nurse, patient, django_capture_on_commit_callbacks
):
    problem = problem_add(actor=nurse, patient=patient, code="I10")
    api = fhir(nurse)
    api.get(f"Condition/{problem.pk}")
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"Condition/{problem.pk}").status_code == 204
    versions = list(
        ResourceVersion.objects.filter(resource_id=str(problem.pk))
        .order_by("version")
        .values_list("deleted", flat=True)
    )
    assert versions[-1] is True
    assert api.get(f"Condition/{problem.pk}").status_code == 410


def test_pages_stay_put_when_records_arrive_between_them(fhir, front_desk):
    for number in range(4):
        registered_patient(
            actor=front_desk, family_name=f"Pagerb{number}", date_of_birth=date(1961, 1, number + 1)
        )
    api = fhir(front_desk)
    first = api.get("Patient", {"family": "pagerb", "_count": "2"}).json()
    # A patient who sorts before everything shown so far arrives between the two pages.
    registered_patient(actor=front_desk, family_name="Pagera", date_of_birth=date(1961, 2, 1))
    following = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = api.get("Patient?" + following.split("?", 1)[1]).json()
    names = [entry["resource"]["name"][0]["family"] for entry in first["entry"] + second["entry"]]
    assert names == ["Pagerb0", "Pagerb1", "Pagerb2", "Pagerb3"]
    back = next(link["url"] for link in second["link"] if link["relation"] == "previous")
    again = api.get("Patient?" + back.split("?", 1)[1]).json()
    assert [e["resource"]["name"][0]["family"] for e in again["entry"]] == ["Pagerb0", "Pagerb1"]


def test_a_forged_page_link_is_a_400(fhir, front_desk):
    assert fhir(front_desk).get("Patient", {"_page": "bm90LWEtY3Vyc29y"}).status_code == 400
    assert fhir(front_desk).get("Patient", {"_page": "%%%"}).status_code == 400


def walk(api, params: dict, relation: str, start: dict | None = None) -> list[list[str]]:
    page = start or api.get("Condition", params).json()
    pages = []
    while True:
        pages.append([entry["resource"]["code"]["coding"][0]["code"] for entry in page["entry"]])
        links = [link["url"] for link in page["link"] if link["relation"] == relation]
        if not links:
            return pages
        page = api.get("Condition?" + links[0].split("?", 1)[1]).json()


@pytest.mark.parametrize("sort", ["onset-date", "-onset-date"])
def test_keyset_pages_walk_a_sort_with_empty_values_both_ways(fhir, nurse, patient, sort):
    onsets = {
        "E11.9": date(2020, 1, 1),
        "I10": None,
        "J45.909": date(2018, 5, 5),
        "E55.9": None,
        "M54.50": date(2022, 3, 3),
    }
    for code, onset in onsets.items():
        problem_add(actor=nurse, patient=patient, code=code, onset=onset)
    api = fhir(nurse)
    forward = walk(api, {"patient": str(patient.pk), "_sort": sort, "_count": "2"}, "next")
    codes = [code for page in forward for code in page]
    assert sorted(codes) == sorted(onsets)
    dated = [code for code in codes if onsets[code] is not None]
    assert [onsets[code] for code in dated] == sorted(
        (onsets[code] for code in dated), reverse=sort.startswith("-")
    )
    assert all(onsets[code] is None for code in codes[len(dated) :])  # empty values last
    last = api.get("Condition", {"patient": str(patient.pk), "_sort": sort, "_count": "2"})
    page = last.json()
    while any(link["relation"] == "next" for link in page["link"]):
        url = next(link["url"] for link in page["link"] if link["relation"] == "next")
        page = api.get("Condition?" + url.split("?", 1)[1]).json()
    backward = walk(api, {}, "previous", start=page)
    assert [code for page in reversed(backward) for code in page] == codes


def test_a_version_number_past_any_kept_is_404(fhir, front_desk, patient):
    api = fhir(front_desk)
    api.get(f"Patient/{patient.pk}")
    assert api.get(f"Patient/{patient.pk}/_history/99999999999999999999").status_code == 404
    assert api.get(f"Patient/{patient.pk}/_history/x1").status_code == 404
    assert api.get(f"Patient/{patient.pk}/_history/1").status_code == 200
