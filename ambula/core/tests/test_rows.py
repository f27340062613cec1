"""plain_rows gives exactly what values_list gives, on whichever database the suite runs."""

from datetime import date, time, timedelta

import pytest
from django.utils import timezone

from ambula.core.rows import plain_rows
from ambula.scheduling.models import Appointment, ScheduleBlock, ScheduleException
from ambula.scheduling.tests.factories import (
    make_block,
    make_exception,
    make_location,
    make_provider,
)

pytestmark = pytest.mark.django_db


def test_rows_match_values_list_for_every_supported_type():
    location = make_location("Harbor")
    provider = make_provider(full_name="Dr. Row Check")
    make_block(provider, location, weekdays=[0, 2], starts_at=time(8, 30), ends_at=time(12))
    make_block(
        provider,
        location,
        weekdays=[4],
        starts_at=time(13),
        ends_at=time(17, 45),
        valid_until=date.today() + timedelta(days=90),
    )
    start = timezone.now().replace(microsecond=123456)
    make_exception("time_off", start, start + timedelta(hours=3), provider=provider)
    block_fields = (
        "id",
        "provider_id",
        "weekday",
        "starts_at",
        "ends_at",
        "valid_from",
        "valid_until",
    )
    exception_fields = ("kind", "provider_id", "location_id", "starts_at", "ends_at", "reason")

    blocks = ScheduleBlock.objects.order_by("weekday")
    exceptions = ScheduleException.objects.all()

    assert list(plain_rows(blocks, *block_fields)) == list(blocks.values_list(*block_fields))
    assert list(plain_rows(exceptions, *exception_fields)) == list(
        exceptions.values_list(*exception_fields)
    )
    (row,) = plain_rows(exceptions, "starts_at")
    assert row[0] == start and row[0].utcoffset() == timedelta(0)


def test_rows_follow_relations_and_keep_nulls():
    location = make_location("Bay")
    provider = make_provider(full_name="Dr. Join")
    make_block(provider, location, weekdays=[1], starts_at=time(9), ends_at=time(10))
    fields = ("provider__user__full_name", "appointment_types__id", "location__name")

    assert list(plain_rows(ScheduleBlock.objects.all(), *fields)) == [("Dr. Join", None, "Bay")]


def test_an_empty_in_list_gives_no_rows_without_a_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert list(plain_rows(ScheduleBlock.objects.filter(id__in=[]), "id")) == []


def test_a_column_it_cannot_convert_is_refused():
    with pytest.raises(TypeError, match="BooleanField"):
        list(plain_rows(ScheduleBlock.objects.all(), "id", "provider__is_active"))
    # An encrypted column converts its own values: a plain row would hold the raw token.
    with pytest.raises(TypeError, match="EncryptedTextField"):
        list(plain_rows(Appointment.objects.all(), "note"))
