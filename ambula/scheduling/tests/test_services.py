import pytest
from django.core.exceptions import ValidationError

from ambula.scheduling.models import Location
from ambula.scheduling.selectors import location_list
from ambula.scheduling.services import location_create

pytestmark = pytest.mark.django_db

MAIN = {
    "name": "Main Clinic",
    "address_line": "1 Main St",
    "city": "Springfield",
    "state": "il",
    "postal_code": "62701",
}


def test_location_create_normalises_the_state():
    location = location_create(actor=None, **MAIN)
    assert location.state == "IL"
    assert location.id.version == 7


def test_location_names_are_unique_whatever_the_case():
    location_create(actor=None, **MAIN)
    with pytest.raises(ValidationError) as error:
        location_create(actor=None, **(MAIN | {"name": "MAIN CLINIC"}))
    assert error.value.error_dict["__all__"][0].code == "location_exists"
    assert Location.objects.count() == 1


@pytest.mark.parametrize("missing", ["name", "address_line", "city", "state", "postal_code"])
def test_location_needs_an_address(missing):
    with pytest.raises(ValidationError) as error:
        location_create(actor=None, **(MAIN | {missing: " "}))
    assert missing in error.value.error_dict


def test_location_list_is_sorted_by_name(physician):
    location_create(actor=None, **(MAIN | {"name": "Zephyr Office"}))
    location_create(actor=None, **(MAIN | {"name": "Alder Office"}))
    assert [location.name for location in location_list(actor=physician)] == [
        "Alder Office",
        "Zephyr Office",
    ]
