from datetime import time, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils.timezone import localdate

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.core.errors import AccessDenied
from ambula.patients.tests.factories import registered_patient
from ambula.scheduling.availability import wall_clock
from ambula.scheduling.booking import SlotTaken, appointment_book, appointment_cancel
from ambula.scheduling.models import WaitlistEntry
from ambula.scheduling.tests.factories import (
    make_block,
    make_location,
    make_provider,
    make_room,
    make_type,
)
from ambula.scheduling.waitlist import (
    waitlist_add,
    waitlist_claim,
    waitlist_matches,
    waitlist_withdraw,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk():
    return UserFactory(username="desk9", roles=[Role.FRONT_DESK])


@pytest.fixture
def clinic():
    location = make_location("Main Clinic")
    make_room(location)
    provider = make_provider(full_name="Dr. Kim")
    visit = make_type("Follow-up", duration=30)
    make_block(provider, location, weekdays=range(5), starts_at=time(9), ends_at=time(17))
    return provider, location, visit


def next_weekday(days_ahead: int, at: time):
    day = localdate() + timedelta(days=days_ahead)
    while day.weekday() > 4:
        day += timedelta(days=1)
    return wall_clock(day, at)


def test_a_freed_slot_matches_waiting_patients_oldest_first(desk, clinic):
    provider, location, visit = clinic
    first = waitlist_add(actor=desk, patient=registered_patient(actor=desk), appointment_type=visit)
    second = waitlist_add(
        actor=desk,
        patient=registered_patient(actor=desk),
        appointment_type=visit,
        providers=[provider],
    )
    slot = next_weekday(3, time(10))
    assert waitlist_matches(
        provider=provider, location=location, appointment_type=visit, starts_at=slot
    ) == [first, second]


def test_matching_honours_days_times_providers_and_dates(desk, clinic):
    provider, location, visit = clinic
    patient = registered_patient(actor=desk)
    slot = next_weekday(3, time(10))
    mornings_elsewhere = waitlist_add(
        actor=desk,
        patient=patient,
        appointment_type=visit,
        providers=[make_provider(full_name="Dr. Other")],
    )
    afternoons = waitlist_add(
        actor=desk,
        patient=registered_patient(actor=desk),
        appointment_type=visit,
        earliest_time=time(13),
    )
    other_day = waitlist_add(
        actor=desk,
        patient=registered_patient(actor=desk),
        appointment_type=visit,
        weekdays=[(slot.weekday() + 1) % 7],
    )
    other_type = waitlist_add(
        actor=desk, patient=registered_patient(actor=desk), appointment_type=make_type("Physical")
    )
    matches = waitlist_matches(
        provider=provider, location=location, appointment_type=visit, starts_at=slot
    )
    assert not {mornings_elsewhere, afternoons, other_day, other_type} & set(matches)


def test_someone_moving_up_only_wants_an_earlier_slot(desk, clinic):
    provider, location, visit = clinic
    patient = registered_patient(actor=desk)
    current = appointment_book(
        actor=desk,
        patient=patient,
        provider=provider,
        location=location,
        appointment_type=visit,
        starts_at=next_weekday(10, time(9)),
    )
    entry = waitlist_add(
        actor=desk, patient=patient, appointment_type=visit, current_appointment=current
    )
    earlier, later = next_weekday(3, time(10)), next_weekday(14, time(10))
    assert entry in waitlist_matches(
        provider=provider, location=location, appointment_type=visit, starts_at=earlier
    )
    assert entry not in waitlist_matches(
        provider=provider, location=location, appointment_type=visit, starts_at=later
    )
    # Claiming moves the appointment rather than booking a second one.
    moved = waitlist_claim(
        actor=desk, entry=entry, provider=provider, location=location, starts_at=earlier
    )
    current.refresh_from_db()
    assert current.status == "cancelled"
    assert moved.starts_at == earlier and moved.patient == patient


def test_the_first_claim_wins_and_the_second_is_told_it_is_gone(desk, clinic):
    provider, location, visit = clinic
    slot = next_weekday(3, time(11))
    holder = appointment_book(
        actor=desk,
        patient=registered_patient(actor=desk),
        provider=provider,
        location=location,
        appointment_type=visit,
        starts_at=slot,
    )
    one = waitlist_add(actor=desk, patient=registered_patient(actor=desk), appointment_type=visit)
    two = waitlist_add(actor=desk, patient=registered_patient(actor=desk), appointment_type=visit)
    appointment_cancel(actor=desk, appointment=holder, reason="Patient called to cancel")

    booked = waitlist_claim(
        actor=desk, entry=one, provider=provider, location=location, starts_at=slot
    )
    with pytest.raises(SlotTaken):
        waitlist_claim(actor=desk, entry=two, provider=provider, location=location, starts_at=slot)
    one.refresh_from_db()
    two.refresh_from_db()
    assert (one.status, one.booked_appointment) == (WaitlistEntry.Status.BOOKED, booked)
    assert two.status == WaitlistEntry.Status.WAITING  # still waiting for the next one
    assert AuditEvent.objects.filter(action="scheduling.waitlist_claimed").count() == 1


def test_bad_waitlist_requests_are_refused(desk, clinic):
    _, _, visit = clinic
    patient = registered_patient(actor=desk)
    with pytest.raises(ValidationError):
        waitlist_add(actor=desk, patient=patient, appointment_type=visit, weekdays=[7])
    with pytest.raises(ValidationError):
        waitlist_add(
            actor=desk,
            patient=patient,
            appointment_type=visit,
            earliest_time=time(14),
            latest_time=time(9),
        )
    with pytest.raises(ValidationError):
        waitlist_add(
            actor=desk,
            patient=patient,
            appointment_type=visit,
            wanted_until=localdate() - timedelta(days=1),
        )
    waitlist_add(actor=desk, patient=patient, appointment_type=visit)
    with pytest.raises(ValidationError):
        waitlist_add(actor=desk, patient=patient, appointment_type=visit)  # already waiting
    assert WaitlistEntry.objects.count() == 1


def test_withdrawn_entries_match_nothing_and_nurses_do_not_manage_the_list(desk, clinic):
    provider, location, visit = clinic
    entry = waitlist_add(actor=desk, patient=registered_patient(actor=desk), appointment_type=visit)
    nurse = UserFactory(username="nurse9", roles=[Role.NURSE])
    with pytest.raises(AccessDenied):
        waitlist_withdraw(actor=nurse, entry=entry)
    waitlist_withdraw(actor=desk, entry=entry)
    assert not waitlist_matches(
        provider=provider,
        location=location,
        appointment_type=visit,
        starts_at=next_weekday(3, time(10)),
    )
    with pytest.raises(ValidationError):
        waitlist_withdraw(actor=desk, entry=entry)
