import threading
from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.utils.timezone import localdate

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.core.errors import AccessDenied
from ambula.core.fields import blind_index_for
from ambula.patients.models import Patient
from ambula.patients.mrn import mrn_from_number, mrn_is_valid
from ambula.patients.services import patient_register
from ambula.patients.tests.factories import JOSE, PatientDetailsFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def jose(front_desk):
    return patient_register(actor=front_desk, **JOSE)


def test_registration_hands_out_consecutive_mrns(front_desk):
    first = patient_register(actor=front_desk, **PatientDetailsFactory(family_name="Abbott"))
    second = patient_register(actor=front_desk, **PatientDetailsFactory(family_name="Zimmer"))
    assert (first.mrn, second.mrn) == (mrn_from_number(1), mrn_from_number(2))
    assert mrn_is_valid(first.mrn)
    stored = Patient.objects.get(pk=first.pk)
    assert (stored.given_name, stored.family_name) == (first.given_name, "Abbott")
    assert stored.search_family_name == "abbott"


def test_registration_is_audited_with_field_names_only(front_desk, jose):
    event = AuditEvent.objects.get(action="patients.registered")
    assert event.actor == front_desk
    assert event.patient_id == jose.pk
    assert event.target_id == str(jose.pk)
    assert event.category == "demographics"
    assert changes_of(event) == {
        "fields": [
            "administrative_sex",
            "date_of_birth",
            "email",
            "family_name",
            "given_name",
            "mobile_phone",
        ]
    }
    assert b"Rivera" not in bytes(str(event.changes), "utf-8")


@pytest.mark.parametrize("role", [Role.BILLER, Role.ADMIN, Role.PRIVACY_OFFICER, Role.PATIENT])
def test_roles_without_edit_demographics_cannot_register(role):
    user = UserFactory(roles=[role])
    with pytest.raises(AccessDenied):
        patient_register(actor=user, **JOSE)
    assert not Patient.objects.exists()
    assert not AuditEvent.objects.filter(action="patients.registered").exists()


@pytest.mark.parametrize("role", [Role.PHYSICIAN, Role.NURSE])
def test_clinicians_can_register(role):
    patient = patient_register(actor=UserFactory(roles=[role]), **JOSE)
    assert Patient.objects.get().pk == patient.pk


@pytest.mark.parametrize(
    "born",
    [
        localdate() + timedelta(days=1),
        localdate() - timedelta(days=365 * 131),
    ],
    ids=["future", "over-130-years-ago"],
)
def test_an_impossible_date_of_birth_is_refused(front_desk, born):
    with pytest.raises(ValidationError) as caught:
        patient_register(actor=front_desk, **{**JOSE, "date_of_birth": born})
    assert set(caught.value.message_dict) == {"date_of_birth"}
    assert not Patient.objects.exists()


def test_a_newborn_can_be_registered_today(front_desk):
    patient = patient_register(actor=front_desk, **{**JOSE, "date_of_birth": localdate()})
    assert patient.date_of_birth == localdate()


@pytest.mark.parametrize(
    "details",
    [
        # Same birth date, family name starting alike, same first initial (accents ignored).
        {"given_name": "Jose", "family_name": "RIVERO", "mobile_phone": "", "email": ""},
        # Same phone (any format) and birth date.
        {"given_name": "Maria", "family_name": "Lopez", "mobile_phone": "217.555.0140"},
        # Same email (any case) and birth date.
        {"given_name": "Maria", "family_name": "Lopez", "email": "JOSE.Rivera@example.test"},
    ],
    ids=["name", "phone", "email"],
)
def test_a_likely_duplicate_is_refused_unless_allowed(front_desk, jose, details):
    candidate = {**JOSE, "mobile_phone": "", "email": "", **details}
    with pytest.raises(ValidationError) as caught:
        patient_register(actor=front_desk, **candidate)
    assert caught.value.code == "possible_duplicate"
    assert caught.value.params == {"candidates": [jose.pk]}
    assert Patient.objects.count() == 1

    second = patient_register(actor=front_desk, allow_duplicate=True, **candidate)
    assert second.mrn == mrn_from_number(2)
    assert Patient.objects.count() == 2


