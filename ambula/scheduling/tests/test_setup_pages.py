"""The set-up pages through the test client: who may open them, what they save, what they
refuse, and the warning before a change leaves booked appointments outside the schedule."""

from datetime import date, time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.patients.tests.factories import registered_patient
from ambula.scheduling.availability import practice_zone, wall_clock
from ambula.scheduling.booking import appointment_book
from ambula.scheduling.models import (
    AppointmentType,
    Location,
    LocationHours,
    Provider,
    Resource,
    ScheduleBlock,
    ScheduleException,
)
from ambula.scheduling.tests.factories import (
    make_block,
    make_equipment,
    make_exception,
    make_location,
    make_provider,
    make_room,
    make_type,
    valid_npi,
)
from ambula.scheduling.views.schedule_exceptions import period_text
from ambula.scheduling.views.setup import hours_summary, template_summary

pytestmark = pytest.mark.django_db
DASH = "\N{EN DASH}"


def next_monday() -> date:
    day = timezone.localdate() + timedelta(days=2)
    return day + timedelta(days=(7 - day.weekday()) % 7)


@pytest.fixture
def clinic(practice):
    location = make_location("Lakeside Main")
    make_room(location, "Room 1")
    provider = make_provider(full_name="Dr. Ada Quill")
    (block,) = make_block(provider, location, weekdays=[0], starts_at=time(9), ends_at=time(12))
    visit = make_type("Follow-up", duration=30)
    clerk = UserFactory(username="desk9", roles=[Role.FRONT_DESK])
    return {
        "location": location,
        "provider": provider,
        "block": block,
        "type": visit,
        "clerk": clerk,
    }


@pytest.fixture
def booked(clinic):
    """A visit booked next Monday 10:00, inside the Monday block."""
    patient = registered_patient(actor=clinic["clerk"], given_name="Mira", family_name="Holt")
    return appointment_book(
        actor=clinic["clerk"],
        patient=patient,
        provider=clinic["provider"],
        location=clinic["location"],
        appointment_type=clinic["type"],
        starts_at=wall_clock(next_monday(), time(10), practice_zone()),
    )


@pytest.fixture
def admin(client, sign_in, practice):
    sign_in(client, UserFactory(username="admin7", roles=[Role.ADMIN]))
    return client


@pytest.fixture
def desk(client, sign_in, clinic):
    sign_in(client, clinic["clerk"])
    return client


def setup_urls(clinic) -> list[str]:
    resource = Resource.objects.get(name="Room 1")
    return [
        reverse("scheduling:setup"),
        reverse("scheduling:setup_location_add"),
        reverse("scheduling:setup_location", kwargs={"location_id": clinic["location"].pk}),
        reverse("scheduling:setup_resource", kwargs={"resource_id": resource.pk}),
        reverse("scheduling:setup_provider_add"),
        reverse("scheduling:setup_provider", kwargs={"provider_id": clinic["provider"].pk}),
        reverse("scheduling:setup_block_add", kwargs={"provider_id": clinic["provider"].pk}),
        reverse("scheduling:setup_block", kwargs={"block_id": clinic["block"].pk}),
        reverse("scheduling:setup_type_add"),
        reverse("scheduling:setup_type", kwargs={"appointment_type_id": clinic["type"].pk}),
        reverse("scheduling:setup_exceptions"),
    ]


# --- Access ------------------------------------------------------------------------------------


def test_every_setup_page_renders_for_the_administrator(admin, clinic):
    for url in setup_urls(clinic):
        response = admin.get(url)
        assert response.status_code == 200, url
        assert b"<h1" in response.content


@pytest.mark.parametrize("role", [Role.FRONT_DESK, Role.PHYSICIAN, Role.NURSE, Role.BILLER])
def test_only_the_administrator_sets_up(client, sign_in, clinic, role):
    sign_in(client, UserFactory(username="someone", roles=[role]))
    for url in setup_urls(clinic)[:-1]:
        assert client.get(url).status_code == 403, url
    response = client.post(
        reverse("scheduling:setup_block_delete", kwargs={"block_id": clinic["block"].pk})
    )
    assert response.status_code == 403
    assert ScheduleBlock.objects.filter(pk=clinic["block"].pk).exists()


