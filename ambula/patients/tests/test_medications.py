import re
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils.timezone import localdate

from ambula.accounts.roles import Role
from ambula.accounts.tests.clock import frozen_clock
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.core.errors import AccessDenied
from ambula.patients import medications as medication_module
from ambula.patients.medications import (
    medication_add,
    medication_stop,
    medication_strike,
    medications_for_chart,
)
from ambula.patients.models import Medication
from ambula.patients.tests.factories import registered_patient

pytestmark = pytest.mark.django_db


def add(nurse, patient, name="Metformin", **details):
    return medication_add(actor=nurse, patient=patient, name=name, route="oral", **details)


def error_code(caught, field):
    return caught.value.error_dict[field][0].code


# --- Services -----------------------------------------------------------------------------------


def test_adding_a_medication_is_audited_with_its_values_encrypted(nurse, patient):
    medication = add(
        nurse,
        patient,
        name=" Metformin ",
        dose=" 500 mg ",
        frequency="twice daily",
        started_on=date(2020, 1, 15),
        note="with meals",
    )
    assert (medication.name, medication.dose, medication.status) == (
        "Metformin",
        "500 mg",
        "active",
    )
    event = AuditEvent.objects.get(action="patients.medication_added")
    assert (event.patient_id, event.category, event.kind) == (
        patient.pk,
        "medication list",
        "create",
    )
    assert event.target_id == str(medication.pk)
    assert "Metformin" not in event.changes
    assert changes_of(event) == {"name": "Metformin", "dose": "500 mg", "route": "oral"}


def test_a_medication_cannot_start_in_the_future(nurse, patient):
    with pytest.raises(ValidationError) as caught:
        add(nurse, patient, started_on=localdate() + timedelta(days=1))
    assert error_code(caught, "started_on") == "future"
    assert not Medication.objects.exists()
    assert not AuditEvent.objects.filter(action="patients.medication_added").exists()


def test_a_medication_cannot_start_before_the_patient_was_born(nurse, patient):
    with pytest.raises(ValidationError) as caught:
        add(nurse, patient, started_on=date(1969, 12, 31))
    assert error_code(caught, "started_on") == "before_birth"


@pytest.mark.parametrize(
    "details, field",
    [
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"dose": "9" * 101}, "dose"),
    ],
)
def test_bad_values_are_refused_with_a_field_error(nurse, patient, details, field):
    with pytest.raises(ValidationError) as caught:
        add(nurse, patient, **details)
    assert field in caught.value.error_dict
    assert not Medication.objects.exists()


def test_an_unknown_route_is_refused(nurse, patient):
    with pytest.raises(ValidationError) as caught:
        medication_add(actor=nurse, patient=patient, name="Insulin", route="by carrier pigeon")
    assert "route" in caught.value.error_dict


def test_stopping_defaults_to_today_and_is_audited(nurse, patient):
    medication = add(nurse, patient, started_on=date(2020, 1, 15))
    stopped = medication_stop(actor=nurse, medication=medication)
    assert (stopped.status, stopped.stopped_on) == ("stopped", localdate())
    event = AuditEvent.objects.get(action="patients.medication_stopped")
    assert (event.kind, event.patient_id) == ("update", patient.pk)
    assert changes_of(event) == {
        "status": {"old": "active", "new": "stopped"},
        "stopped_on": {"old": None, "new": localdate().isoformat()},
    }


def test_today_is_the_practices_today(nurse, patient, settings, monkeypatch):
    settings.TIME_ZONE = "America/Chicago"
    # 03:00 on 10 March in UTC is still the evening of 9 March in Chicago.
    frozen_clock(
        monkeypatch, modules=[medication_module], start=datetime(2024, 3, 10, 3, 0, tzinfo=UTC)
    )
    with pytest.raises(ValidationError):
        add(nurse, patient, started_on=date(2024, 3, 10))
    medication = add(nurse, patient, started_on=date(2024, 3, 9))
    assert medication_stop(actor=nurse, medication=medication).stopped_on == date(2024, 3, 9)


