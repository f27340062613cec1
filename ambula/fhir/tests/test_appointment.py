"""Appointment: read, search, and booking, moving and cancelling through the booking service."""

from datetime import UTC, date, timedelta

import pytest
from django.db import connection

from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.fhir.registry import all_mappers
from ambula.fhir.resources.slot import slot_id
from ambula.fhir.tests.scheduling_scene import build_scene
from ambula.patients.tests.factories import registered_patient
from ambula.scheduling.booking import appointment_book
from ambula.scheduling.models import ACTIVE_STATUSES, Appointment
from ambula.scheduling.tests.factories import make_location, make_provider

pytestmark = pytest.mark.django_db


@pytest.fixture
def scene(practice):
    return build_scene(rooms=2)


@pytest.fixture
def booked(scene, front_desk, patient):
    return appointment_book(
        actor=front_desk,
        patient=patient,
        provider=scene.provider,
        location=scene.location,
        appointment_type=scene.appointment_type,
        starts_at=scene.at(9),
        note="Knee pain",
    )


def _z(moment) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ids(response) -> list[str]:
    return [
        entry["resource"]["id"]
        for entry in response.json().get("entry", [])
        if entry["search"]["mode"] == "match"
    ]


def _expressions(response) -> list[str]:
    return [path for issue in response.json()["issue"] for path in issue.get("expression", [])]


# --- read and search ----------------------------------------------------------------------------


def test_read_has_the_visit_its_participants_and_slot(fhir, front_desk, scene, booked, patient):
    response = fhir(front_desk).get(f"Appointment/{booked.pk}")
    assert response.status_code == 200
    visit = response.json()
    assert visit["status"] == "booked"
    assert visit["start"] == _z(scene.at(9))
    assert visit["end"] == _z(scene.at(9, 30))
    assert visit["minutesDuration"] == 30
    assert visit["serviceType"][0]["coding"][0]["code"] == str(scene.appointment_type.pk)
    assert [p["actor"]["reference"] for p in visit["participant"]] == [
        f"Patient/{patient.pk}",
        f"Practitioner/{scene.provider.pk}",
        f"Location/{scene.location.pk}",
    ]
    assert {p["status"] for p in visit["participant"]} == {"accepted"}
    assert visit["slot"][0]["reference"] == "Slot/" + slot_id(
        scene.provider.pk, scene.location.pk, scene.appointment_type.pk, scene.at(9)
    )
    assert visit["comment"] == "Knee pain"
    assert visit["meta"]["versionId"] == "1"
    assert response["ETag"] == 'W/"1"'
    event = AuditEvent.objects.filter(action="fhir.read").order_by("-sequence").first()
    assert event.patient_id == patient.pk
    assert changes_of(event)["resource"] == f"Appointment/{booked.pk}"


def test_search_by_each_parameter(fhir, front_desk, scene, booked, patient):
    other_patient = registered_patient(actor=front_desk, date_of_birth=date(1980, 1, 2))
    later = appointment_book(
        actor=front_desk,
        patient=other_patient,
        provider=scene.provider,
        location=scene.location,
        appointment_type=scene.appointment_type,
        starts_at=scene.at(11),
    )
    api = fhir(front_desk)
    both = [str(booked.pk), str(later.pk)]
    assert _ids(api.get("Appointment", {"patient": f"Patient/{patient.pk}"})) == [str(booked.pk)]
    assert _ids(api.get("Appointment", {"patient": str(other_patient.pk)})) == [str(later.pk)]
    assert (
        _ids(api.get("Appointment", {"practitioner": f"Practitioner/{scene.provider.pk}"})) == both
    )
    assert _ids(api.get("Appointment", {"practitioner": str(make_provider().pk)})) == []
    assert _ids(api.get("Appointment", {"location": f"Location/{scene.location.pk}"})) == both
    assert _ids(api.get("Appointment", {"location": str(make_location().pk)})) == []
    assert _ids(api.get("Appointment", {"actor": f"Patient/{patient.pk}"})) == [str(booked.pk)]
    assert _ids(api.get("Appointment", {"actor": f"Location/{scene.location.pk}"})) == both
    day = scene.monday.isoformat()
    assert _ids(api.get("Appointment", {"date": day})) == both
    assert (
        _ids(api.get("Appointment", {"date": [f"ge{day}", f"lt{scene.monday + timedelta(1)}"]}))
        == both
    )
    assert _ids(api.get("Appointment", {"date": f"ge{scene.at(10).isoformat()}"})) == [
        str(later.pk)
    ]
    assert _ids(api.get("Appointment", {"date": f"lt{day}"})) == []
    assert _ids(api.get("Appointment", {"status": "booked"})) == both
    assert _ids(api.get("Appointment", {"status": "cancelled"})) == []
    assert _ids(api.get("Appointment", {"service-type": str(scene.appointment_type.pk)})) == both
    assert _ids(api.get("Appointment", {"_sort": "-date"})) == both[::-1]
    assert _ids(api.get("Appointment", {"_sort": "date"})) == both
    assert api.get("Appointment", {"date": "yesterday"}).status_code == 400


