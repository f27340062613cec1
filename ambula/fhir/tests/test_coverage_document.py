"""Coverage and DocumentReference through FHIR: both read-only."""

import io
from datetime import date
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.core.storage import EncryptedFileSystemStorage
from ambula.patients.coverage import coverage_add, coverage_end, coverage_strike, payer_create
from ambula.patients.documents import document_strike, document_upload
from ambula.patients.models import Coverage, Document
from ambula.patients.tests.factories import registered_patient

pytestmark = pytest.mark.django_db

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
UNKNOWN_ID = "0190f7a0-0000-7000-8000-000000000000"


@pytest.fixture
def other_patient(front_desk):
    return registered_patient(actor=front_desk, date_of_birth=date(1980, 2, 2))


def ids(bundle) -> list[str]:
    return [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"]


def last_event(action):
    return AuditEvent.objects.filter(action=action).order_by("-id").first()


# === Coverage =================================================================================


@pytest.fixture
def prairie(admin_user):
    return payer_create(actor=admin_user, name="Prairie Mutual Health", payer_id="AMB01")


@pytest.fixture
def lakeshore(admin_user):
    return payer_create(actor=admin_user, name="Lakeshore Care Alliance", payer_id="AMB02")


@pytest.fixture
def primary(front_desk, patient, prairie):
    return coverage_add(
        actor=front_desk,
        patient=patient,
        payer=prairie,
        member_id="W123456789",
        plan_name="PPO Gold",
        group_number="GRP-4410",
        priority=Coverage.Priority.PRIMARY,
        relationship=Coverage.Relationship.SELF,
        effective_from=date(2025, 1, 1),
        copay=Decimal("25.00"),
    )


def test_the_front_desk_reads_a_plan_with_the_must_support_elements(
    fhir, front_desk, patient, prairie, primary
):
    response = fhir(front_desk).get(f"Coverage/{primary.pk}")
    assert response.status_code == 200
    coverage = response.json()
    assert coverage["meta"]["profile"] == [US_CORE + "us-core-coverage"]
    assert coverage["status"] == "active"
    assert coverage["subscriberId"] == "W123456789"
    assert coverage["identifier"][0]["value"] == "W123456789"
    assert coverage["identifier"][0]["type"]["coding"][0]["code"] == "MB"
    assert coverage["beneficiary"] == {"reference": f"Patient/{patient.pk}"}
    assert coverage["relationship"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship",
        "code": "self",
        "display": "Self",
    }
    assert coverage["period"] == {"start": "2025-01-01"}
    assert coverage["payor"] == [
        {"reference": f"Organization/{prairie.pk}", "display": "Prairie Mutual Health"}
    ]
    classes = {c["type"]["coding"][0]["code"]: c["value"] for c in coverage["class"]}
    assert classes == {"group": "GRP-4410", "plan": "PPO Gold"}
    assert coverage["order"] == 1
    assert coverage["costToBeneficiary"][0]["valueMoney"] == {"value": 25.0, "currency": "USD"}
    assert changes_of(last_event("fhir.read"))["resource"] == f"Coverage/{primary.pk}"


def test_a_dependent_on_a_spouses_plan(fhir, front_desk, patient, lakeshore):
    coverage = coverage_add(
        actor=front_desk,
        patient=patient,
        payer=lakeshore,
        member_id="LC-55",
        priority=Coverage.Priority.SECONDARY,
        relationship=Coverage.Relationship.SPOUSE,
        subscriber_given_name="Maria",
        subscriber_family_name="Rivera",
        subscriber_date_of_birth=date(1971, 1, 1),
        subscriber_sex="F",
    )
    resource = fhir(front_desk).get(f"Coverage/{coverage.pk}").json()
    assert resource["relationship"]["coding"][0]["code"] == "spouse"
    assert resource["order"] == 2
    assert "class" not in resource and "period" not in resource


def test_coverage_is_read_only(fhir, front_desk, patient, primary):
    api = fhir(front_desk)
    body = api.get(f"Coverage/{primary.pk}").json()
    assert api.put(f"Coverage/{primary.pk}", body).status_code == 405
    del body["id"]
    assert api.post("Coverage", body).status_code == 405
    assert api.delete(f"Coverage/{primary.pk}").status_code == 405
    assert Coverage.objects.count() == 1


def test_search_coverage_by_patient_beneficiary_payor_and_status(
    fhir, front_desk, patient, other_patient, prairie, lakeshore, primary
):
    secondary = coverage_add(
        actor=front_desk,
        patient=patient,
        payer=lakeshore,
        member_id="LC-1",
        priority=Coverage.Priority.SECONDARY,
        relationship=Coverage.Relationship.SELF,
        effective_from=date(2024, 1, 1),
    )
    coverage_end(actor=front_desk, coverage=secondary, effective_to=date(2024, 12, 31))
    struck = coverage_add(
        actor=front_desk,
        patient=patient,
        payer=lakeshore,
        member_id="LC-2",
        priority=Coverage.Priority.TERTIARY,
        relationship=Coverage.Relationship.SELF,
    )
    coverage_strike(actor=front_desk, coverage=struck)
    theirs = coverage_add(
        actor=front_desk,
        patient=other_patient,
        payer=prairie,
        member_id="P-9",
        priority=Coverage.Priority.PRIMARY,
        relationship=Coverage.Relationship.SELF,
    )
    api = fhir(front_desk)
    search = lambda **params: ids(api.get("Coverage", params).json())  # noqa: E731
    mine = str(patient.pk)
    assert search(patient=mine) == [str(primary.pk), str(secondary.pk)]
    assert search(beneficiary=f"Patient/{mine}") == [str(primary.pk), str(secondary.pk)]
    assert search(patient=mine, status="active") == [str(primary.pk)]
    assert search(patient=mine, status="cancelled") == [str(secondary.pk)]
    assert search(patient=mine, status="entered-in-error") == []
    assert set(search(payor=f"Organization/{prairie.pk}")) == {str(primary.pk), str(theirs.pk)}
    assert search(payor=str(lakeshore.pk)) == [str(secondary.pk)]
    assert search(payor=f"Patient/{prairie.pk}") == []
    assert search(patient=UNKNOWN_ID) == []
    ended = api.get(f"Coverage/{secondary.pk}").json()
    assert (ended["status"], ended["period"]) == (
        "cancelled",
        {"start": "2024-01-01", "end": "2024-12-31"},
    )
    assert api.get(f"Coverage/{struck.pk}").status_code == 410
    scoped = fhir(front_desk, "patient/*.rs", patient=other_patient)
    assert search_ids(scoped, "Coverage") == [str(theirs.pk)]
    assert scoped.get(f"Coverage/{primary.pk}").status_code == 404


def search_ids(api, resource_type, **params):
    return ids(api.get(resource_type, params).json())


def test_a_role_without_demographics_is_refused_coverage(fhir, primary):
    patient_user = UserFactory(username="portal1", roles=[Role.PATIENT])
    assert fhir(patient_user).get(f"Coverage/{primary.pk}").status_code == 403


def test_the_member_id_is_not_in_the_audit_trail_in_clear(fhir, front_desk, primary):
    fhir(front_desk).get(f"Coverage/{primary.pk}")
    assert "W123456789" not in str(changes_of(last_event("fhir.read")))


# === DocumentReference =======================================================================


@pytest.fixture(autouse=True)
def storage(monkeypatch, tmp_path):
    storage = EncryptedFileSystemStorage(location=tmp_path / "documents")
    monkeypatch.setattr(Document._meta.get_field("file"), "storage", storage)
    return storage


def png() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (20, 120, 110)).save(buffer, "PNG")
    return SimpleUploadedFile("scan.png", buffer.getvalue(), "image/png")