def test_a_medication_cannot_stop_before_it_started(nurse, patient):
    medication = add(nurse, patient, started_on=date(2022, 6, 1))
    with pytest.raises(ValidationError) as caught:
        medication_stop(actor=nurse, medication=medication, stopped_on=date(2022, 5, 31))
    assert error_code(caught, "stopped_on") == "dates_out_of_order"
    medication.refresh_from_db()
    assert (medication.status, medication.stopped_on) == ("active", None)
    # The same day it started is fine: a one-day course.
    medication_stop(actor=nurse, medication=medication, stopped_on=date(2022, 6, 1))


def test_a_medication_cannot_stop_in_the_future(nurse, patient):
    medication = add(nurse, patient)
    with pytest.raises(ValidationError) as caught:
        medication_stop(
            actor=nurse, medication=medication, stopped_on=localdate() + timedelta(days=1)
        )
    assert error_code(caught, "stopped_on") == "future"


def test_only_an_active_medication_can_be_stopped(nurse, patient):
    medication = add(nurse, patient)
    medication_stop(actor=nurse, medication=medication)
    with pytest.raises(ValidationError) as caught:
        medication_stop(actor=nurse, medication=medication)
    assert caught.value.code == "not_active"
    struck = medication_strike(actor=nurse, medication=add(nurse, patient, name="Aspirin"))
    with pytest.raises(ValidationError):
        medication_stop(actor=nurse, medication=struck)
    assert AuditEvent.objects.filter(action="patients.medication_stopped").count() == 1


def test_striking_hides_the_medication_from_the_chart_and_is_audited(nurse, patient):
    medication = add(nurse, patient)
    medication_stop(actor=nurse, medication=medication)
    medication_strike(actor=nurse, medication=medication)
    assert medications_for_chart(actor=nurse, patient=patient) == []
    assert Medication.objects.get().status == "entered_in_error"  # kept in the record
    event = AuditEvent.objects.get(action="patients.medication_struck")
    assert changes_of(event) == {"status": {"old": "stopped", "new": "entered_in_error"}}
    with pytest.raises(ValidationError) as caught:
        medication_strike(actor=nurse, medication=medication)
    assert caught.value.code == "already_struck"


def test_the_chart_lists_active_medications_first_then_the_latest_stopped(nurse, patient):
    lisinopril = add(nurse, patient, name="lisinopril", started_on=date(2015, 1, 1))
    add(nurse, patient, name="Atorvastatin")
    amoxicillin = add(nurse, patient, name="Amoxicillin", started_on=date(2019, 1, 1))
    prednisone = add(nurse, patient, name="Prednisone", started_on=date(2019, 1, 1))
    medication_strike(actor=nurse, medication=add(nurse, patient, name="Aspirin"))
    medication_stop(actor=nurse, medication=amoxicillin, stopped_on=date(2019, 1, 10))
    medication_stop(actor=nurse, medication=prednisone, stopped_on=date(2020, 2, 1))
    listed = medications_for_chart(actor=nurse, patient=patient)
    assert [medication.name for medication in listed] == [
        "Atorvastatin",
        "lisinopril",
        "Prednisone",
        "Amoxicillin",
    ]
    assert listed[1] == lisinopril


def test_reading_the_list_is_audited(nurse, patient):
    medications_for_chart(actor=nurse, patient=patient)
    event = AuditEvent.objects.get(action="patients.medications_viewed")
    assert (event.patient_id, event.actor, event.kind) == (patient.pk, nurse, "read")


@pytest.mark.parametrize("role", [Role.FRONT_DESK, Role.BILLER, Role.ADMIN, Role.PRIVACY_OFFICER])
def test_non_clinical_roles_can_neither_read_nor_change_the_list(nurse, patient, role):
    medication = add(nurse, patient)
    user = UserFactory(username="someone", roles=[role])
    with pytest.raises(AccessDenied):
        add(user, patient, name="Aspirin")
    with pytest.raises(AccessDenied):
        medication_stop(actor=user, medication=medication)
    with pytest.raises(AccessDenied):
        medication_strike(actor=user, medication=medication)
    with pytest.raises(AccessDenied):
        medications_for_chart(actor=user, patient=patient)
    assert list(Medication.objects.values_list("name", "status")) == [("Metformin", "active")]


