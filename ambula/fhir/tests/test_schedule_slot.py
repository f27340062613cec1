"""Schedule and Slot: the providers' schedules and the same free times the slot picker offers."""

from datetime import UTC, timedelta

import pytest

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.fhir.resources.slot import slot_id
from ambula.fhir.tests.scheduling_scene import APPOINTMENT_TYPE_SYSTEM, build_scene
from ambula.scheduling.booking import appointment_book
from ambula.scheduling.slots import next_available
from ambula.scheduling.tests.factories import make_location, make_provider, make_type
from ambula.scheduling.views.booking import SLOT_LIMIT

pytestmark = pytest.mark.django_db


@pytest.fixture
def scene(practice):
    return build_scene()


def _ids(bundle) -> list[str]:
    return [
        entry["resource"]["id"]
        for entry in bundle.get("entry", [])
        if entry["search"]["mode"] == "match"
    ]


def _starts(bundle) -> list[str]:
    return [
        entry["resource"]["start"]
        for entry in bundle.get("entry", [])
        if entry["search"]["mode"] == "match"
    ]


def _z(moment) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _week(scene) -> dict:
    return {
        "schedule": f"Schedule/{scene.provider.pk}",
        "start": [
            f"ge{scene.monday.isoformat()}",
            f"lt{(scene.monday + timedelta(days=7)).isoformat()}",
        ],
        "status": "free",
        "service-type": f"{APPOINTMENT_TYPE_SYSTEM}|{scene.appointment_type.pk}",
        "_count": "200",
    }


# --- Schedule -----------------------------------------------------------------------------------


def test_schedule_read_names_the_practitioner_locations_and_types(fhir, front_desk, scene):
    response = fhir(front_desk).get(f"Schedule/{scene.provider.pk}")
    assert response.status_code == 200
    schedule = response.json()
    assert schedule["active"] is True
    actors = [actor["reference"] for actor in schedule["actor"]]
    assert actors == [f"Practitioner/{scene.provider.pk}", f"Location/{scene.location.pk}"]
    codes = [concept["coding"][0]["code"] for concept in schedule["serviceType"]]
    assert str(scene.appointment_type.pk) in codes
    assert schedule["specialty"][0]["coding"][0]["code"] == "207Q00000X"
    assert schedule["meta"]["versionId"] == "1"


def test_schedule_search_by_actor_active_and_id(fhir, front_desk, scene):
    other = make_provider(is_active=False)
    api = fhir(front_desk)
    by_practitioner = api.get("Schedule", {"actor": f"Practitioner/{scene.provider.pk}"})
    assert _ids(by_practitioner.json()) == [str(scene.provider.pk)]
    by_location = api.get("Schedule", {"actor": f"Location/{scene.location.pk}"})
    assert _ids(by_location.json()) == [str(scene.provider.pk)]
    assert _ids(api.get("Schedule", {"actor": f"Location/{make_location().pk}"}).json()) == []
    assert _ids(api.get("Schedule", {"active": "false"}).json()) == [str(other.pk)]
    assert str(other.pk) not in _ids(api.get("Schedule", {"active": "true"}).json())
    assert _ids(api.get("Schedule", {"_id": str(other.pk)}).json()) == [str(other.pk)]
    assert _ids(api.get("Schedule", {"actor": "Practitioner/not-an-id"}).json()) == []


def test_schedule_cannot_be_written(fhir, admin_user, scene):
    api = fhir(admin_user)
    body = {"resourceType": "Schedule", "actor": [{"reference": "Practitioner/x"}]}
    # 405 would be more precise; the engine checks the role before the interaction (403).
    assert api.post("Schedule", body).status_code == 405
    assert api.delete(f"Schedule/{scene.provider.pk}").status_code == 405


def test_a_patient_user_cannot_read_schedules(fhir, scene, patient):
    portal_user = UserFactory(roles=[Role.PATIENT])
    assert fhir(portal_user, "patient/*.rs", patient=patient).get("Schedule").status_code == 403


# --- Slot ---------------------------------------------------------------------------------------