@pytest.mark.parametrize(
    "name, target",
    [("patient", "Patient"), ("practitioner", "Practitioner"), ("location", "Location")],
)
def test_include(fhir, front_desk, scene, booked, patient, name, target):
    if target not in {mapper.resource_type for mapper in all_mappers()}:
        pytest.skip(f"the {target} mapper is not registered yet")
    bundle = fhir(front_desk).get("Appointment", {"_include": f"Appointment:{name}"}).json()
    included = [
        (entry["resource"]["resourceType"], entry["resource"]["id"])
        for entry in bundle["entry"]
        if entry["search"]["mode"] == "include"
    ]
    key = {"patient": patient.pk, "practitioner": scene.provider.pk, "location": scene.location.pk}[
        name
    ]
    assert included == [(target, str(key))]


def test_metadata_lists_the_scheduling_types(client):
    statement = client.get("/fhir/metadata", HTTP_ACCEPT="application/fhir+json").json()
    types = {entry["type"]: entry for entry in statement["rest"][0]["resource"]}
    appointment = types["Appointment"]
    assert {i["code"] for i in appointment["interaction"]} >= {
        "read",
        "search-type",
        "create",
        "update",
        "vread",
    }
    assert "delete" not in {i["code"] for i in appointment["interaction"]}
    assert {p["name"] for p in appointment["searchParam"]} >= {
        "patient",
        "date",
        "status",
        "practitioner",
        "location",
    }
    assert {i["code"] for i in types["Slot"]["interaction"]} == {"read", "search-type"}
    assert {p["name"] for p in types["Slot"]["searchParam"]} >= {"schedule", "start", "status"}
    assert {i["code"] for i in types["AuditEvent"]["interaction"]} == {"read", "search-type"}
    assert {i["code"] for i in types["Schedule"]["interaction"]} >= {"read", "search-type"}


def test_a_patient_scoped_token_sees_only_that_patients_visits(
    fhir, front_desk, scene, booked, patient
):
    other_patient = registered_patient(actor=front_desk, date_of_birth=date(1980, 1, 2))
    theirs = appointment_book(
        actor=front_desk,
        patient=other_patient,
        provider=scene.provider,
        location=scene.location,
        appointment_type=scene.appointment_type,
        starts_at=scene.at(11),
    )
    api = fhir(front_desk, "patient/*.rs", patient=patient)
    assert _ids(api.get("Appointment")) == [str(booked.pk)]
    assert _ids(api.get("Appointment", {"patient": str(other_patient.pk)})) == []
    assert api.get(f"Appointment/{theirs.pk}").status_code == 404
    assert api.get(f"Appointment/{booked.pk}").status_code == 200


def test_a_patient_scoped_token_cannot_book_for_another_patient(fhir, front_desk, scene, patient):
    other_patient = registered_patient(actor=front_desk, date_of_birth=date(1980, 1, 2))
    api = fhir(front_desk, "patient/*.cruds", patient=patient)
    response = api.post("Appointment", scene.appointment(other_patient, scene.at(9)))
    assert response.status_code == 404
    assert not Appointment.objects.exists()


# --- create -------------------------------------------------------------------------------------


