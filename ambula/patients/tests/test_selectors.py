import uuid
from datetime import date

import pytest

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.core.errors import NotFound
from ambula.patients.selectors import SEARCH_LIMIT, patient_get, patient_search
from ambula.patients.services import patient_register
from ambula.patients.tests.factories import JOSE, registered_patient

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(front_desk):
    """José Rivera, Jamie Rivers and Ana Smith, registered at the front desk."""
    return {
        "jose": patient_register(actor=front_desk, **JOSE),
        "jamie": registered_patient(
            actor=front_desk,
            given_name="Jamie",
            family_name="Rivers",
            date_of_birth=date(1990, 1, 2),
            mobile_phone="(312) 555-0199",
        ),
        "ana": registered_patient(
            actor=front_desk, given_name="Ana", family_name="Smith", date_of_birth=date(1984, 3, 8)
        ),
    }


def found(actor, query: str) -> list[str]:
    return [patient.given_name for patient in patient_search(actor=actor, query=query)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("riv", ["José", "Jamie"]),
        ("Rivera", ["José"]),
        ("rivera, jo", ["José"]),
        ("riv, ja", ["Jamie"]),
        ("rivers,", ["Jamie"]),
        ("jose rivera", ["José"]),
        ("ja riv", ["Jamie"]),
        ("jose", ["José"]),
        ("JOSÉ", ["José"]),
        ("rivera, josé", ["José"]),
        ("1984-03-07", ["José"]),
        ("03/07/1984", ["José"]),
        ("217-555-0140", ["José"]),
        ("(217) 555 0140", ["José"]),
        ("+1 217 555 0140", ["José"]),
        ("2175550140", ["José"]),
        ("555-0199", ["Jamie"]),
        ("smith, jose", []),
        ("nobody", []),
        ("1999-12-31", []),
    ],
)
def test_search(front_desk, people, query, expected):
    assert found(front_desk, query) == expected


def test_search_by_mrn(front_desk, people):
    mrn = people["ana"].mrn
    assert found(front_desk, mrn) == ["Ana"]
    assert found(front_desk, f"  {mrn} ") == ["Ana"]
    mistyped = mrn[:-1] + str((int(mrn[-1]) + 1) % 10)
    assert found(front_desk, mistyped) == []


@pytest.mark.parametrize("query", ["", "   "])
def test_an_empty_query_finds_nothing_and_records_nothing(front_desk, people, query):
    assert patient_search(actor=front_desk, query=query) == []
    assert not AuditEvent.objects.filter(action="patients.searched").exists()


def test_every_search_is_recorded_with_its_query_and_result_count(front_desk, people):
    patient_search(actor=front_desk, query=" riv ")
    patient_search(actor=front_desk, query="nobody")
    events = AuditEvent.objects.filter(action="patients.searched").order_by("sequence")
    assert [changes_of(event) for event in events] == [
        {"query": "riv", "results": 2},
        {"query": "nobody", "results": 0},
    ]
    assert {(event.actor_id, event.category) for event in events} == {
        (front_desk.pk, "demographics")
    }


def test_results_are_capped_and_sorted(front_desk):
    for number in range(SEARCH_LIMIT + 5):
        registered_patient(actor=front_desk, family_name="Okafor", given_name=f"Ada{number:02d}")
    results = patient_search(actor=front_desk, query="okafor")
    assert len(results) == SEARCH_LIMIT == 25
    assert [patient.given_name for patient in results] == [
        f"Ada{number:02d}" for number in range(SEARCH_LIMIT)
    ]
    event = AuditEvent.objects.get(action="patients.searched")
    assert changes_of(event)["results"] == SEARCH_LIMIT


def test_a_user_without_view_demographics_finds_no_one(people):
    portal_user = UserFactory(roles=[Role.PATIENT])
    assert patient_search(actor=portal_user, query="rivera") == []
    with pytest.raises(NotFound):
        patient_get(actor=portal_user, patient_id=people["jose"].pk)


@pytest.mark.parametrize("role", [Role.BILLER, Role.ADMIN, Role.PRIVACY_OFFICER, Role.NURSE])
def test_staff_with_view_demographics_find_patients(people, role):
    assert found(UserFactory(roles=[role]), "rivera") == ["José"]


def test_patient_get(front_desk, people):
    assert patient_get(actor=front_desk, patient_id=people["jose"].pk) == people["jose"]
    assert patient_get(actor=front_desk, patient_id=str(people["jose"].pk)) == people["jose"]


def test_patient_get_raises_not_found_for_an_unknown_id(front_desk, people):
    with pytest.raises(NotFound):
        patient_get(actor=front_desk, patient_id=uuid.uuid4())


def test_patient_get_raises_not_found_for_a_malformed_id(front_desk):
    with pytest.raises(NotFound):
        patient_get(actor=front_desk, patient_id="not-a-uuid")


@pytest.mark.parametrize("query", [",", " , ", ", jose"])
def test_a_comma_without_a_family_name_matches_nobody(front_desk, people, query):
    assert patient_search(actor=front_desk, query=query) == []