# --- The chart ----------------------------------------------------------------------------------


def chart_url(patient):
    return f"/patients/{patient.pk}/"


def test_the_chart_shows_the_section_to_clinicians(client, sign_in, practice, nurse, patient):
    add(nurse, patient, name="Metformin", dose="500 mg", started_on=date(2020, 1, 15))
    sign_in(client, nurse)
    html = client.get(chart_url(patient)).content.decode()
    assert 'id="medications-heading"' in html
    assert 'href="#medications-heading"' in html
    assert "Metformin" in html and "500 mg" in html and "2020-01-15" in html
    assert f"/patients/{patient.pk}/medications/" in html  # the add form


def test_the_chart_says_what_to_do_when_there_are_none(client, sign_in, practice, nurse, patient):
    sign_in(client, nurse)
    html = client.get(chart_url(patient)).content.decode()
    assert "No medications recorded" in html


@pytest.mark.parametrize("role", [Role.FRONT_DESK, Role.BILLER])
def test_the_section_is_absent_for_non_clinical_roles(
    client, sign_in, practice, nurse, patient, role
):
    add(nurse, patient, name="Sertraline")
    sign_in(client, UserFactory(username="other", roles=[role]))
    response = client.get(chart_url(patient))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Sertraline" not in html
    assert "medications-heading" not in html
    assert not AuditEvent.objects.filter(action="patients.medications_viewed").exists()


def test_adding_through_the_chart(client, sign_in, practice, nurse, patient):
    sign_in(client, nurse)
    response = client.post(
        f"/patients/{patient.pk}/medications/",
        {"name": "Albuterol", "dose": "90 mcg", "route": "inhaled", "frequency": "as needed"},
    )
    assert response.status_code == 302
    assert response["Location"] == chart_url(patient)
    medication = patient.medications.get()
    assert (medication.name, medication.route, medication.started_on) == (
        "Albuterol",
        "inhaled",
        None,
    )


def test_a_failed_add_shows_the_chart_with_the_errors_in_the_medication_form(
    client, sign_in, practice, nurse, patient
):
    sign_in(client, nurse)
    bad = client.post(f"/patients/{patient.pk}/medications/", {"name": "", "route": "sideways"})
    assert bad.status_code == 200
    assert set(bad.context["medication_form"].errors) == {"name", "route"}
    assert not bad.context["history_form"].errors
    assert not bad.context["allergy_form"].errors

    future = (localdate() + timedelta(days=3)).isoformat()
    bad = client.post(
        f"/patients/{patient.pk}/medications/",
        {"name": "Warfarin", "route": "oral", "started_on": future},
    )
    assert bad.status_code == 200
    form = bad.context["medication_form"]
    assert form.errors == {"started_on": ["The start date is in the future."]}
    html = bad.content.decode()
    assert "The start date is in the future." in html
    assert 'value="Warfarin"' in html  # what was typed is kept
    assert not patient.medications.exists()


def test_stopping_and_striking_through_the_chart(client, sign_in, practice, nurse, patient):
    medication = add(nurse, patient, started_on=date(2021, 3, 1))
    sign_in(client, nurse)
    base = f"/patients/{patient.pk}/medications/{medication.pk}"

    early = client.post(f"{base}/stop/", {"stopped_on": "2021-02-28"}, follow=True)
    assert "cannot stop before it started" in early.content.decode()
    medication.refresh_from_db()
    assert medication.status == "active"

    malformed = client.post(f"{base}/stop/", {"stopped_on": "31/31/2021"}, follow=True)
    assert "Enter a valid date." in malformed.content.decode()

    response = client.post(f"{base}/stop/", {"stopped_on": "2021-09-30"})
    assert response.status_code == 302
    medication.refresh_from_db()
    assert (medication.status, medication.stopped_on) == ("stopped", date(2021, 9, 30))

    response = client.post(f"{base}/entered-in-error/")
    assert response.status_code == 302
    medication.refresh_from_db()
    assert medication.status == "entered_in_error"
    chart = client.get(chart_url(patient))
    assert chart.context["medications"] == []
    assert "No medications recorded" in chart.content.decode()