def test_front_desk_books_from_participants(fhir, front_desk, scene, patient):
    response = fhir(front_desk).post(
        "Appointment", scene.appointment(patient, scene.at(10), comment="Follow-up")
    )
    assert response.status_code == 201
    visit = response.json()
    stored = Appointment.objects.get(pk=visit["id"])
    assert stored.starts_at == scene.at(10)
    assert stored.patient == patient and stored.booked_by == front_desk
    assert stored.note == "Follow-up"
    assert response["Location"].endswith(f"/fhir/Appointment/{stored.pk}/_history/1")
    assert (
        AuditEvent.objects.filter(
            action="scheduling.appointment_booked", patient_id=patient.pk
        ).count()
        == 1
    )
    created = AuditEvent.objects.get(action="fhir.created")
    assert changes_of(created)["client"]


def test_booking_from_a_slot_id(fhir, front_desk, scene, patient):
    api = fhir(front_desk)
    slots = api.get(
        "Slot",
        {
            "schedule": f"Schedule/{scene.provider.pk}",
            "status": "free",
            "service-type": str(scene.appointment_type.pk),
            "start": [f"ge{scene.monday}", f"lt{scene.monday + timedelta(1)}"],
        },
    ).json()
    slot = slots["entry"][2]["resource"]
    body = {
        "resourceType": "Appointment",
        "status": "booked",
        "slot": [{"reference": f"Slot/{slot['id']}"}],
        "participant": [{"actor": {"reference": f"Patient/{patient.pk}"}, "status": "accepted"}],
    }
    response = api.post("Appointment", body)
    assert response.status_code == 201, response.json()
    visit = response.json()
    assert visit["start"] == slot["start"]
    assert visit["slot"][0]["reference"] == f"Slot/{slot['id']}"
    assert api.get(f"Slot/{slot['id']}").json()["status"] == "busy"
    again = api.post("Appointment", body)
    assert again.status_code == 409
    assert again.json()["issue"][0]["code"] == "conflict"
    assert "That time was just taken" in again.json()["issue"][0]["diagnostics"]
    assert Appointment.objects.count() == 1


def test_a_taken_time_is_409(fhir, front_desk, scene, booked, patient):
    other_patient = registered_patient(actor=front_desk, date_of_birth=date(1980, 1, 2))
    response = fhir(front_desk).post(
        "Appointment", scene.appointment(other_patient, scene.at(9, 15))
    )
    assert response.status_code == 409
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["diagnostics"].startswith("That time was just taken")
    assert Appointment.objects.count() == 1


@pytest.mark.parametrize(
    "change, path",
    [
        (
            lambda body, scene: body.update(
                start="2020-01-06T10:00:00+00:00", end="2020-01-06T10:30:00+00:00"
            ),
            "Appointment.start",
        ),
        (lambda body, scene: body.update(end=scene.at(9).isoformat()), "Appointment.end"),
        (lambda body, scene: body.update(end=scene.at(11).isoformat()), "Appointment.end"),
        (lambda body, scene: body.update(minutesDuration=45), "Appointment.minutesDuration"),
        (
            lambda body, scene: body["participant"][1]["actor"].update(
                reference="Practitioner/00000000-0000-0000-0000-000000000000"
            ),
            "Appointment.participant[1].actor",
        ),
        (
            lambda body, scene: body["participant"][2]["actor"].update(
                reference="Location/garbage"
            ),
            "Appointment.participant[2].actor",
        ),
        (lambda body, scene: body["participant"].pop(0), "Appointment.participant"),
        (lambda body, scene: body["participant"].pop(1), "Appointment.participant"),
        (lambda body, scene: body.pop("serviceType"), "Appointment.serviceType"),
        (
            lambda body, scene: body.update(
                serviceType=[
                    {"coding": [{"system": "urn:ambula:appointment-type", "code": "nope"}]}
                ]
            ),
            "Appointment.serviceType",
        ),
        (lambda body, scene: body.update(status="proposed"), "Appointment.status"),
        (lambda body, scene: body.update(slot=[{"reference": "Slot/made-up"}]), "Appointment.slot"),
        (
            lambda body, scene: body.update(
                start=scene.at(14).isoformat(), end=scene.at(14, 30).isoformat()
            ),
            "Appointment",
        ),
    ],
)
def test_bad_bookings_are_422_naming_the_element(fhir, front_desk, scene, patient, change, path):
    body = scene.appointment(patient, scene.at(9))
    change(body, scene)
    response = fhir(front_desk).post("Appointment", body)
    assert response.status_code == 422, response.json()
    assert path in _expressions(response)
    assert not Appointment.objects.exists()


