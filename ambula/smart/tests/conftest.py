from datetime import date

import pytest

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.patients.tests.factories import registered_patient


@pytest.fixture
def front_desk(db):
    return UserFactory(username="desk1", roles=[Role.FRONT_DESK])


@pytest.fixture
def patient(front_desk):
    return registered_patient(
        actor=front_desk, given_name="Ada", family_name="Okafor", date_of_birth=date(1970, 5, 1)
    )
