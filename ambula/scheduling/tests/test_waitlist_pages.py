"""The waitlist pages and the overbooking form, through the test client."""

from datetime import date, time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.patients.models import Patient
from ambula.patients.tests.factories import registered_patient
from ambula.scheduling.availability import wall_clock
from ambula.scheduling.booking import appointment_book, appointment_cancel
from ambula.scheduling.models import Appointment, WaitlistEntry
from ambula.scheduling.tests.factories import (
    make_block,
    make_location,
    make_provider,
    make_room,
    make_type,
)
from ambula.scheduling.views.waitlist import slot_url
from ambula.scheduling.waitlist import waitlist_add

pytestmark = pytest.mark.django_db

WAITLIST = reverse("scheduling:waitlist")
ADD = reverse("scheduling:waitlist_add")
WITHDRAW = reverse("scheduling:waitlist_withdraw")
CLAIM = reverse("scheduling:waitlist_claim")
BOOK = reverse("scheduling:book")


def next_monday() -> date:
    day = timezone.localdate() + timedelta(days=2)
    return day + timedelta(days=(7 - day.weekday()) % 7)


@pytest.fixture
def clinic(practice):
    location = make_location("Lakeside Main")
    make_room(location, "Room 1")
    make_room(location, "Room 2")
    provider = make_provider(full_name="Dr. Ada Quill")
    make_block(provider, location, starts_at=time(9), ends_at=time(12))
    clerk = UserFactory(username="desk9", full_name="Dana Desk", roles=[Role.FRONT_DESK])
    return {
        "location": location,
        "provider": provider,
        "type": make_type("Follow-up", duration=30),
        "clerk": clerk,
        "mira": registered_patient(actor=clerk, given_name="Mira", family_name="Holt"),
        "tom": registered_patient(actor=clerk, given_name="Tom", family_name="Reed"),
    }


def book(clinic, patient, at: time = time(9, 30), day: date | None = None) -> Appointment:
    return appointment_book(
        actor=clinic["clerk"],
        patient=patient,
        provider=clinic["provider"],
        location=clinic["location"],
        appointment_type=clinic["type"],
        starts_at=wall_clock(day or next_monday(), at),
    )


def wait(clinic, patient, **wishes) -> WaitlistEntry:
    return waitlist_add(
        actor=clinic["clerk"], patient=patient, appointment_type=clinic["type"], **wishes
    )


def signed_in(client, sign_in, role, username="someone"):
    return sign_in(client, UserFactory(username=username, roles=[role]))


def claim_data(appointment: Appointment, entry: WaitlistEntry) -> dict:
    return {
        "entry": str(entry.pk),
        "provider": str(appointment.provider_id),
        "location": str(appointment.location_id),
        "appointment_type": str(appointment.appointment_type_id),
        "start": appointment.starts_at.isoformat(),
    }


def read_events(patient=None):
    events = AuditEvent.objects.filter(action="scheduling.waitlist_viewed")
    return events.filter(patient_id=patient.pk) if patient is not None else events


# --- The queue ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "role, may_change",
    [
        (Role.FRONT_DESK, True),
        (Role.ADMIN, True),
        (Role.PHYSICIAN, False),
        (Role.NURSE, False),
        (Role.BILLER, False),
        (Role.PRIVACY_OFFICER, False),
    ],
)
def test_every_staff_role_sees_the_queue_and_only_schedulers_change_it(
    client, sign_in, clinic, role, may_change
):
    entry = wait(clinic, clinic["mira"])
    signed_in(client, sign_in, role)

    page = client.get(WAITLIST)
    assert page.status_code == 200
    assert "Holt, Mira" in page.content.decode()
    assert ("Withdraw" in page.content.decode()) is may_change

    withdrawn = client.post(WITHDRAW, {"entry": str(entry.pk)})
    entry.refresh_from_db()
    if may_change:
        assert withdrawn.status_code == 302 and entry.status == WaitlistEntry.Status.WITHDRAWN
    else:
        assert withdrawn.status_code == 403 and entry.status == WaitlistEntry.Status.WAITING