def test_the_front_desk_blocks_out_time_but_not_clinicians(client, sign_in, clinic):
    url = reverse("scheduling:setup_exceptions")
    sign_in(client, clinic["clerk"])
    assert client.get(url).status_code == 200
    sign_in(client, UserFactory(username="nurse5", roles=[Role.NURSE]))
    assert client.get(url).status_code == 403


def test_the_board_links_to_set_up_only_for_those_allowed(client, sign_in, clinic):
    board = reverse("scheduling:day_board")
    sign_in(client, clinic["clerk"])
    page = client.get(board).content.decode()
    assert reverse("scheduling:setup_exceptions") in page
    assert f'href="{reverse("scheduling:setup")}"' not in page
    sign_in(client, UserFactory(username="admin8", roles=[Role.ADMIN]))
    page = client.get(board).content.decode()
    assert f'href="{reverse("scheduling:setup")}"' in page
    sign_in(client, UserFactory(username="nurse6", roles=[Role.NURSE]))
    page = client.get(board).content.decode()
    assert reverse("scheduling:setup_exceptions") not in page


# --- The overview ------------------------------------------------------------------------------


def test_the_overview_says_what_to_do_first_when_empty(admin):
    page = admin.get(reverse("scheduling:setup")).content.decode()
    assert "Add your first location" in page
    assert "Add your first provider" in page
    assert "Add your first appointment type" in page


def test_the_overview_lists_locations_providers_and_types(admin, clinic):
    LocationHours.objects.create(
        location=clinic["location"], weekday=0, opens=time(8), closes=time(17)
    )
    page = admin.get(reverse("scheduling:setup")).content.decode()
    assert "Lakeside Main" in page and "Room 1" in page
    assert "Dr. Ada Quill" in page and "3.0 h a week" in page
    assert "Follow-up" in page and "30 min" in page
    assert f"Mon 08:00{DASH}17:00" in page


def test_the_overview_counts_only_the_blocks_valid_today(clinic):
    today = timezone.localdate()
    block = clinic["block"]  # Monday 09:00-12:00, ongoing
    block.valid_until = today + timedelta(days=13)
    block.save()
    # Its replacement from the day after, longer; and a Tuesday block starting next month.
    make_block(
        clinic["provider"],
        clinic["location"],
        weekdays=[0],
        starts_at=time(8),
        ends_at=time(13),
        valid_from=today + timedelta(days=14),
    )
    make_block(
        clinic["provider"],
        clinic["location"],
        weekdays=[1],
        starts_at=time(9),
        ends_at=time(17),
        valid_from=today + timedelta(days=30),
    )
    summary = template_summary(clinic["provider"], today)
    assert summary == {"days": "Mon", "hours": 3.0, "locations": 1}
    # From the day the replacement starts, it alone counts.
    later = template_summary(clinic["provider"], today + timedelta(days=14))
    assert later["hours"] == 5.0


def test_hours_run_together_when_days_share_them():
    rows = [
        LocationHours(weekday=day, opens=time(8), closes=time(17)) for day in (0, 1, 2, 3, 4)
    ] + [LocationHours(weekday=5, opens=time(9), closes=time(12))]
    assert hours_summary(rows) == [f"Mon{DASH}Fri 08:00{DASH}17:00", f"Sat 09:00{DASH}12:00"]


def test_an_exception_reads_as_whole_days_or_times():
    day = date(2026, 12, 2)
    assert period_text(wall_clock(day, time(0)), wall_clock(day + timedelta(days=1), time(0))) == (
        "Wed 2 Dec 2026"
    )
    assert period_text(wall_clock(day, time(0)), wall_clock(day + timedelta(days=3), time(0))) == (
        "Wed 2 Dec to Fri 4 Dec 2026"
    )
    assert period_text(wall_clock(day, time(13)), wall_clock(day, time(17))) == (
        "Wed 2 Dec 2026, 13:00 to 17:00"
    )


# --- Locations ---------------------------------------------------------------------------------

LOCATION = {
    "name": "Northside",
    "address_line": "9 North Rd",
    "city": "Springfield",
    "state": "il",
    "postal_code": "62702",
    "phone": "217-555-0199",
}


