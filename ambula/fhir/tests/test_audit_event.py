"""AuditEvent: the trail, for the privacy officer and the administrator only, never written."""

import json

import pytest

from ambula.audit.models import AuditEvent
from ambula.audit.services import record
from ambula.fhir.tests.scheduling_scene import build_scene
from ambula.scheduling.booking import appointment_book
from ambula.scheduling.tests.factories import make_provider

pytestmark = pytest.mark.django_db


def _matches(response) -> list[dict]:
    return [
        entry["resource"]
        for entry in response.json().get("entry", [])
        if entry["search"]["mode"] == "match"
    ]


@pytest.fixture
def api_read(fhir, front_desk, patient):
    """A front-desk app finds the patient's visit over FHIR: the event the tests look at."""
    scene = build_scene()
    appointment_book(
        actor=front_desk,
        patient=patient,
        provider=scene.provider,
        location=scene.location,
        appointment_type=scene.appointment_type,
        starts_at=scene.at(9),
    )
    response = fhir(front_desk).get("Appointment", {"patient": str(patient.pk)})
    assert response.json()["total"] == 1
    return AuditEvent.objects.filter(action="fhir.searched").order_by("-sequence").first()


@pytest.mark.parametrize("reader", ["privacy_officer", "admin_user"])
def test_privacy_officer_and_admin_read_an_event(
    fhir, request, api_read, patient, front_desk, reader
):
    response = fhir(request.getfixturevalue(reader)).get(f"AuditEvent/{api_read.pk}")
    assert response.status_code == 200
    event = response.json()
    assert event["type"]["code"] == "110110"  # Patient Record
    assert event["subtype"][0] == {
        "system": "urn:ambula:audit-action",
        "code": "fhir.searched",
        "display": "An API client searched resources.",
    }
    assert event["action"] == "E"
    assert event["outcome"] == "0"
    who = event["agent"][0]
    assert who["requestor"] is True
    assert who["who"]["display"] == front_desk.username
    app = event["agent"][1]
    assert app["who"]["identifier"]["system"] == "urn:ambula:api-client"
    assert app["who"]["identifier"]["value"]
    assert event["source"]["observer"]["display"] == "Ambula"
    assert event["entity"][0]["what"]["reference"] == f"Patient/{patient.pk}"
    assert "meta" not in event or "versionId" not in event["meta"]


def test_a_physician_is_refused_even_with_every_scope(fhir, physician, api_read):
    api = fhir(physician, "user/*.cruds")
    assert api.get(f"AuditEvent/{api_read.pk}").status_code == 403
    assert api.get("AuditEvent").status_code == 403
    refused = AuditEvent.objects.filter(action="fhir.refused", actor=physician)
    assert refused.count() == 2


def test_the_front_desk_and_a_scope_without_auditevent_are_refused(
    fhir, front_desk, privacy_officer, api_read
):
    assert fhir(front_desk).get("AuditEvent").status_code == 403
    assert fhir(privacy_officer, "user/Patient.rs").get("AuditEvent").status_code == 403


def test_the_trail_cannot_be_written(fhir, privacy_officer, admin_user, api_read):
    api = fhir(admin_user)
    current = api.get(f"AuditEvent/{api_read.pk}").json()
    assert api.put(f"AuditEvent/{api_read.pk}", current).status_code == 405
    assert api.delete(f"AuditEvent/{api_read.pk}").status_code == 405
    body = {key: value for key, value in current.items() if key not in ("id", "meta")}
    assert api.post("AuditEvent", body).status_code == 405
    assert AuditEvent.objects.filter(pk=api_read.pk).exists()


def test_encrypted_details_are_not_shown(fhir, privacy_officer, front_desk, patient):
    secret = "Zanzibar-Quokka"
    record(
        actor=front_desk,
        action="patients.registered",
        category="demographics",
        patient=patient,
        changes={"family_name": {"old": secret, "new": "Other"}},
    )
    event = AuditEvent.objects.get(action="patients.registered", changed_fields=["family_name"])
    response = fhir(privacy_officer).get(f"AuditEvent/{event.pk}")
    assert response.status_code == 200
    assert secret not in json.dumps(response.json())
    assert len(response.json()["agent"]) == 1  # no client: it happened in the app