def test_patients_cannot_see_the_waitlist(client, sign_in, clinic):
    wait(clinic, clinic["mira"])
    signed_in(client, sign_in, Role.PATIENT)
    assert client.get(WAITLIST).status_code == 403
    assert not read_events().exists()


def test_the_queue_is_oldest_first_and_filters_by_type_and_location(client, sign_in, clinic):
    other_place = make_location("Hillside")
    other_type = make_type("Physical")
    first = wait(clinic, clinic["mira"])
    second = wait(clinic, clinic["tom"], locations=[other_place])
    ana = registered_patient(actor=clinic["clerk"], given_name="Ana", family_name="Lind")
    third = waitlist_add(actor=clinic["clerk"], patient=ana, appointment_type=other_type)
    signed_in(client, sign_in, Role.FRONT_DESK)

    body = client.get(WAITLIST).content.decode()
    positions = [body.index(f"waitlist-entry-{entry.pk}") for entry in (first, second, third)]
    assert positions == sorted(positions)

    by_type = client.get(WAITLIST, {"appointment_type": other_type.pk}).content.decode()
    assert "Lind, Ana" in by_type and "Holt, Mira" not in by_type
    # "Any location" entries belong to every location's list; Tom asked for Hillside only.
    here = client.get(WAITLIST, {"location": clinic["location"].pk}).content.decode()
    assert "Holt, Mira" in here and "Reed, Tom" not in here
    assert "Reed, Tom" in client.get(WAITLIST, {"location": other_place.pk}).content.decode()


def test_a_filter_that_finds_nobody_and_an_empty_queue_say_so(client, sign_in, clinic):
    signed_in(client, sign_in, Role.FRONT_DESK)
    assert "Nobody is on the waitlist" in client.get(WAITLIST).content.decode()
    wait(clinic, clinic["mira"])
    unused = make_type("Physical")
    page = client.get(WAITLIST, {"appointment_type": unused.pk})
    assert "Nobody is waiting for this" in page.content.decode()


def test_a_malformed_filter_is_ignored_not_an_error(client, sign_in, clinic):
    wait(clinic, clinic["mira"])
    signed_in(client, sign_in, Role.FRONT_DESK)
    page = client.get(WAITLIST, {"appointment_type": "not-a-uuid", "location": "0"})
    assert page.status_code == 200
    assert "Holt, Mira" in page.content.decode()


def test_viewing_the_queue_records_one_read_per_patient_shown(client, sign_in, clinic):
    wait(clinic, clinic["mira"])
    wait(clinic, clinic["tom"], locations=[make_location("Hillside")])
    signed_in(client, sign_in, Role.BILLER)

    client.get(WAITLIST, {"location": clinic["location"].pk})

    assert read_events(clinic["mira"]).count() == 1
    assert not read_events(clinic["tom"]).exists()  # filtered out: not shown, not recorded
    assert read_events().get().actor_roles == Role.BILLER


def test_withdrawing_twice_or_a_missing_entry_is_refused_clearly(client, sign_in, clinic):
    entry = wait(clinic, clinic["mira"])
    signed_in(client, sign_in, Role.FRONT_DESK)
    client.post(WITHDRAW, {"entry": str(entry.pk)})

    again = client.post(WITHDRAW, {"entry": str(entry.pk)}, follow=True)
    assert "no longer waiting" in again.content.decode()
    missing = client.post(WITHDRAW, {"entry": "nonsense"}, follow=True)
    assert "not found" in missing.content.decode()
    assert AuditEvent.objects.filter(action="scheduling.waitlist_withdrawn").count() == 1


# --- Putting a patient on the waitlist ---------------------------------------------------------


def wishes(clinic, **overrides) -> dict:
    return {
        "patient": str(clinic["mira"].pk),
        "appointment_type": str(clinic["type"].pk),
        "providers": [str(clinic["provider"].pk)],
        "weekdays": ["0", "2"],
        "earliest_time": "09:00",
        "latest_time": "11:00",
        "wanted_until": (timezone.localdate() + timedelta(days=30)).isoformat(),
        **overrides,
    }