def test_another_patients_medication_is_not_found(client, sign_in, practice, nurse, patient):
    someone_else = registered_patient(actor=UserFactory(username="desk9", roles=[Role.FRONT_DESK]))
    medication = add(nurse, someone_else)
    sign_in(client, nurse)
    response = client.post(f"/patients/{patient.pk}/medications/{medication.pk}/stop/")
    assert response.status_code == 404
    medication.refresh_from_db()
    assert medication.status == "active"


@pytest.mark.parametrize("role", [Role.FRONT_DESK, Role.BILLER])
def test_non_clinical_roles_cannot_post(client, sign_in, practice, nurse, patient, role):
    medication = add(nurse, patient)
    sign_in(client, UserFactory(username="other", roles=[role]))
    base = f"/patients/{patient.pk}/medications/"
    assert client.post(base, {"name": "Aspirin", "route": "oral"}).status_code == 403
    assert client.post(f"{base}{medication.pk}/stop/").status_code == 403
    assert client.post(f"{base}{medication.pk}/entered-in-error/").status_code == 403
    assert list(Medication.objects.values_list("name", "status")) == [("Metformin", "active")]
    assert AuditEvent.objects.filter(action="auth.access_denied").count() == 3


def test_the_section_only_takes_posts(client, sign_in, practice, nurse, patient):
    sign_in(client, nurse)
    assert client.get(f"/patients/{patient.pk}/medications/").status_code == 405


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_nurse_keeps_the_list_in_a_browser(page, live_server, practice):
    from playwright.sync_api import expect

    from ambula.accounts.tests.factories import TEST_PASSWORD

    nurse = UserFactory(username="nurse2", roles=[Role.NURSE])
    patient = registered_patient(
        actor=UserFactory(username="desk2", roles=[Role.FRONT_DESK]),
        date_of_birth=date(1970, 5, 1),
    )
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(nurse.username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/patients/{patient.pk}/")

    section = page.get_by_role("region", name="Medications")
    expect(section).to_contain_text("No medications recorded")
    section.get_by_label("Medication").fill("Metformin")
    section.get_by_label("Dose").fill("500 mg")
    section.get_by_label("How often").fill("twice daily")
    section.get_by_label("Started").fill("2099-01-01")
    section.get_by_label("Started").press("Enter")  # submits, with the keyboard
    section = page.get_by_role("region", name="Medications")
    expect(section.locator(".field-error")).to_have_text("The start date is in the future.")
    expect(page).to_have_url(re.compile(r"#medications-heading$"))

    section.get_by_label("Started").fill("2020-01-15")
    section.get_by_role("button", name="Add medication").click()
    row = page.get_by_role("region", name="Medications").get_by_role(
        "row", name=re.compile("Metformin")
    )
    expect(row).to_contain_text("500 mg")
    expect(row).to_contain_text("Active")

    # The date picker itself refuses a day before the start (the service checks again).
    row.get_by_label("Date Metformin was stopped").fill("2020-01-14")
    row.get_by_role("button", name="Stop Metformin").click()
    assert not row.get_by_label("Date Metformin was stopped").evaluate(
        "input => input.validity.valid"
    )
    expect(row).to_contain_text("Active")
    row = page.get_by_role("region", name="Medications").get_by_role(
        "row", name=re.compile("Metformin")
    )
    row.get_by_label("Date Metformin was stopped").fill("2021-06-30")
    row.get_by_role("button", name="Stop Metformin").click()
    row = page.get_by_role("region", name="Medications").get_by_role(
        "row", name=re.compile("Metformin")
    )
    expect(row).to_contain_text("Stopped")
    expect(row).to_contain_text("2021-06-30")
    assert page.console_errors == []