def test_adding_a_location_opens_its_page(admin):
    response = admin.post(reverse("scheduling:setup_location_add"), LOCATION)
    location = Location.objects.get(name="Northside")
    assert response["Location"] == reverse(
        "scheduling:setup_location", kwargs={"location_id": location.pk}
    )
    assert location.state == "IL"
    assert AuditEvent.objects.filter(action="scheduling.location_created").count() == 1


def test_a_duplicate_location_name_is_shown_on_the_name(admin, clinic):
    response = admin.post(
        reverse("scheduling:setup_location_add"), LOCATION | {"name": "lakeside main"}
    )
    assert response.status_code == 200
    assert "A location with this name already exists." in str(
        response.context["form"]["name"].errors
    )
    assert Location.objects.count() == 1


def test_a_location_needs_its_address(admin):
    response = admin.post(reverse("scheduling:setup_location_add"), LOCATION | {"city": ""})
    assert "city" in response.context["form"].errors
    assert not Location.objects.exists()


def test_editing_a_location_is_audited_with_what_changed(admin, clinic):
    url = reverse("scheduling:setup_location", kwargs={"location_id": clinic["location"].pk})
    admin.post(url, LOCATION | {"name": "Lakeside", "is_active": "on"})
    location = Location.objects.get(pk=clinic["location"].pk)
    assert location.name == "Lakeside" and location.is_active
    event = AuditEvent.objects.get(action="scheduling.location_updated")
    assert "name" in event.changed_fields


def test_opening_hours_are_saved_and_closed_days_left_out(admin, clinic):
    url = reverse("scheduling:setup_location_hours", kwargs={"location_id": clinic["location"].pk})
    hours = {f"opens_{day}": "08:00" for day in range(5)} | {
        f"closes_{day}": "17:30" for day in range(5)
    }
    response = admin.post(url, hours)
    assert response.status_code == 302
    rows = list(clinic["location"].hours.order_by("weekday"))
    assert [row.weekday for row in rows] == [0, 1, 2, 3, 4]
    assert rows[0].closes == time(17, 30)
    assert AuditEvent.objects.filter(action="scheduling.location_hours_set").exists()


@pytest.mark.parametrize(
    ("hours", "field"),
    [
        ({"opens_0": "17:00", "closes_0": "08:00"}, "closes_0"),
        ({"opens_2": "08:00"}, "closes_2"),
        ({"opens_3": "8 in the morning", "closes_3": "17:00"}, "opens_3"),
    ],
)
def test_bad_opening_hours_change_nothing(admin, clinic, hours, field):
    LocationHours.objects.create(
        location=clinic["location"], weekday=1, opens=time(8), closes=time(17)
    )
    url = reverse("scheduling:setup_location_hours", kwargs={"location_id": clinic["location"].pk})
    response = admin.post(url, hours)
    assert response.status_code == 200
    assert field in response.context["hours_form"].errors
    assert list(clinic["location"].hours.values_list("weekday", flat=True)) == [1]


def test_rooms_are_added_and_names_stay_unique(admin, clinic):
    url = reverse("scheduling:setup_resource_add", kwargs={"location_id": clinic["location"].pk})
    assert admin.post(url, {"name": "ECG cart", "kind": "equipment"}).status_code == 302
    response = admin.post(url, {"name": "room 1", "kind": "room"})
    assert response.status_code == 200
    assert response.context["resource_form"].errors["name"]
    assert clinic["location"].resources.count() == 2


def test_equipment_a_type_needs_cannot_be_taken_out_of_use(admin, clinic):
    ecg = make_equipment(clinic["location"], "ECG")
    clinic["type"].equipment.set([ecg])
    url = reverse("scheduling:setup_resource", kwargs={"resource_id": ecg.pk})
    response = admin.post(url, {"name": "ECG"})
    assert "Follow-up" in str(response.context["form"].errors["is_active"])
    ecg.refresh_from_db()
    assert ecg.is_active


# --- Providers ---------------------------------------------------------------------------------