def test_the_front_desk_puts_a_patient_on_the_waitlist(client, sign_in, clinic):
    signed_in(client, sign_in, Role.FRONT_DESK)
    form = client.get(ADD, {"patient": clinic["mira"].pk, "appointment_type": clinic["type"].pk})
    assert form.status_code == 200
    assert AuditEvent.objects.filter(
        action="scheduling.waitlist_form_opened", patient_id=clinic["mira"].pk
    ).exists()

    response = client.post(ADD, wishes(clinic))

    assert response.status_code == 302 and response["Location"] == WAITLIST
    entry = WaitlistEntry.objects.get(patient=clinic["mira"])
    assert entry.weekdays == [0, 2] and entry.latest_time == time(11)
    assert list(entry.providers.all()) == [clinic["provider"]]
    assert not entry.locations.exists() and entry.current_appointment is None
    assert AuditEvent.objects.filter(action="scheduling.waitlist_added").count() == 1


@pytest.mark.parametrize(
    "overrides, field_error",
    [
        ({"latest_time": "09:00"}, "The latest time must be after the earliest."),
        ({"wanted_until": "2001-01-01"}, "That date has passed."),
        ({"appointment_type": ""}, "This field is required."),
        ({"earliest_time": "25:99"}, "Enter a valid time."),
        ({"weekdays": ["9"]}, "Select a valid choice."),
    ],
)
def test_bad_wishes_are_refused_with_field_errors(client, sign_in, clinic, overrides, field_error):
    signed_in(client, sign_in, Role.FRONT_DESK)
    response = client.post(ADD, wishes(clinic, **overrides))
    assert response.status_code == 400
    assert field_error in response.content.decode()
    assert not WaitlistEntry.objects.exists()


def test_a_patient_already_waiting_for_that_visit_is_not_added_twice(client, sign_in, clinic):
    wait(clinic, clinic["mira"])
    signed_in(client, sign_in, Role.FRONT_DESK)
    response = client.post(ADD, wishes(clinic))
    assert response.status_code == 400
    assert "already waiting for this kind of visit" in response.content.decode()
    assert WaitlistEntry.objects.count() == 1


def test_without_a_patient_the_form_sends_staff_to_the_patient_search(client, sign_in, clinic):
    signed_in(client, sign_in, Role.FRONT_DESK)
    response = client.get(ADD)
    assert response.status_code == 302 and response["Location"] == reverse("patients:search")


def test_only_schedulers_may_add(client, sign_in, clinic):
    signed_in(client, sign_in, Role.PHYSICIAN)
    assert client.get(ADD, {"patient": clinic["mira"].pk}).status_code == 403
    assert client.post(ADD, wishes(clinic)).status_code == 403
    assert not WaitlistEntry.objects.exists()


def test_wants_an_earlier_time_keeps_the_visit_and_its_type(client, sign_in, clinic):
    current = book(clinic, clinic["mira"], time(11), next_monday() + timedelta(days=7))
    signed_in(client, sign_in, Role.FRONT_DESK)
    page = client.get(ADD, {"appointment": current.pk})
    assert "Wants an earlier time than" in page.content.decode()

    other_type = make_type("Physical")
    data = wishes(clinic, appointment=str(current.pk), appointment_type=str(other_type.pk))
    del data["patient"]
    response = client.post(ADD, data)

    assert response.status_code == 302
    entry = WaitlistEntry.objects.get()
    assert entry.current_appointment == current and entry.patient == clinic["mira"]
    assert entry.appointment_type == clinic["type"]  # the posted type is ignored


def test_a_cancelled_appointment_cannot_be_moved_earlier(client, sign_in, clinic):
    current = book(clinic, clinic["mira"])
    appointment_cancel(actor=clinic["clerk"], appointment=current, reason="Ill")
    signed_in(client, sign_in, Role.FRONT_DESK)
    response = client.get(ADD, {"appointment": current.pk}, follow=True)
    assert "Only a scheduled appointment can be moved earlier." in response.content.decode()
    assert not WaitlistEntry.objects.exists()