@pytest.fixture
def lab_report(nurse, patient):
    return document_upload(
        actor=nurse,
        patient=patient,
        uploaded_file=png(),
        category="lab_result",
        title="Lipid panel",
        document_date=date(2025, 3, 4),
    )


@pytest.fixture
def card(front_desk, patient):
    return document_upload(
        actor=front_desk,
        patient=patient,
        uploaded_file=png(),
        category="insurance_card",
        title="Card front",
        document_date=date(2025, 1, 2),
    )


def test_a_clinician_reads_a_document_reference(fhir, nurse, patient, lab_report):
    response = fhir(nurse).get(f"DocumentReference/{lab_report.pk}")
    assert response.status_code == 200
    document = response.json()
    assert document["meta"]["profile"] == [US_CORE + "us-core-documentreference"]
    assert document["status"] == "current"
    assert document["type"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "11502-2",
        "display": "Laboratory report",
    }
    assert document["category"][0]["coding"][0]["code"] == "lab_result"
    assert document["subject"] == {"reference": f"Patient/{patient.pk}"}
    assert document["date"].endswith("Z")
    attachment = document["content"][0]["attachment"]
    assert attachment["contentType"] == "image/png"
    assert attachment["size"] == lab_report.size
    assert (attachment["title"], attachment["creation"]) == ("Lipid panel", "2025-03-04")
    assert attachment["url"] == (
        f"{settings.BASE_URL}/patients/{patient.pk}/documents/{lab_report.pk}/"
    )
    assert document["context"] == {"period": {"start": "2025-03-04"}}