def test_a_new_provider_is_picked_from_clinicians_without_a_profile(admin, clinic):
    newcomer = UserFactory(username="drnew", full_name="Dr. Sam New", roles=[Role.PHYSICIAN])
    UserFactory(username="biller2", full_name="Bo Biller", roles=[Role.BILLER])
    page = admin.get(reverse("scheduling:setup_provider_add"))
    choices = {user.username for user in page.context["form"].fields["user"].queryset}
    assert choices == {"drnew"}
    response = admin.post(
        reverse("scheduling:setup_provider_add"),
        {
            "user": newcomer.pk,
            "credentials": "DO",
            "specialty": "Family medicine",
            "npi": valid_npi(4242),
            "taxonomy_code": "207q00000x",
        },
    )
    provider = Provider.objects.get(user=newcomer)
    assert response["Location"] == reverse(
        "scheduling:setup_provider", kwargs={"provider_id": provider.pk}
    )
    assert provider.taxonomy_code == "207Q00000X"


def test_a_bad_npi_is_shown_on_the_field_and_saves_nothing(admin, clinic):
    url = reverse("scheduling:setup_provider", kwargs={"provider_id": clinic["provider"].pk})
    before = clinic["provider"].npi
    response = admin.post(
        url,
        {
            "credentials": "MD",
            "specialty": "Pediatrics",
            "npi": "1234567890",
            "taxonomy_code": "207Q00000X",
        },
    )
    assert response.status_code == 200
    assert "check digit" in str(response.context["form"].errors["npi"])
    clinic["provider"].refresh_from_db()
    assert clinic["provider"].npi == before and clinic["provider"].specialty == "Family medicine"


def test_a_provider_is_taken_off_and_put_back(admin, clinic):
    url = reverse("scheduling:setup_provider_active", kwargs={"provider_id": clinic["provider"].pk})
    admin.post(url, {"active": "0"})
    clinic["provider"].refresh_from_db()
    assert not clinic["provider"].is_active
    admin.post(url, {"active": "1"})
    clinic["provider"].refresh_from_db()
    assert clinic["provider"].is_active
    admin.post(url, {"active": "maybe"})
    clinic["provider"].refresh_from_db()
    assert clinic["provider"].is_active


def test_the_provider_page_shows_the_week_with_types(admin, clinic):
    clinic["block"].appointment_types.set([clinic["type"]])
    url = reverse("scheduling:setup_provider", kwargs={"provider_id": clinic["provider"].pk})
    page = admin.get(url)
    monday = page.context["template_days"][0]
    assert monday.blocks == [clinic["block"]]
    assert all(not day.blocks for day in page.context["template_days"][1:])
    assert f"09:00{DASH}12:00" in page.content.decode()


# --- Blocks ------------------------------------------------------------------------------------


def block_data(clinic, **overrides) -> dict:
    return {
        "location": clinic["location"].pk,
        "weekday": 1,
        "starts_at": "13:00",
        "ends_at": "17:00",
        "valid_from": timezone.localdate().isoformat(),
    } | overrides


def test_a_block_is_added_with_its_types(admin, clinic):
    url = reverse("scheduling:setup_block_add", kwargs={"provider_id": clinic["provider"].pk})
    response = admin.post(url, block_data(clinic, appointment_types=[clinic["type"].pk]))
    assert response.status_code == 302
    block = ScheduleBlock.objects.get(provider=clinic["provider"], weekday=1)
    assert list(block.appointment_types.all()) == [clinic["type"]]
    assert AuditEvent.objects.filter(action="scheduling.block_created").count() == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"starts_at": "17:00", "ends_at": "13:00"}, "ends_at"),
        ({"starts_at": ""}, "starts_at"),
        ({"weekday": "9"}, "weekday"),
        ({"valid_until": "2000-01-01"}, "valid_until"),
    ],
)
def test_a_bad_block_shows_field_errors_and_saves_nothing(admin, clinic, overrides, field):
    url = reverse("scheduling:setup_block_add", kwargs={"provider_id": clinic["provider"].pk})
    response = admin.post(url, block_data(clinic, **overrides))
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert ScheduleBlock.objects.count() == 1