def test_structurally_broken_bodies(fhir, front_desk, scene, patient):
    api = fhir(front_desk)
    assert api.post("Appointment", {"resourceType": "Appointment"}).status_code == 422
    body = scene.appointment(patient, scene.at(9))
    body["start"] = "tomorrow morning"
    assert api.post("Appointment", body).status_code == 422
    huge = scene.appointment(patient, scene.at(9), comment="x" * 10_000)
    assert api.post("Appointment", huge).status_code == 422  # the note's service limit or ours
    assert not Appointment.objects.exists()


def test_a_nurse_cannot_book_but_reads(fhir, nurse, scene, booked, patient):
    api = fhir(nurse)
    response = api.post("Appointment", scene.appointment(patient, scene.at(10)))
    assert response.status_code == 403
    assert api.get(f"Appointment/{booked.pk}").status_code == 200
    assert AuditEvent.objects.filter(action="fhir.refused").exists()
    assert Appointment.objects.count() == 1


def test_a_read_only_scope_cannot_book(fhir, front_desk, scene, patient):
    response = fhir(front_desk, "user/*.rs").post(
        "Appointment", scene.appointment(patient, scene.at(10))
    )
    assert response.status_code == 403


def test_delete_is_refused(fhir, front_desk, booked):
    assert fhir(front_desk).delete(f"Appointment/{booked.pk}").status_code == 405
    assert Appointment.objects.get(pk=booked.pk).status == "scheduled"


# --- update -------------------------------------------------------------------------------------


def _current(api, visit) -> dict:
    return api.get(f"Appointment/{visit.pk}").json()


def test_cancel_via_put(fhir, front_desk, booked):
    api = fhir(front_desk)
    body = _current(api, booked)
    body["status"] = "cancelled"
    missing_reason = api.put(f"Appointment/{booked.pk}", body)
    assert missing_reason.status_code == 422
    assert _expressions(missing_reason) == ["Appointment.cancelationReason"]
    body["cancelationReason"] = {"text": "Patient called"}
    response = api.put(f"Appointment/{booked.pk}", body, If_Match='W/"1"')
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["cancelationReason"]["text"] == "Patient called"
    assert response.json()["meta"]["versionId"] == "2"
    stored = Appointment.objects.get(pk=booked.pk)
    assert stored.status == "cancelled" and stored.cancel_reason == "Patient called"
    history = api.get(f"Appointment/{booked.pk}/_history").json()
    assert [entry["resource"]["status"] for entry in history["entry"]] == ["cancelled", "booked"]
    assert api.get(f"Appointment/{booked.pk}/_history/1").json()["status"] == "booked"


def test_if_match_on_an_old_version_is_412(fhir, front_desk, booked):
    api = fhir(front_desk)
    body = _current(api, booked)
    body["status"] = "arrived"
    assert api.put(f"Appointment/{booked.pk}", body, If_Match='W/"1"').status_code == 200
    body["status"] = "cancelled"
    body["cancelationReason"] = {"text": "late"}
    response = api.put(f"Appointment/{booked.pk}", body, If_Match='W/"1"')
    assert response.status_code == 412
    assert Appointment.objects.get(pk=booked.pk).status == "arrived"


def test_the_day_flows_through_put(fhir, front_desk, booked):
    api = fhir(front_desk)
    body = _current(api, booked)
    body["status"] = "checked-in"  # arrived, then roomed
    response = api.put(f"Appointment/{booked.pk}", body)
    assert response.status_code == 200
    assert Appointment.objects.get(pk=booked.pk).status == "in_room"
    body["status"] = "booked"
    going_back = api.put(f"Appointment/{booked.pk}", body)
    assert going_back.status_code == 422
    assert _expressions(going_back) == ["Appointment.status"]
    body["status"] = "fulfilled"
    assert api.put(f"Appointment/{booked.pk}", body).json()["status"] == "fulfilled"
    body["status"] = "entered-in-error"
    assert api.put(f"Appointment/{booked.pk}", body).status_code == 422