def test_the_booking_and_reschedule_pages_offer_the_waitlist(client, sign_in, clinic):
    current = book(clinic, clinic["mira"])
    signed_in(client, sign_in, Role.FRONT_DESK)
    booking_page = client.get(BOOK, {"patient": clinic["mira"].pk}).content.decode()
    assert f"{ADD}?patient={clinic['mira'].pk}" in booking_page
    moving = client.get(reverse("scheduling:reschedule", kwargs={"appointment_id": current.pk}))
    assert f"{ADD}?appointment={current.pk}" in moving.content.decode()


# --- A freed slot ------------------------------------------------------------------------------


def test_cancelling_on_the_board_tells_how_many_waiting_patients_want_the_time(
    client, sign_in, clinic
):
    freed = book(clinic, clinic["tom"])
    wait(clinic, clinic["mira"])
    signed_in(client, sign_in, Role.FRONT_DESK)
    cancel = reverse("scheduling:cancel", kwargs={"appointment_id": freed.pk})

    board = client.post(cancel, {"reason": "Patient called"}, HTTP_HX_REQUEST="true")

    body = board.content.decode()
    assert "1 patient on the waitlist wants this time." in body
    assert slot_url(freed).replace("&", "&amp;") in body


def test_the_cancel_page_shows_the_notice_and_says_nothing_when_nobody_waits(
    client, sign_in, clinic
):
    freed = book(clinic, clinic["tom"])
    unwanted = book(clinic, clinic["tom"], time(10, 30))
    wait(clinic, clinic["mira"], latest_time=time(10))
    wait(clinic, registered_patient(actor=clinic["clerk"]))
    signed_in(client, sign_in, Role.FRONT_DESK)

    def cancel(appointment):
        url = reverse("scheduling:cancel", kwargs={"appointment_id": appointment.pk})
        return client.post(url, {"reason": "Patient called"}, follow=True).content.decode()

    assert "2 patients on the waitlist want this time." in cancel(freed)
    # Mira wants nothing after 10:00: at 10:30 only the other patient fits.
    assert "1 patient on the waitlist wants this time." in cancel(unwanted)


def test_no_notice_when_no_entry_fits(client, sign_in, clinic):
    freed = book(clinic, clinic["tom"])
    wait(clinic, clinic["mira"], latest_time=time(9))
    signed_in(client, sign_in, Role.FRONT_DESK)
    url = reverse("scheduling:cancel", kwargs={"appointment_id": freed.pk})
    body = client.post(url, {"reason": "Patient called"}, follow=True).content.decode()
    assert "Appointment cancelled." in body and "on the waitlist" not in body


def test_the_slot_page_lists_who_the_time_suits_in_order_and_audits_it(client, sign_in, clinic):
    freed = book(clinic, clinic["tom"])
    appointment_cancel(actor=clinic["clerk"], appointment=freed, reason="Ill")
    first = wait(clinic, clinic["mira"])
    ana = registered_patient(actor=clinic["clerk"], given_name="Ana", family_name="Lind")
    second = wait(clinic, ana)
    wait(clinic, clinic["tom"], latest_time=time(9))  # does not fit 09:30
    signed_in(client, sign_in, Role.FRONT_DESK)

    page = client.get(slot_url(freed))

    body = page.content.decode()
    assert page.status_code == 200
    assert body.index(f"waitlist-entry-{first.pk}") < body.index(f"waitlist-entry-{second.pk}")
    assert "Reed, Tom" not in body
    assert body.count("Book for this patient") == 2
    assert read_events(clinic["mira"]).count() == 1 and read_events(ana).count() == 1
    assert not read_events(clinic["tom"]).exists()


def test_read_only_roles_see_the_slot_page_without_booking_buttons(client, sign_in, clinic):
    freed = book(clinic, clinic["tom"])
    appointment_cancel(actor=clinic["clerk"], appointment=freed, reason="Ill")
    entry = wait(clinic, clinic["mira"])
    signed_in(client, sign_in, Role.BILLER)

    page = client.get(slot_url(freed))
    assert page.status_code == 200 and "Holt, Mira" in page.content.decode()
    assert "Book for this patient" not in page.content.decode()
    assert client.post(CLAIM, claim_data(freed, entry)).status_code == 403
    entry.refresh_from_db()
    assert entry.status == WaitlistEntry.Status.WAITING