def test_slot_search_lists_the_free_times_of_the_week(fhir, front_desk, scene):
    response = fhir(front_desk).get("Slot", _week(scene))
    assert response.status_code == 200
    bundle = response.json()
    expected = [scene.at(9) + timedelta(minutes=15 * step) for step in range(11)]
    assert bundle["total"] == 11
    assert _starts(bundle) == [_z(moment) for moment in expected]
    first = bundle["entry"][0]["resource"]
    assert first["status"] == "free"
    assert first["schedule"]["reference"] == f"Schedule/{scene.provider.pk}"
    assert first["serviceType"][0]["coding"][0]["code"] == str(scene.appointment_type.pk)
    assert len(first["id"]) <= 64


def test_slot_search_equals_the_slot_pickers_slots(fhir, front_desk, practice, patient):
    scene = build_scene(weekdays=range(5), rooms=2)
    appointment_book(
        actor=front_desk,
        patient=patient,
        provider=scene.provider,
        location=scene.location,
        appointment_type=scene.appointment_type,
        starts_at=scene.at(10),
    )
    # What the booking page's picker shows for this provider and type (views/booking._picker).
    picked = next_available(
        appointment_type=scene.appointment_type,
        providers=[scene.provider],
        locations=None,
        limit=SLOT_LIMIT,
    )
    response = fhir(front_desk).get(
        "Slot",
        {
            "schedule": f"Schedule/{scene.provider.pk}",
            "status": "free",
            "service-type": str(scene.appointment_type.pk),
            "_count": str(SLOT_LIMIT),
        },
    )
    bundle = response.json()
    assert _ids(bundle) == [
        slot_id(slot.provider.pk, slot.location.pk, scene.appointment_type.pk, slot.starts_at)
        for slot in picked
    ]
    # The booked 10:00 (and the 09:45 and 10:15 that would overlap it) are not offered.
    week = fhir(front_desk).get("Slot", _week(scene)).json()
    for taken in (scene.at(9, 45), scene.at(10), scene.at(10, 15)):
        assert _z(taken) not in _starts(week)
    assert _z(scene.at(10, 30)) in _starts(week)
    # And over an explicit week, the same times the picker's service finds from that Monday.
    from_monday = next_available(
        appointment_type=scene.appointment_type,
        providers=[scene.provider],
        start=scene.at(0),
        weeks=1,
        limit=1000,
    )
    assert _starts(week) == [
        _z(slot.starts_at) for slot in from_monday if slot.starts_at < scene.at(0, days=7)
    ]
    assert bundle["total"] > SLOT_LIMIT  # the default window (a week) holds more than a page


def test_slot_read_back_and_busy_after_booking(fhir, front_desk, scene, patient):
    api = fhir(front_desk)
    first = api.get("Slot", _week(scene)).json()["entry"][0]["resource"]
    read = api.get(f"Slot/{first['id']}")
    assert read.status_code == 200
    assert read.json()["status"] == "free"
    assert read.json()["start"] == first["start"]
    appointment_book(
        actor=front_desk,
        patient=patient,
        provider=scene.provider,
        location=scene.location,
        appointment_type=scene.appointment_type,
        starts_at=scene.at(9),
    )
    assert api.get(f"Slot/{first['id']}").json()["status"] == "busy"
    assert first["id"] not in _ids(api.get("Slot", _week(scene)).json())


@pytest.mark.parametrize(
    "bad_id",
    [
        "nonsense",
        "0" * 32 + "-00000000-00000000-202612011000",
        "x" * 65,
    ],
)
def test_slot_read_of_an_unknown_id_is_404(fhir, front_desk, scene, bad_id):
    assert fhir(front_desk).get(f"Slot/{bad_id}").status_code == 404


def test_slot_read_outside_the_template_is_404(fhir, front_desk, scene):
    sunday_night = slot_id(
        scene.provider.pk, scene.location.pk, scene.appointment_type.pk, scene.at(23, days=-1)
    )
    assert fhir(front_desk).get(f"Slot/{sunday_night}").status_code == 404