def test_the_attachment_url_serves_the_file_to_a_signed_in_clinician(
    client, sign_in, fhir, nurse, lab_report, storage
):
    url = fhir(nurse).get(f"DocumentReference/{lab_report.pk}").json()["content"][0]
    path = url["attachment"]["url"].removeprefix(settings.BASE_URL)
    response = sign_in(client, nurse).get(path)
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")


def test_a_category_without_a_loinc_type_says_unknown(fhir, nurse, card):
    document_type = fhir(nurse).get(f"DocumentReference/{card.pk}").json()["type"]
    assert document_type["coding"][0]["code"] == "unknown"
    assert document_type["text"] == "Insurance card"


def test_the_front_desk_sees_the_non_clinical_documents_only(
    fhir, front_desk, patient, card, lab_report
):
    api = fhir(front_desk, "user/*.cruds")
    assert api.get(f"DocumentReference/{card.pk}").status_code == 200
    assert api.get(f"DocumentReference/{lab_report.pk}").status_code == 404
    found = api.get("DocumentReference", {"patient": str(patient.pk)}).json()
    assert [entry["resource"]["id"] for entry in found["entry"]] == [str(card.pk)]


def test_a_role_without_the_chart_or_demographics_is_refused_documents(fhir, card):
    api = fhir(UserFactory(username="portal1", roles=[Role.PATIENT]), "user/*.cruds")
    assert api.get(f"DocumentReference/{card.pk}").status_code == 403
    assert api.get("DocumentReference").status_code == 403


def test_document_reference_is_read_only(fhir, nurse, lab_report):
    api = fhir(nurse)
    body = api.get(f"DocumentReference/{lab_report.pk}").json()
    assert api.put(f"DocumentReference/{lab_report.pk}", body).status_code == 405
    assert api.delete(f"DocumentReference/{lab_report.pk}").status_code == 405
    lab_report.refresh_from_db()
    assert not lab_report.entered_in_error


def test_search_documents_by_the_us_core_parameters(
    fhir, nurse, patient, other_patient, lab_report, card
):
    theirs = document_upload(
        actor=nurse, patient=other_patient, uploaded_file=png(), category="imaging"
    )
    struck = document_upload(actor=nurse, patient=patient, uploaded_file=png(), category="other")
    document_strike(actor=nurse, document=struck)
    api = fhir(nurse)
    mine = str(patient.pk)
    lab, scan = str(lab_report.pk), str(card.pk)
    assert search_ids(api, "DocumentReference", patient=mine) == [lab, scan]
    assert search_ids(api, "DocumentReference", _id=lab) == [lab]
    assert search_ids(api, "DocumentReference", patient=mine, category="lab_result") == [lab]
    assert search_ids(
        api, "DocumentReference", patient=mine, category="urn:ambula:document-category|lab_result"
    ) == [lab]
    assert search_ids(api, "DocumentReference", patient=mine, category="clinical-note") == []
    assert search_ids(api, "DocumentReference", patient=mine, type="http://loinc.org|11502-2") == [
        lab
    ]
    assert search_ids(api, "DocumentReference", patient=mine, type="unknown") == [scan]
    assert search_ids(api, "DocumentReference", patient=mine, type="18748-4") == []
    assert search_ids(api, "DocumentReference", patient=mine, status="current") == [lab, scan]
    assert search_ids(api, "DocumentReference", patient=mine, period="2025-01-02") == [scan]
    assert search_ids(api, "DocumentReference", patient=mine, date="ge2000-01-01") == [lab, scan]
    assert search_ids(api, "DocumentReference", patient=mine, date="lt2000-01-01") == []
    assert search_ids(api, "DocumentReference", type="18748-4") == [str(theirs.pk)]
    assert api.get(f"DocumentReference/{struck.pk}").status_code == 410
    assert api.get("DocumentReference", {"date": "tomorrow"}).status_code == 400
    scoped = fhir(nurse, "patient/*.rs", patient=other_patient)
    assert search_ids(scoped, "DocumentReference") == [str(theirs.pk)]
    assert scoped.get(f"DocumentReference/{lab_report.pk}").status_code == 404
    searched = last_event("fhir.searched")
    assert searched.patient_id == other_patient.pk