@pytest.mark.parametrize(
    "query",
    [{}, {"provider": "x", "location": "y", "start": "z", "appointment_type": "w"}],
)
def test_an_incomplete_slot_link_says_so(client, sign_in, clinic, query):
    signed_in(client, sign_in, Role.FRONT_DESK)
    response = client.get(reverse("scheduling:waitlist_slot"), query, follow=True)
    assert response.redirect_chain[-1][0] == WAITLIST
    assert "That slot link is incomplete or out of date." in response.content.decode()


def test_a_slot_that_is_taken_again_shows_why_and_offers_no_buttons(client, sign_in, clinic):
    freed = book(clinic, clinic["tom"])
    appointment_cancel(actor=clinic["clerk"], appointment=freed, reason="Ill")
    wait(clinic, clinic["mira"])
    book(clinic, registered_patient(actor=clinic["clerk"]))  # someone booked it meanwhile
    signed_in(client, sign_in, Role.FRONT_DESK)
    body = client.get(slot_url(freed)).content.decode()
    assert "This time can no longer be booked" in body
    assert "Book for this patient" not in body


def test_booking_the_slot_for_a_waiting_patient_first_claim_wins(client, sign_in, clinic):
    freed = book(clinic, clinic["tom"])
    appointment_cancel(actor=clinic["clerk"], appointment=freed, reason="Ill")
    first = wait(clinic, clinic["mira"])
    ana = registered_patient(actor=clinic["clerk"], given_name="Ana", family_name="Lind")
    second = wait(clinic, ana)
    signed_in(client, sign_in, Role.FRONT_DESK)

    won = client.post(CLAIM, claim_data(freed, first), follow=True)

    booked = Appointment.objects.get(patient=clinic["mira"])
    assert booked.starts_at == freed.starts_at and booked.status == "scheduled"
    assert "Booked Mira Holt with Dr. Ada Quill" in won.content.decode()
    first.refresh_from_db()
    assert first.status == WaitlistEntry.Status.BOOKED and first.booked_appointment == booked

    lost = client.post(CLAIM, claim_data(freed, second))

    assert lost.status_code == 409
    assert "That time was just taken. Choose another slot." in lost.content.decode()
    second.refresh_from_db()
    assert second.status == WaitlistEntry.Status.WAITING
    assert not Appointment.objects.filter(patient=ana).exists()
    assert AuditEvent.objects.filter(action="scheduling.waitlist_claimed").count() == 1


def test_claiming_the_same_entry_twice_changes_nothing(client, sign_in, clinic):
    freed = book(clinic, clinic["tom"])
    appointment_cancel(actor=clinic["clerk"], appointment=freed, reason="Ill")
    entry = wait(clinic, clinic["mira"])
    signed_in(client, sign_in, Role.FRONT_DESK)
    client.post(CLAIM, claim_data(freed, entry))
    again = client.post(CLAIM, claim_data(freed, entry))
    assert again.status_code == 400 and "no longer waiting" in again.content.decode()
    assert Appointment.objects.filter(patient=clinic["mira"]).count() == 1


def test_a_claim_moves_the_patients_later_appointment_and_says_so(client, sign_in, clinic):
    later = book(clinic, clinic["mira"], time(11), next_monday() + timedelta(days=7))
    freed = book(clinic, clinic["tom"])
    appointment_cancel(actor=clinic["clerk"], appointment=freed, reason="Ill")
    entry = wait(clinic, clinic["mira"], current_appointment=later)
    signed_in(client, sign_in, Role.FRONT_DESK)

    response = client.post(CLAIM, claim_data(freed, entry), follow=True)

    later.refresh_from_db()
    moved = Appointment.objects.get(rescheduled_from=later)
    assert later.status == "cancelled" and later.cancel_reason == "Rescheduled"
    assert moved.starts_at == freed.starts_at
    assert "Moved Mira Holt&#x27;s appointment from" in response.content.decode()


