from datetime import date

import factory

from ambula.accounts.models import User
from ambula.patients.models import Patient
from ambula.patients.services import patient_register


class PatientDetailsFactory(factory.Factory):
    """What a clerk types into the registration form, as `patient_register` takes it."""

    class Meta:
        model = dict

    given_name = factory.Faker("first_name")
    family_name = factory.Faker("last_name")
    date_of_birth = factory.Faker("date_of_birth", minimum_age=1, maximum_age=90)
    administrative_sex = "F"


def registered_patient(*, actor: User, **overrides) -> Patient:
    """Register a patient through the service; random data may look alike, so allow that."""
    return patient_register(actor=actor, allow_duplicate=True, **PatientDetailsFactory(**overrides))


JOSE = {
    "given_name": "José",
    "family_name": "Rivera",
    "date_of_birth": date(1984, 3, 7),
    "administrative_sex": "M",
    "mobile_phone": "(217) 555-0140",
    "email": "jose.rivera@example.test",
}
