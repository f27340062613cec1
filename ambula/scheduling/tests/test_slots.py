from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils.timezone import localdate

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.patients.tests.factories import registered_patient
from ambula.scheduling.booking import appointment_book
from ambula.scheduling.models import ScheduleBlock, TemplateRevision
from ambula.scheduling.schedule_templates import schedule_block_delete, schedule_block_save
from ambula.scheduling.slots import next_available
from ambula.scheduling.tests.factories import (
    make_block,
    make_exception,
    make_location,
    make_provider,
    make_room,
    make_type,
)

pytestmark = pytest.mark.django_db
CHICAGO = ZoneInfo("America/Chicago")


@pytest.fixture(autouse=True)
def chicago(settings):
    settings.TIME_ZONE = "America/Chicago"


def at(day: date, clock: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(clock), tzinfo=CHICAGO)


today = localdate()
MONDAY = today + timedelta(days=14 - today.weekday())


@pytest.fixture
def clinic(db):
    location = make_location("Main Clinic")
    make_room(location, "Room 1")
    return location


@pytest.fixture
def visit(db):
    return make_type("Follow-up", duration=30, buffer=0)


@pytest.fixture
def rivera(clinic):
    provider = make_provider(full_name="Dr. Rivera")
    make_block(provider, clinic, weekdays=[0], starts_at=time(9), ends_at=time(10))
    return provider


def starts(slots) -> list[datetime]:
    return [slot.starts_at for slot in slots]


def test_slots_step_through_the_template_in_order(rivera, clinic, visit):
    slots = next_available(appointment_type=visit, start=at(MONDAY, "00:00"), limit=4)
    assert starts(slots) == [at(MONDAY, clock) for clock in ("09:00", "09:15", "09:30")] + [
        at(MONDAY + timedelta(weeks=1), "09:00")
    ]
    assert {slot.provider for slot in slots} == {rivera}
    assert slots[0].starts_at.tzinfo is not None


def test_slots_skip_booked_times_closures_and_busy_rooms(rivera, clinic, visit):
    clerk = UserFactory(roles=[Role.FRONT_DESK])
    appointment_book(
        actor=clerk,
        patient=registered_patient(actor=clerk),
        provider=rivera,
        location=clinic,
        appointment_type=visit,
        starts_at=at(MONDAY, "09:00"),
    )
    make_exception("closure", at(MONDAY, "10:00"), at(MONDAY, "12:00"), location=clinic)
    other = make_provider(full_name="Dr. Other")
    make_block(other, clinic, weekdays=[0], starts_at=time(9), ends_at=time(10))
    make_exception("time_off", at(MONDAY, "09:00"), at(MONDAY, "09:45"), provider=other)
    # Rivera holds 09:00-09:30 and the one room; Other is away until 09:45; closed at 10:00.
    slots = next_available(appointment_type=visit, start=at(MONDAY, "00:00"), limit=2)
    assert [(slot.provider, slot.starts_at) for slot in slots] == [
        (rivera, at(MONDAY, "09:30")),
        (other, at(MONDAY + timedelta(weeks=1), "09:00")),
    ]


def test_slots_are_ordered_across_providers(rivera, clinic, visit):
    make_room(clinic, "Room 2")
    early = make_provider(full_name="Dr. Early")
    make_block(early, clinic, weekdays=[0], starts_at=time(8, 30), ends_at=time(9, 30))
    slots = next_available(appointment_type=visit, start=at(MONDAY, "00:00"), limit=4)
    assert [(slot.provider, slot.starts_at) for slot in slots] == [
        (early, at(MONDAY, "08:30")),
        (early, at(MONDAY, "08:45")),
        (early, at(MONDAY, "09:00")),
        (rivera, at(MONDAY, "09:00")),
    ]