def test_an_overlapping_block_is_refused(admin, clinic):
    url = reverse("scheduling:setup_block_add", kwargs={"provider_id": clinic["provider"].pk})
    other = make_location("Northside")
    response = admin.post(
        url, block_data(clinic, weekday=0, starts_at="11:00", ends_at="14:00", location=other.pk)
    )
    assert response.status_code == 200
    assert "overlaps the 09:00-12:00 block at Lakeside Main" in str(
        response.context["form"].non_field_errors()
    )
    assert ScheduleBlock.objects.count() == 1


def test_shrinking_a_block_lists_the_booking_and_saves_only_when_confirmed(admin, clinic, booked):
    url = reverse("scheduling:setup_block", kwargs={"block_id": clinic["block"].pk})
    data = block_data(clinic, weekday=0, starts_at="09:00", ends_at="10:00")
    response = admin.post(url, data)
    assert response.status_code == 200
    assert [appointment.pk for appointment in response.context["affected"]] == [booked.pk]
    page = response.content.decode()
    assert "Holt, Mira" in page and "Save anyway" in page
    clinic["block"].refresh_from_db()
    assert clinic["block"].ends_at == time(12)  # nothing changed yet
    viewed = AuditEvent.objects.get(action="scheduling.conflicts_viewed")
    assert viewed.actor_username == "admin7"

    response = admin.post(url, data | {"confirmed": str(booked.pk)})
    assert response.status_code == 302
    clinic["block"].refresh_from_db()
    assert clinic["block"].ends_at == time(10)
    event = AuditEvent.objects.get(action="scheduling.block_updated")
    assert "orphaned_appointments" in event.changed_fields


def test_a_confirmation_covers_only_the_appointments_it_listed(admin, clinic, booked):
    url = reverse("scheduling:setup_block", kwargs={"block_id": clinic["block"].pk})
    data = block_data(clinic, weekday=0, starts_at="09:00", ends_at="10:00")
    response = admin.post(url, data | {"confirmed": "0190f2d1-0000-7000-8000-000000000000"})
    assert response.status_code == 200 and response.context["affected"]
    clinic["block"].refresh_from_db()
    assert clinic["block"].ends_at == time(12)


def test_removing_a_block_with_a_booking_asks_first(admin, clinic, booked):
    url = reverse("scheduling:setup_block_delete", kwargs={"block_id": clinic["block"].pk})
    response = admin.post(url)
    assert response.status_code == 200
    assert "Remove anyway" in response.content.decode()
    assert ScheduleBlock.objects.filter(pk=clinic["block"].pk).exists()
    response = admin.post(url, {"confirmed": str(booked.pk)})
    assert response.status_code == 302
    assert not ScheduleBlock.objects.filter(pk=clinic["block"].pk).exists()


def test_editing_a_block_keeps_its_retired_type_and_closed_location(admin, clinic):
    block = clinic["block"]
    block.appointment_types.set([clinic["type"]])
    AppointmentType.objects.filter(pk=clinic["type"].pk).update(is_active=False)
    Location.objects.filter(pk=clinic["location"].pk).update(is_active=False)
    url = reverse("scheduling:setup_block", kwargs={"block_id": block.pk})

    form = admin.get(url).context["form"]
    assert list(form.fields["appointment_types"].queryset) == [clinic["type"]]
    assert list(form.fields["location"].queryset) == [clinic["location"]]
    page = admin.get(url).content.decode()
    assert "Follow-up (retired)" in page and "Lakeside Main (closed)" in page

    # End-dating it keeps what it allowed; it does not become "any type".
    until = timezone.localdate() + timedelta(days=7)
    data = block_data(
        clinic,
        weekday=0,
        starts_at="09:00",
        ends_at="12:00",
        valid_from=block.valid_from.isoformat(),
        valid_until=until.isoformat(),
        appointment_types=[clinic["type"].pk],
    )
    assert admin.post(url, data).status_code == 302
    block.refresh_from_db()
    assert block.valid_until == until
    assert list(block.appointment_types.all()) == [clinic["type"]]