def test_noshow_too_early_is_422(fhir, front_desk, booked):
    api = fhir(front_desk)
    body = _current(api, booked)
    body["status"] = "noshow"
    response = api.put(f"Appointment/{booked.pk}", body)
    assert response.status_code == 422
    assert Appointment.objects.get(pk=booked.pk).status == "scheduled"


def test_moving_the_start_reschedules(fhir, front_desk, scene, booked):
    api = fhir(front_desk)
    body = _current(api, booked)
    body["start"] = scene.at(10, 30).isoformat()
    body["end"] = scene.at(11).isoformat()
    response = api.put(f"Appointment/{booked.pk}", body)
    assert response.status_code == 201, response.json()
    moved = response.json()
    assert moved["id"] != str(booked.pk)
    assert response["Location"].endswith(f"/fhir/Appointment/{moved['id']}/_history/1")
    assert api.get(f"Appointment/{booked.pk}").json()["status"] == "cancelled"
    assert moved["start"] == _z(scene.at(10, 30))
    assert Appointment.objects.get(pk=booked.pk).status == "cancelled"
    assert Appointment.objects.get(pk=moved["id"]).rescheduled_from_id == booked.pk


def test_moving_onto_a_taken_time_is_409(fhir, front_desk, scene, booked):
    other_patient = registered_patient(actor=front_desk, date_of_birth=date(1980, 1, 2))
    appointment_book(
        actor=front_desk,
        patient=other_patient,
        provider=scene.provider,
        location=scene.location,
        appointment_type=scene.appointment_type,
        starts_at=scene.at(11),
    )
    api = fhir(front_desk)
    body = _current(api, booked)
    body["start"] = scene.at(11).isoformat()
    body["end"] = scene.at(11, 30).isoformat()
    response = api.put(f"Appointment/{booked.pk}", body)
    assert response.status_code == 409
    assert Appointment.objects.get(pk=booked.pk).status == "scheduled"


def test_changing_the_patient_or_comment_is_refused(fhir, front_desk, booked):
    other_patient = registered_patient(actor=front_desk, date_of_birth=date(1980, 1, 2))
    api = fhir(front_desk)
    body = _current(api, booked)
    body["participant"][0]["actor"]["reference"] = f"Patient/{other_patient.pk}"
    assert api.put(f"Appointment/{booked.pk}", body).status_code == 422
    body = _current(api, booked)
    body["comment"] = "Something else"
    assert api.put(f"Appointment/{booked.pk}", body).status_code == 422
    assert Appointment.objects.get(pk=booked.pk).patient_id == booked.patient_id


def test_a_nurse_cannot_cancel(fhir, nurse, front_desk, booked):
    body = _current(fhir(front_desk), booked)
    body["status"] = "cancelled"
    body["cancelationReason"] = {"text": "x"}
    assert fhir(nurse).put(f"Appointment/{booked.pk}", body).status_code == 403
    assert Appointment.objects.get(pk=booked.pk).status == "scheduled"


def test_booked_statuses_stay_active(booked):
    assert booked.status in ACTIVE_STATUSES


# --- fifty apps book one slot at once, over HTTP ------------------------------------------------

APPS = 50


def _post_at_once(url: str, token: str, body: dict, apps: int = APPS) -> list:
    """POST the same Appointment from `apps` threads at once; the statuses (or errors)."""
    import threading

    import requests

    start = threading.Barrier(apps)
    results, lock = [], threading.Lock()

    def post():
        outcome = (0, "not sent")
        try:
            start.wait()
            for _attempt in range(5):
                try:
                    response = requests.post(
                        f"{url}/fhir/Appointment",
                        json=body,
                        timeout=120,
                        headers={
                            "Authorization": f"Bearer {token}",
                            "Content-Type": "application/fhir+json",
                            "Accept": "application/fhir+json",
                        },
                    )
                except requests.ConnectionError as error:
                    # The test server's listen queue is short: fifty connects at once overflow
                    # it and some are reset unread. Sending again is safe here: a second
                    # booking of the slot could only be another 409.
                    outcome = (0, repr(error))
                    continue
                outcome = (response.status_code, response.json())
                break
        except Exception as error:  # reported by the caller's assertion, not lost in a thread
            outcome = (0, repr(error))
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=post) for _ in range(apps)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    return results