def test_a_claim_for_a_time_the_patient_did_not_ask_for_is_refused(client, sign_in, clinic):
    freed = book(clinic, clinic["tom"])
    appointment_cancel(actor=clinic["clerk"], appointment=freed, reason="Ill")
    entry = wait(clinic, clinic["mira"], earliest_time=time(10))
    signed_in(client, sign_in, Role.FRONT_DESK)
    response = client.post(CLAIM, claim_data(freed, entry))
    assert response.status_code == 400
    assert "does not suit what Mira Holt asked for" in response.content.decode()
    assert not Appointment.objects.filter(patient=clinic["mira"]).exists()


def test_a_claim_without_its_slot_is_refused(client, sign_in, clinic):
    entry = wait(clinic, clinic["mira"])
    signed_in(client, sign_in, Role.FRONT_DESK)
    response = client.post(CLAIM, {"entry": str(entry.pk)}, follow=True)
    assert "That slot link is incomplete or out of date." in response.content.decode()
    entry.refresh_from_db()
    assert entry.status == WaitlistEntry.Status.WAITING


# --- Overbooking -------------------------------------------------------------------------------


def overbook_data(clinic, **overrides) -> dict:
    return {
        "patient": str(clinic["mira"].pk),
        "overbook": "1",
        "overbook-appointment_type": str(clinic["type"].pk),
        "overbook-date": next_monday().isoformat(),
        "overbook-time": "09:30",
        "overbook-provider": str(clinic["provider"].pk),
        "overbook-location": str(clinic["location"].pk),
        "overbook-overbook_reason": "Dr. Quill agreed to fit in today",
        **overrides,
    }


def test_only_users_who_may_overbook_see_the_form(client, sign_in, clinic):
    signed_in(client, sign_in, Role.ADMIN, "admin1")
    assert "Overbook…" in client.get(BOOK, {"patient": clinic["mira"].pk}).content.decode()
    client.logout()
    signed_in(client, sign_in, Role.FRONT_DESK, "desk1")
    assert "Overbook…" not in client.get(BOOK, {"patient": clinic["mira"].pk}).content.decode()


def test_an_administrator_overbooks_on_top_of_another_visit(client, sign_in, clinic):
    taken = book(clinic, clinic["tom"])
    signed_in(client, sign_in, Role.ADMIN)

    response = client.post(BOOK, overbook_data(clinic), follow=True)

    overbooked = Appointment.objects.get(patient=clinic["mira"])
    assert overbooked.starts_at == taken.starts_at and overbooked.overbooked
    assert overbooked.overbook_reason == "Dr. Quill agreed to fit in today"
    body = response.content.decode()
    assert "Overbooked Mira Holt with Dr. Ada Quill" in body
    assert "Overbooked</span>" in body and "Dr. Quill agreed to fit in today</p>" in body
    event = AuditEvent.objects.get(action="scheduling.appointment_booked", target_id=overbooked.pk)
    assert "overbook_reason" in event.changed_fields


def test_a_forged_overbooking_from_the_front_desk_is_refused(client, sign_in, clinic):
    book(clinic, clinic["tom"])
    signed_in(client, sign_in, Role.FRONT_DESK)
    response = client.post(BOOK, overbook_data(clinic))
    assert response.status_code == 403
    assert not Appointment.objects.filter(patient=clinic["mira"]).exists()


def test_physicians_may_overbook_but_the_booking_page_is_the_schedulers(client, sign_in, clinic):
    # The policy gives physicians OVERBOOK without MANAGE_SCHEDULE: the page stays closed.
    signed_in(client, sign_in, Role.PHYSICIAN)
    assert client.post(BOOK, overbook_data(clinic)).status_code == 403
    assert not Appointment.objects.exists()