def test_search_newest_first_and_by_each_parameter(
    fhir, privacy_officer, front_desk, patient, api_read
):
    doctor = make_provider()
    record(actor=doctor.user, action="auth.signed_in", category="authentication")
    record(
        actor=None,
        action="auth.sign_in_failed",
        category="authentication",
        outcome=AuditEvent.Outcome.FAILURE,
        username="nobody",
    )
    api = fhir(privacy_officer)
    everything = _matches(api.get("AuditEvent", {"_count": "200"}))
    recorded = [event["recorded"] for event in everything]
    assert recorded == sorted(recorded, reverse=True)
    assert len(everything) == AuditEvent.objects.count() - 1  # not the search being recorded

    by_doctor = _matches(api.get("AuditEvent", {"agent": f"Practitioner/{doctor.pk}"}))
    assert [event["subtype"][0]["code"] for event in by_doctor] == ["auth.signed_in"]
    assert by_doctor[0]["type"]["code"] == "110114"
    assert by_doctor[0]["agent"][0]["who"]["reference"] == f"Practitioner/{doctor.pk}"
    by_user = _matches(api.get("AuditEvent", {"agent": str(front_desk.pk)}))
    assert by_user and all(e["agent"][0]["who"]["display"] == front_desk.username for e in by_user)
    assert _matches(api.get("AuditEvent", {"agent-name": "nobody"}))[0]["outcome"] == "4"

    about_patient = _matches(api.get("AuditEvent", {"patient": f"Patient/{patient.pk}"}))
    assert about_patient and all(
        event["entity"][0]["what"]["reference"] == f"Patient/{patient.pk}"
        for event in about_patient
    )
    assert _matches(api.get("AuditEvent", {"patient": "not-an-id"})) == []
    assert len(_matches(api.get("AuditEvent", {"entity": f"Patient/{patient.pk}"}))) == len(
        about_patient
    )

    searched = _matches(api.get("AuditEvent", {"subtype": "fhir.searched"}))
    assert [event["id"] for event in searched][-1] == str(api_read.pk)
    assert {e["action"] for e in _matches(api.get("AuditEvent", {"action": "C"}))} == {"C"}
    assert "E" not in {e["action"] for e in _matches(api.get("AuditEvent", {"action": "R"}))}
    failed = _matches(api.get("AuditEvent", {"outcome": "4"}))
    assert {event["outcome"] for event in failed} == {"4"}
    assert _matches(api.get("AuditEvent", {"outcome": "12"})) == []

    oldest_first = _matches(api.get("AuditEvent", {"_sort": "date", "_count": "200"}))
    assert [e["recorded"] for e in oldest_first] == sorted(e["recorded"] for e in oldest_first)
    assert api.get("AuditEvent", {"date": "ge2000-01-01"}).json()["total"] >= len(everything)
    assert api.get("AuditEvent", {"date": "lt2000-01-01"}).json()["total"] == 0
    assert api.get("AuditEvent", {"date": "last week"}).status_code == 400


def test_a_refusal_is_an_event_with_a_failure_outcome(fhir, physician, privacy_officer):
    fhir(physician).get("AuditEvent")
    refused = _matches(fhir(privacy_officer).get("AuditEvent", {"subtype": "fhir.refused"}))
    assert refused[0]["outcome"] == "4"
    assert refused[0]["type"]["code"] == "110113"
    assert refused[0]["agent"][0]["who"]["display"] == physician.username


def test_an_unknown_event_is_404(fhir, privacy_officer):
    api = fhir(privacy_officer)
    assert api.get("AuditEvent/00000000-0000-0000-0000-000000000000").status_code == 404
    assert api.get("AuditEvent/garbage").status_code == 404


def test_last_updated_searches_and_sorts_by_when_it_happened(fhir, privacy_officer):
    api = fhir(privacy_officer)
    found = api.get("AuditEvent", {"_lastUpdated": "ge2000-01-01", "_sort": "-_lastUpdated"})
    assert found.status_code == 200
    recorded = [entry["resource"]["recorded"] for entry in found.json()["entry"]]
    assert recorded and recorded == sorted(recorded, reverse=True)
    assert api.get("AuditEvent", {"_lastUpdated": "lt2000-01-01"}).json()["total"] == 0