@pytest.mark.parametrize(
    "details",
    [
        {"date_of_birth": date(1984, 3, 8)},
        {"given_name": "Maria"},
        {"family_name": "Smith"},
    ],
    ids=["other-birth-date", "other-initial", "other-family-name"],
)
def test_a_different_person_is_not_a_duplicate(front_desk, jose, details):
    other = {**JOSE, "mobile_phone": "", "email": "", **details}
    patient_register(actor=front_desk, **other)
    assert Patient.objects.count() == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [("postal_code", "6270"), ("postal_code", "ABCDE"), ("email", "not-an-email")],
)
def test_an_invalid_zip_or_email_is_refused_and_burns_no_mrn(front_desk, field, value):
    with pytest.raises(ValidationError) as caught:
        patient_register(actor=front_desk, **{**JOSE, field: value})
    assert field in caught.value.message_dict
    assert not Patient.objects.exists()
    assert patient_register(actor=front_desk, **JOSE).mrn == mrn_from_number(1)


def test_unknown_fields_are_a_programming_error(front_desk):
    with pytest.raises(TypeError, match="favourite_colour"):
        patient_register(actor=front_desk, favourite_colour="blue", **JOSE)


def test_the_ssn_is_encrypted_at_rest_and_found_by_its_blind_index(front_desk):
    patient = patient_register(actor=front_desk, ssn="123-45-6789", **JOSE)
    with connection.cursor() as cursor:
        cursor.execute("SELECT ssn, ssn_index FROM patients_patient")
        [(stored_ssn, stored_index)] = cursor.fetchall()
    assert stored_ssn
    assert "6789" not in stored_ssn
    assert "123456789" not in stored_index
    assert Patient.objects.get(pk=patient.pk).ssn == "123-45-6789"
    for typed in ("123-45-6789", "123456789"):
        index = blind_index_for(Patient, "ssn_index", typed)
        assert list(Patient.objects.filter(ssn_index=index)) == [patient]
    other = blind_index_for(Patient, "ssn_index", "123-45-6780")
    assert not Patient.objects.filter(ssn_index=other).exists()


def run_at_once(*calls):
    """Run each call in its own thread and database connection, all released together."""
    barrier = threading.Barrier(len(calls))
    outcomes = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            outcomes[index] = call()
        except Exception as error:  # the outcome under test
            outcomes[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite serialises all writers with one file lock; the race needs row locks",
)


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_the_same_person_registered_twice_at_once_is_caught():
    clerks = [UserFactory(roles=[Role.FRONT_DESK]) for _ in range(2)]
    outcomes = run_at_once(
        *(lambda clerk=clerk: patient_register(actor=clerk, **JOSE) for clerk in clerks)
    )
    registered = [outcome for outcome in outcomes if isinstance(outcome, Patient)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, ValidationError)]
    assert len(registered) == 1, outcomes
    assert len(refused) == 1, outcomes
    assert refused[0].code == "possible_duplicate"
    assert refused[0].params == {"candidates": [registered[0].pk]}
    assert Patient.objects.count() == 1


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_get_distinct_mrns():
    clerk = UserFactory(roles=[Role.FRONT_DESK])
    people = [
        PatientDetailsFactory(
            family_name=f"Person{number}", date_of_birth=date(1950 + number, 1, 1)
        )
        for number in range(8)
    ]
    outcomes = run_at_once(
        *(lambda person=person: patient_register(actor=clerk, **person) for person in people)
    )
    assert all(isinstance(outcome, Patient) for outcome in outcomes), outcomes
    assert sorted(Patient.objects.values_list("mrn", flat=True)) == sorted(
        mrn_from_number(number) for number in range(1, 9)
    )


def test_someone_just_under_130_can_be_registered(front_desk):
    today = localdate()
    born = today.replace(year=today.year - 130, day=28) + timedelta(days=40)
    patient = patient_register(actor=front_desk, **{**JOSE, "date_of_birth": born})
    assert patient.age == 129