def test_slot_search_filters(fhir, front_desk, scene):
    api = fhir(front_desk)
    week = _week(scene)
    assert api.get("Slot", {**week, "status": "busy"}).json()["total"] == 0
    assert api.get("Slot", {**week, "status:not": "free"}).json()["total"] == 0
    assert (
        api.get("Slot", {**week, "schedule": f"Schedule/{make_provider().pk}"}).json()["total"] == 0
    )
    assert (
        api.get("Slot", {**week, "location": f"Location/{scene.location.pk}"}).json()["total"] == 11
    )
    assert (
        api.get("Slot", {**week, "location": f"Location/{make_location().pk}"}).json()["total"] == 0
    )
    other_type = make_type(duration=60)
    hour_long = api.get("Slot", {**week, "service-type": str(other_type.pk)}).json()
    assert hour_long["total"] == 9  # 09:00 .. 11:00 every 15 minutes
    assert api.get("Slot", {**week, "service-type": "other-system|x"}).json()["total"] == 0
    one_hour = {**week, "start": [f"ge{scene.at(10).isoformat()}", f"lt{scene.at(11).isoformat()}"]}
    assert api.get("Slot", one_hour).json()["total"] == 4
    first = api.get("Slot", week).json()["entry"][0]["resource"]["id"]
    assert _ids(api.get("Slot", {**week, "_id": first}).json()) == [first]


def test_slot_search_without_a_type_lists_every_type(fhir, front_desk, scene):
    make_type(duration=60)
    week = {key: value for key, value in _week(scene).items() if key != "service-type"}
    bundle = fhir(front_desk).get("Slot", week).json()
    assert bundle["total"] == 11 + 9
    starts = _starts(bundle)
    assert starts == sorted(starts)


def test_slot_search_pages(fhir, front_desk, scene):
    api = fhir(front_desk)
    first = api.get("Slot", {**_week(scene), "_count": "5"}).json()
    assert len(_ids(first)) == 5 and first["total"] == 11
    next_link = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = api.client.get(next_link, HTTP_AUTHORIZATION=f"Bearer {api.token}").json()
    assert len(_ids(second)) == 5
    assert not set(_ids(first)) & set(_ids(second))


def test_slot_search_window_is_bounded(fhir, front_desk, scene):
    api = fhir(front_desk)
    wide = {
        **_week(scene),
        "start": [f"ge{scene.monday}", f"lt{scene.monday + timedelta(days=40)}"],
    }
    response = api.get("Slot", wide)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["start"]
    assert api.get("Slot", {**_week(scene), "start": "ge2026-13-45"}).status_code == 400
    assert api.get("Slot", {**_week(scene), "start": f"ne{scene.monday}"}).status_code == 400
    assert api.get("Slot", {**_week(scene), "schedule": ""}).status_code == 400
    assert api.get("Slot", {**_week(scene), "schedule": "Schedule/garbage"}).json()["total"] == 0
    assert api.get("Slot", {**_week(scene), "schedule:Patient": "x"}).status_code == 400
    strict = api.get("Slot", {**_week(scene), "colour": "blue"}, Prefer="handling=strict")
    assert strict.status_code == 400
    lenient = api.get("Slot", {**_week(scene), "colour": "blue"}).json()
    assert lenient["total"] == 11
    assert lenient["entry"][-1]["search"]["mode"] == "outcome"
    # A window wholly in the past holds nothing.
    assert (
        api.get("Slot", {**_week(scene), "start": ["ge2020-01-01", "lt2020-01-08"]}).json()["total"]
        == 0
    )


def test_slot_cannot_be_written_and_needs_the_schedule_capability(fhir, front_desk, scene, patient):
    api = fhir(front_desk)
    body = {
        "resourceType": "Slot",
        "schedule": {"reference": "Schedule/x"},
        "status": "free",
        "start": "2026-12-01T10:00:00Z",
        "end": "2026-12-01T10:30:00Z",
    }
    assert api.post("Slot", body).status_code == 405
    portal_user = UserFactory(roles=[Role.PATIENT])
    assert fhir(portal_user, "patient/*.rs", patient=patient).get("Slot").status_code == 403


def test_slot_search_is_audited(fhir, front_desk, scene):
    from ambula.audit.models import AuditEvent
    from ambula.audit.services import changes_of

    api = fhir(front_desk)
    api.get("Slot", _week(scene))
    event = AuditEvent.objects.filter(action="fhir.searched").order_by("-sequence").first()
    details = changes_of(event)
    assert details["resource_type"] == "Slot"
    assert details["results"] == 11
    assert details["client"]
