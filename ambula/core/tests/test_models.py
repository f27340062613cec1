import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from ambula.core.models import Practice
from ambula.core.services import practice_create

pytestmark = pytest.mark.django_db


def test_an_installation_has_one_practice():
    practice_create(actor=None, name="Lakeside Pediatrics")
    with pytest.raises(ValidationError) as error:
        practice_create(actor=None, name="Second Practice")
    assert error.value.error_dict["__all__"][0].code == "practice_exists"
    assert Practice.objects.count() == 1


def test_the_database_itself_refuses_a_second_practice():
    practice_create(actor=None, name="Lakeside Pediatrics")
    with pytest.raises(IntegrityError), transaction.atomic():
        Practice.objects.bulk_create([Practice(name="Bypass")])


def test_practice_needs_a_name():
    with pytest.raises(ValidationError) as error:
        practice_create(actor=None, name="   ")
    assert "name" in error.value.error_dict