def _assert_booked_once(results: list) -> None:
    statuses = sorted(status for status, _body in results)
    assert statuses == [201] + [409] * (APPS - 1), [r for r in results if r[0] not in (201, 409)]
    for status, body in results:
        if status == 409:
            assert body["resourceType"] == "OperationOutcome"
            assert body["issue"][0]["diagnostics"].startswith("That time was just taken")


# pytest-django's live server shares one connection among its threads on in-memory SQLite, so
# that variant runs on PostgreSQL (or a SQLite file); the `ambula serve` one below on SQLite.
_in_memory_sqlite = pytest.mark.skipif(
    connection.vendor == "sqlite" and not connection.settings_dict.get("TEST", {}).get("NAME"),
    reason="the live server cannot serve concurrent writers from in-memory SQLite; "
    "the `ambula serve` variant runs instead",
)


@_in_memory_sqlite
@pytest.mark.django_db(transaction=True)
def test_fifty_apps_booking_one_slot_at_once_get_one_201(live_server, practice):
    from ambula.accounts.roles import Role
    from ambula.accounts.tests.factories import UserFactory
    from ambula.smart.testing import issue_token

    clerk = UserFactory(roles=[Role.FRONT_DESK])
    scene = build_scene(rooms=2)
    patient = registered_patient(actor=clerk)
    token = issue_token(clerk, "user/Appointment.cruds")
    results = _post_at_once(live_server.url, token, scene.appointment(patient, scene.at(10)))
    _assert_booked_once(results)
    assert Appointment.objects.filter(status__in=ACTIVE_STATUSES).count() == 1
    assert AuditEvent.objects.filter(action="fhir.created").count() == 1


SERVED_SCENE_SCRIPT = """
import json
import django
django.setup()
from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.core.services import practice_create
from ambula.fhir.tests.scheduling_scene import build_scene
from ambula.patients.tests.factories import registered_patient
from ambula.smart.testing import issue_token

practice_create(actor=None, name="Race Clinic", mfa_required=False)
clerk = UserFactory(roles=[Role.FRONT_DESK])
scene = build_scene(rooms=2)
patient = registered_patient(actor=clerk)
print(json.dumps({
    "token": issue_token(clerk, "user/Appointment.cruds"),
    "body": scene.appointment(patient, scene.at(10)),
}))
"""

COUNT_SCRIPT = """
import json
import django
django.setup()
from ambula.scheduling.models import Appointment, ResourceBooking
print(json.dumps({"appointments": Appointment.objects.count(),
                  "rooms_held": ResourceBooking.objects.filter(active=True).count()}))
"""


@pytest.mark.slow
def test_fifty_apps_booking_one_slot_from_ambula_serve_on_sqlite_get_one_201(tmp_path):
    import json
    import subprocess
    import sys

    from ambula.testing.processes import (
        ambula_env,
        ambula_process,
        free_port,
        run_ambula,
        wait_for,
    )

    data_dir = tmp_path / "data"
    migrated = run_ambula(data_dir, "migrate")
    assert migrated.returncode == 0, migrated.stderr

    def script(code: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=ambula_env(data_dir, DJANGO_SETTINGS_MODULE="ambula.settings"),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    made = script(SERVED_SCENE_SCRIPT)
    port = free_port()
    with ambula_process(data_dir, "serve", "--port", str(port), "--workers", "2"):
        assert wait_for(f"http://127.0.0.1:{port}/healthz") == 200
        results = _post_at_once(f"http://127.0.0.1:{port}", made["token"], made["body"])
    _assert_booked_once(results)
    assert script(COUNT_SCRIPT) == {"appointments": 1, "rooms_held": 1}