def test_a_retired_type_or_closed_location_is_not_offered_for_a_new_block(admin, clinic):
    retired = make_type("Old visit", is_active=False)
    closed = make_location("Old site", is_active=False)
    url = reverse("scheduling:setup_block_add", kwargs={"provider_id": clinic["provider"].pk})
    form = admin.get(url).context["form"]
    assert retired not in form.fields["appointment_types"].queryset
    assert closed not in form.fields["location"].queryset
    response = admin.post(url, block_data(clinic, appointment_types=[retired.pk]))
    assert response.status_code == 200 and "appointment_types" in response.context["form"].errors
    response = admin.post(url, block_data(clinic, location=closed.pk))
    assert response.status_code == 200 and "location" in response.context["form"].errors
    assert ScheduleBlock.objects.count() == 1


def test_a_free_block_is_removed_at_once(admin, clinic):
    url = reverse("scheduling:setup_block_delete", kwargs={"block_id": clinic["block"].pk})
    assert admin.post(url).status_code == 302
    assert not ScheduleBlock.objects.exists()


# --- Appointment types ---------------------------------------------------------------------------

TYPE = {
    "name": "Ultrasound",
    "duration_minutes": "45",
    "buffer_minutes": "10",
    "colour": "#12B76A",
    "needs_room": "on",
}


def test_a_type_is_added_with_its_equipment(admin, clinic):
    probe = make_equipment(clinic["location"], "Ultrasound probe")
    response = admin.post(reverse("scheduling:setup_type_add"), TYPE | {"equipment": [probe.pk]})
    assert response.status_code == 302
    created = AppointmentType.objects.get(name="Ultrasound")
    assert created.colour == "#12b76a" and list(created.equipment.all()) == [probe]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"duration_minutes": "0"}, "duration_minutes"),
        ({"duration_minutes": ""}, "duration_minutes"),
        ({"buffer_minutes": "500"}, "buffer_minutes"),
        ({"colour": "teal"}, "colour"),
        ({"name": "follow-up"}, "name"),
    ],
)
def test_a_bad_type_shows_field_errors_and_saves_nothing(admin, clinic, overrides, field):
    response = admin.post(reverse("scheduling:setup_type_add"), TYPE | overrides)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert AppointmentType.objects.count() == 1


def test_editing_a_type_keeps_equipment_taken_out_of_use(admin, clinic):
    probe = make_equipment(clinic["location"], "Ultrasound probe")
    spare = make_equipment(clinic["location"], "Spare probe", is_active=False)
    clinic["type"].equipment.set([probe])
    Resource.objects.filter(pk=probe.pk).update(is_active=False)
    url = reverse("scheduling:setup_type", kwargs={"appointment_type_id": clinic["type"].pk})

    response = admin.get(url)
    assert list(response.context["form"].fields["equipment"].queryset) == [probe]
    assert "Ultrasound probe · Lakeside Main (not in use)" in response.content.decode()

    data = TYPE | {"name": "Follow-up", "is_active": "on", "equipment": [probe.pk]}
    assert admin.post(url, data).status_code == 302
    assert list(clinic["type"].equipment.all()) == [probe]
    # Equipment out of use that the type did not need is still refused.
    response = admin.post(url, data | {"equipment": [probe.pk, spare.pk]})
    assert response.status_code == 200 and "equipment" in response.context["form"].errors


def test_a_type_is_edited_and_retired(admin, clinic):
    url = reverse("scheduling:setup_type", kwargs={"appointment_type_id": clinic["type"].pk})
    response = admin.post(url, TYPE | {"name": "Follow-up", "duration_minutes": "20"})
    assert response.status_code == 302
    clinic["type"].refresh_from_db()
    assert clinic["type"].duration_minutes == 20 and not clinic["type"].is_active
    event = AuditEvent.objects.get(action="scheduling.appointment_type_updated")
    assert {"duration_minutes", "is_active"} <= set(event.changed_fields)


# --- Time off, holidays, closures ----------------------------------------------------------------


def time_off(clinic, day: date, **overrides) -> dict:
    return {
        "kind": "time_off",
        "provider": clinic["provider"].pk,
        "starts_on": day.isoformat(),
        "ends_on": day.isoformat(),
        "reason": "Conference",
    } | overrides