@pytest.mark.parametrize(
    "overrides, error",
    [
        ({"overbook-overbook_reason": "   "}, "Say why this appointment is overbooked."),
        ({"overbook-time": ""}, "This field is required."),
        ({"overbook-date": "31/02/2026"}, "Enter a valid date."),
        ({"overbook-time": "07:00"}, "does not see patients at this time."),
        ({"overbook-date": "2001-01-01"}, "That time has already passed."),
    ],
)
def test_a_bad_overbooking_shows_its_error_in_the_open_form(
    client, sign_in, clinic, overrides, error
):
    signed_in(client, sign_in, Role.ADMIN)
    response = client.post(BOOK, overbook_data(clinic, **overrides))
    assert response.status_code == 400
    body = response.content.decode()
    assert error in body and '<details class="card overbook" id="overbook" open>' in body
    assert not Appointment.objects.exists()


def test_overbooking_still_needs_a_free_room(client, sign_in, clinic):
    book(clinic, clinic["tom"])
    colleague = make_provider(full_name="Dr. Lee")
    make_block(colleague, clinic["location"], starts_at=time(9), ends_at=time(12))
    appointment_book(
        actor=clinic["clerk"],
        patient=registered_patient(actor=clinic["clerk"]),
        provider=colleague,
        location=clinic["location"],
        appointment_type=clinic["type"],
        starts_at=wall_clock(next_monday(), time(9, 30)),
    )
    signed_in(client, sign_in, Role.ADMIN)
    response = client.post(BOOK, overbook_data(clinic))
    # Dr. Quill's own visit is no obstacle when overbooking, but both rooms are in use.
    assert response.status_code == 400
    assert "No exam room is free then." in response.content.decode()
    assert not Appointment.objects.filter(patient=clinic["mira"]).exists()


def test_overbooking_refuses_a_time_the_clocks_skip(client, sign_in, clinic, settings):
    settings.TIME_ZONE = "America/Chicago"
    spring_forward = date(2027, 3, 14)  # a Sunday: Chicago's clocks go from 02:00 to 03:00
    make_block(
        clinic["provider"], clinic["location"], weekdays=[6], starts_at=time(0), ends_at=time(8)
    )
    signed_in(client, sign_in, Role.ADMIN)
    data = overbook_data(clinic, **{"overbook-date": spring_forward.isoformat()})

    response = client.post(BOOK, data | {"overbook-time": "02:30"})

    assert response.status_code == 400
    assert "That time does not exist: the clocks go forward then." in response.content.decode()
    assert "time" in response.context["overbook"].errors
    assert not Appointment.objects.exists()  # not moved on to 03:30
    # An hour that exists that day is booked as asked.
    assert client.post(BOOK, data | {"overbook-time": "03:30"}).status_code == 302
    booked = Appointment.objects.get()
    assert timezone.localtime(booked.starts_at).time() == time(3, 30)


# --- Restricted records ------------------------------------------------------------------------


def restrict(patient) -> None:
    """Restricted, with nobody in these tests as its primary care provider."""
    Patient.objects.filter(pk=patient.pk).update(restricted=True)


@pytest.mark.parametrize("source", ["patient", "appointment"])
def test_adding_a_restricted_patient_asks_for_emergency_access_first(
    client, sign_in, clinic, source
):
    current = book(clinic, clinic["mira"], time(11), next_monday() + timedelta(days=7))
    restrict(clinic["mira"])
    signed_in(client, sign_in, Role.FRONT_DESK)
    query = {"patient": clinic["mira"].pk} if source == "patient" else {"appointment": current.pk}

    response = client.get(ADD, query)

    assert response.status_code == 302
    assert response["Location"].startswith(
        reverse("patients:emergency_access", args=[clinic["mira"].pk])
    )
    refused = AuditEvent.objects.get(action="patients.restricted_record_refused")
    assert refused.patient_id == clinic["mira"].pk and refused.outcome == "denied"
    assert not AuditEvent.objects.filter(action="scheduling.waitlist_form_opened").exists()
    data = wishes(clinic) if source == "patient" else wishes(clinic, appointment=str(current.pk))
    if source == "appointment":
        del data["patient"]
    assert client.post(ADD, data).status_code == 403
    assert not WaitlistEntry.objects.exists()
