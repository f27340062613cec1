"""People and a patient most patient-record tests start from."""

from datetime import date

import pytest

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.patients.tests.factories import registered_patient


@pytest.fixture
def nurse(db):
    return UserFactory(username="nurse1", roles=[Role.NURSE])


@pytest.fixture
def front_desk(db):
    return UserFactory(username="desk1", roles=[Role.FRONT_DESK])


@pytest.fixture
def patient(front_desk):
    return registered_patient(actor=front_desk, date_of_birth=date(1970, 5, 1))