def test_the_front_desk_adds_time_off_on_a_free_day(desk, clinic):
    day = next_monday() + timedelta(days=1)
    response = desk.post(reverse("scheduling:setup_exceptions"), time_off(clinic, day))
    assert response.status_code == 302
    exception = ScheduleException.objects.get()
    assert exception.provider == clinic["provider"]
    assert exception.starts_at == wall_clock(day, time(0))
    assert exception.ends_at == wall_clock(day + timedelta(days=1), time(0))
    assert AuditEvent.objects.filter(action="scheduling.exception_created").exists()


def test_time_off_over_a_booking_lists_it_then_confirms(desk, clinic, booked):
    url = reverse("scheduling:setup_exceptions")
    response = desk.post(url, time_off(clinic, next_monday()))
    assert response.status_code == 200
    assert [appointment.pk for appointment in response.context["affected"]] == [booked.pk]
    assert "Holt, Mira" in response.content.decode()
    assert not ScheduleException.objects.exists()
    response = desk.post(url, time_off(clinic, next_monday()) | {"confirmed": str(booked.pk)})
    assert response.status_code == 302
    assert ScheduleException.objects.count() == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"provider": ""}, "provider"),
        ({"kind": "closure"}, "location"),
        ({"kind": "vacation"}, "kind"),
        ({"starts_on": ""}, "starts_on"),
        ({"ends_time": "08:00", "starts_time": "09:00"}, "ends_on"),
    ],
)
def test_bad_time_off_shows_field_errors_and_saves_nothing(desk, clinic, overrides, field):
    day = next_monday() + timedelta(days=1)
    response = desk.post(reverse("scheduling:setup_exceptions"), time_off(clinic, day, **overrides))
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not ScheduleException.objects.exists()


def test_a_holiday_covers_the_whole_practice_whatever_was_picked(desk, clinic):
    day = next_monday() + timedelta(days=2)
    desk.post(reverse("scheduling:setup_exceptions"), time_off(clinic, day, kind="holiday"))
    holiday = ScheduleException.objects.get()
    assert holiday.kind == "holiday" and holiday.provider is None and holiday.location is None


def test_upcoming_exceptions_are_listed_and_removed_but_past_ones_kept(desk, clinic):
    now = timezone.now()
    upcoming = make_exception(
        "closure", now + timedelta(days=3), now + timedelta(days=4), location=clinic["location"]
    )
    past = make_exception("holiday", now - timedelta(days=4), now - timedelta(days=3))
    page = desk.get(reverse("scheduling:setup_exceptions"))
    assert list(page.context["upcoming"]) == [upcoming]
    desk.post(reverse("scheduling:setup_exception_delete", kwargs={"exception_id": upcoming.pk}))
    desk.post(reverse("scheduling:setup_exception_delete", kwargs={"exception_id": past.pk}))
    assert list(ScheduleException.objects.all()) == [past]
    assert AuditEvent.objects.filter(action="scheduling.exception_deleted").count() == 1


def test_unknown_ids_are_not_found(admin):
    missing = "0190f2d1-0000-7000-8000-000000000000"
    for name, key in [
        ("scheduling:setup_location", "location_id"),
        ("scheduling:setup_provider", "provider_id"),
        ("scheduling:setup_block", "block_id"),
        ("scheduling:setup_type", "appointment_type_id"),
        ("scheduling:setup_resource", "resource_id"),
    ]:
        assert admin.get(reverse(name, kwargs={key: missing})).status_code == 404


def test_removing_running_time_off_ends_it_now_and_says_so(desk, clinic):
    now = timezone.now()
    running = make_exception(
        "time_off", now - timedelta(hours=1), now + timedelta(days=1), provider=clinic["provider"]
    )
    page = desk.get(reverse("scheduling:setup_exceptions")).content.decode()
    assert "End now: reopen the rest" in page and "Remove: reopen this time" not in page

    url = reverse("scheduling:setup_exception_delete", kwargs={"exception_id": running.pk})
    response = desk.post(url, follow=True)

    assert "Ended now: the rest of that time can be booked again" in response.content.decode()
    running.refresh_from_db()
    assert running.starts_at == now - timedelta(hours=1) and running.ends_at <= timezone.now()
    assert AuditEvent.objects.filter(action="scheduling.exception_ended").count() == 1
    assert not AuditEvent.objects.filter(action="scheduling.exception_deleted").exists()
