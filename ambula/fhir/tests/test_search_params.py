"""Search parameter parsing, without the database: dates, tokens, references, modifiers."""

import datetime as dt
import uuid

import pytest
from django.db.models import Q
from django.utils import timezone

from ambula.fhir.errors import FhirError
from ambula.fhir.search_params import (
    DateParam,
    ReferenceParam,
    StringParam,
    TokenParam,
    date_range,
)


def utc(*parts) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def utc_zone():
    with timezone.override("UTC"):
        yield


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026", utc(2026, 1, 1), utc(2027, 1, 1)),
        ("2026-12", utc(2026, 12, 1), utc(2027, 1, 1)),
        ("2026-02", utc(2026, 2, 1), utc(2026, 3, 1)),
        ("2026-03-09", utc(2026, 3, 9), utc(2026, 3, 10)),
        ("2026-03-09T10:15Z", utc(2026, 3, 9, 10, 15), utc(2026, 3, 9, 10, 16)),
        ("2026-03-09T10:15:30Z", utc(2026, 3, 9, 10, 15, 30), utc(2026, 3, 9, 10, 15, 31)),
        ("2026-03-09T10:15:30+02:00", utc(2026, 3, 9, 8, 15, 30), utc(2026, 3, 9, 8, 15, 31)),
    ],
)
def test_a_date_covers_the_range_its_precision_gives(text, start, end):
    assert date_range(text, "date") == (start, end)


@pytest.mark.parametrize("text", ["", "26-01-01", "2026-13", "2026-02-30", "tomorrow", "2026-1-1"])
def test_an_unreadable_date_is_a_400_naming_the_parameter(text):
    with pytest.raises(FhirError) as raised:
        date_range(text, "birthdate")
    assert raised.value.status == 400
    assert raised.value.issues[0]["expression"] == ["birthdate"]


def test_date_prefixes_compare_against_the_whole_range():
    param = DateParam(field="starts_at")
    day_start, day_end = utc(2026, 3, 9), utc(2026, 3, 10)
    assert param.condition("date", "", "ge2026-03-09") == Q(starts_at__gte=day_start)
    assert param.condition("date", "", "gt2026-03-09") == Q(starts_at__gte=day_end)
    assert param.condition("date", "", "lt2026-03-09") == Q(starts_at__lt=day_start)
    assert param.condition("date", "", "le2026-03-09") == Q(starts_at__lt=day_end)
    assert param.condition("date", "", "2026-03-09") == Q(
        starts_at__gte=day_start, starts_at__lt=day_end
    )


def test_a_date_field_compares_dates():
    param = DateParam(field="date_of_birth", is_date=True)
    assert param.condition("birthdate", "", "1970-05") == Q(
        date_of_birth__gte=dt.date(1970, 5, 1), date_of_birth__lt=dt.date(1970, 6, 1)
    )


def test_a_token_maps_codes_and_ignores_other_systems():
    param = TokenParam(
        field="sex",
        system="http://hl7.org/fhir/administrative-gender",
        codes={"female": "F", "male": "M"},
    )
    assert param.condition("gender", "", "female") == Q(sex="F")
    assert param.condition("gender", "", "http://hl7.org/fhir/administrative-gender|male") == Q(
        sex="M"
    )
    assert param.condition("gender", "", "http://other.example/|male") == Q(pk__in=[])
    assert param.condition("gender", "", "robot") == Q(pk__in=[])
    assert param.condition("gender", "not", "female") == ~Q(sex="F")


def test_a_reference_takes_type_and_id_or_a_bare_id():
    key = uuid.uuid4()
    param = ReferenceParam(field="patient_id", targets=("Patient",))
    assert param.condition("patient", "", f"Patient/{key}") == Q(patient_id=key)
    assert param.condition("patient", "", str(key)) == Q(patient_id=key)
    assert param.condition("patient", "", f"https://elsewhere.example/fhir/Patient/{key}") == Q(
        patient_id=key
    )
    assert param.condition("patient", "", f"Group/{key}") == Q(pk__in=[])
    assert param.condition("patient", "", "Patient/not-a-uuid") == Q(pk__in=[])


def test_an_unsupported_modifier_is_a_400():
    with pytest.raises(FhirError) as raised:
        StringParam(fields=("name",)).apply(None, "name", "above", ["x"])
    assert raised.value.status == 400


def test_commas_or_and_repeats_and():
    param = StringParam(fields=("family",))
    queryset = _Recorder()
    param.apply(queryset, "family", "", ["Smith,Jones", "Sm"])
    assert queryset.filters == [
        Q(family__istartswith="Smith") | Q(family__istartswith="Jones"),
        Q(family__istartswith="Sm"),
    ]


def test_an_empty_value_is_a_400():
    with pytest.raises(FhirError):
        StringParam(fields=("family",)).apply(_Recorder(), "family", "", [""])


class _Recorder:
    def __init__(self):
        self.filters = []

    def filter(self, condition):
        self.filters.append(condition)
        return self