def test_slots_on_the_day_after_a_dst_change_start_at_the_wall_clock_time(rivera, visit):
    for change, monday in (
        (date(2027, 3, 14), date(2027, 3, 15)),
        (date(2027, 11, 7), date(2027, 11, 8)),
    ):
        slots = next_available(
            appointment_type=visit, start=at(change - timedelta(days=6), "00:00"), limit=4
        )
        before = monday - timedelta(weeks=1)
        assert starts(slots) == [
            at(before, "09:00"),
            at(before, "09:15"),
            at(before, "09:30"),
            at(monday, "09:00"),
        ]
        assert slots[3].starts_at.astimezone(CHICAGO).hour == 9
    assert at(date(2027, 3, 15), "09:00").astimezone(UTC).hour == 14
    assert at(date(2027, 3, 8), "09:00").astimezone(UTC).hour == 15


def test_slots_honour_the_type_the_block_allows_and_inactive_providers(rivera, clinic, visit):
    other_type = make_type("Physical", duration=60)
    make_block(
        rivera, clinic, weekdays=[1], starts_at=time(9), ends_at=time(10), types=[other_type]
    )
    slots = next_available(appointment_type=visit, start=at(MONDAY, "00:00"), limit=4)
    assert all(slot.starts_at.weekday() == 0 for slot in slots)
    rivera.is_active = False
    rivera.save()
    assert next_available(appointment_type=visit, start=at(MONDAY, "00:00")) == []


def test_slot_search_costs_a_few_queries_per_week(
    rivera, clinic, visit, django_assert_max_num_queries
):
    for number in range(5):
        provider = make_provider()
        make_block(provider, clinic, weekdays=range(5), starts_at=time(8), ends_at=time(17))
        make_location(f"Far {number}")
    # Providers and locations, then the rules once (the template stamp, blocks, exceptions,
    # equipment, rooms), then two for the held times of each stretch of working days: eight
    # stretches (1, 2, 4, 7, 7, 7, 7 and 5 days) cover the 40 working days of 8 weeks.
    with django_assert_max_num_queries(2 + 5 + 2 * 8):
        slots = next_available(
            appointment_type=visit, start=at(MONDAY, "00:00"), limit=1000, weeks=8
        )
    assert len(slots) == 1000
    with django_assert_max_num_queries(2 + 4 + 2 * 8):  # the templates again, from the cache
        next_available(appointment_type=visit, start=at(MONDAY, "00:00"), limit=1000, weeks=8)


def test_slot_search_sees_every_template_change_at_once(rivera, clinic, visit):
    admin = UserFactory(roles=[Role.ADMIN])
    (monday_block,) = rivera.blocks.all()
    search = {"appointment_type": visit, "start": at(MONDAY, "00:00"), "limit": 100, "weeks": 1}
    assert len(next_available(**search)) == 3  # 09:00, 09:15, 09:30

    monday_block.ends_at = time(11)
    schedule_block_save(actor=admin, block=monday_block, appointment_types=[])
    assert len(next_available(**search)) == 7

    schedule_block_save(
        actor=admin, block=monday_block, appointment_types=[make_type("Physical", duration=60)]
    )
    assert next_available(**search) == []

    schedule_block_delete(actor=admin, block=monday_block)
    make_block(rivera, clinic, weekdays=[1], starts_at=time(9), ends_at=time(10))
    assert {slot.starts_at.weekday() for slot in next_available(**search)} == {1}


def test_slots_never_start_in_the_past(rivera, visit):
    slots = next_available(appointment_type=visit, start=datetime(2000, 1, 1, tzinfo=UTC))
    assert all(slot.starts_at > datetime.now(UTC) for slot in slots)


def test_a_template_change_committed_out_of_order_is_still_seen(rivera, clinic, visit):
    """Two edits can commit in the other order than they saved: the latest change time
    then stays put, but the template revision (moved in the same transaction) does not."""
    (block,) = rivera.blocks.all()
    later = make_block(make_provider(), clinic, weekdays=[3], starts_at=time(9), ends_at=time(10))
    search = {
        "appointment_type": visit,
        "providers": [rivera],
        "start": at(MONDAY, "00:00"),
        "limit": 100,
        "weeks": 1,
    }
    assert len(next_available(**search)) == 3
    # Rivera's edit saved before the other block's, and commits only now.
    assert block.updated_at < later[0].updated_at
    ScheduleBlock.objects.filter(pk=block.pk).update(
        ends_at=time(11), updated_at=block.updated_at + timedelta(microseconds=1)
    )
    TemplateRevision.advance()
    assert len(next_available(**search)) == 7
