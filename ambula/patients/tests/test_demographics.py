import json
import re
from datetime import date, timedelta

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.utils.timezone import localdate

from ambula.accounts.roles import Role
from ambula.accounts.services import user_deactivate
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.core.errors import AccessDenied
from ambula.patients.demographics import (
    ChangedElsewhere,
    contact_add,
    contact_remove,
    patient_contacts,
    patient_restriction_set,
    patient_update,
)
from ambula.patients.models import Contact, Patient
from ambula.patients.tests.factories import JOSE, registered_patient

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk(db):
    return UserFactory(username="desk1", roles=[Role.FRONT_DESK])


@pytest.fixture
def doctor(db):
    return UserFactory(username="drgray", full_name="Dr. Meredith Gray", roles=[Role.PHYSICIAN])


@pytest.fixture
def patient(desk):
    return registered_patient(actor=desk, **JOSE)


def updates():
    return AuditEvent.objects.filter(action="patients.demographics_updated")


def field_errors(caught) -> dict[str, list[str]]:
    return {field: [e.code for e in errors] for field, errors in caught.value.error_dict.items()}


# --- The service -------------------------------------------------------------------------------


def test_each_group_of_details_is_saved_and_audited_with_old_and_new_values(desk, doctor, patient):
    saved = patient_update(
        actor=desk,
        patient=patient,
        # Name and identity
        given_name=" Joseph ",
        preferred_name="Joe",
        gender_identity="Male",
        pronouns="he/him",
        # Contact
        home_phone="217.555.0199",
        work_phone="1 (217) 555 0100",
        email="joe@example.test",
        address_line="12 Elm St",
        city="Springfield",
        state="IL",
        postal_code="62701-1234",
        # Language and background
        preferred_language="Spanish",
        interpreter_needed=True,
        race=["2106-3", "1002-5", "2106-3"],
        ethnicity=Patient.Ethnicity.HISPANIC,
        marital_status=Patient.MaritalStatus.MARRIED,
        # Communication
        reminder_channel=Patient.ReminderChannel.EMAIL,
        marketing_opt_out=False,
        # Care
        primary_care_provider=doctor,
        status=Patient.Status.INACTIVE,
    )
    saved.refresh_from_db()
    assert (saved.given_name, saved.preferred_name, saved.gender_identity) == (
        "Joseph",
        "Joe",
        "Male",
    )
    assert (saved.home_phone, saved.work_phone) == ("(217) 555-0199", "(217) 555-0100")
    assert saved.race == ["1002-5", "2106-3"]  # one order, no duplicates
    assert saved.primary_care_provider == doctor
    assert saved.status == "inactive"
    event = updates().get()
    assert (event.patient_id, event.category, event.kind, event.actor) == (
        patient.pk,
        "demographics",
        "update",
        desk,
    )
    changes = changes_of(event)
    assert changes["given_name"] == {"old": "José", "new": "Joseph"}
    assert changes["home_phone"] == {"old": "", "new": "(217) 555-0199"}
    assert changes["race"] == {"old": [], "new": ["1002-5", "2106-3"]}
    assert changes["primary_care_provider"] == {"old": None, "new": str(doctor.pk)}
    assert changes["reminder_channel"] == {"old": "sms", "new": "email"}
    assert "family_name" not in changes  # unchanged fields are not listed
    assert "Joseph" not in event.changes  # the values are encrypted at rest


def test_the_ssn_changes_but_its_values_never_reach_the_audit_trail(desk, patient):
    patient_update(actor=desk, patient=patient, ssn="123-45-6789")
    patient_update(actor=desk, patient=patient, ssn="987-65-4321")
    patient.refresh_from_db()
    assert patient.ssn == "987-65-4321"
    index = Patient._meta.get_field("ssn_index").index_for("987654321")
    assert Patient.objects.get(ssn_index=index) == patient
    for event in updates():
        text = json.dumps(changes_of(event))
        assert changes_of(event) == {"ssn": {"changed": True}}
        assert not re.search(r"\d{4}", text)
    patient_update(actor=desk, patient=patient, ssn="")
    patient.refresh_from_db()
    assert patient.ssn is None


def test_nothing_changed_records_nothing(desk, patient):
    patient_update(actor=desk, patient=patient, given_name="José", mobile_phone="217-555-0140")
    assert not updates().exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"mobile_phone": "555-01"}, "mobile_phone"),
        ({"home_phone": "call me"}, "home_phone"),
        ({"postal_code": "6270"}, "postal_code"),
        ({"given_name": ""}, "given_name"),
        ({"given_name": "x" * 101}, "given_name"),
        ({"ethnicity": "XX"}, "ethnicity"),
        ({"date_of_birth": date(1850, 1, 1)}, "date_of_birth"),
    ],
)
def test_bad_details_are_refused_and_nothing_changes(desk, patient, changes, field):
    with pytest.raises(ValidationError) as caught:
        patient_update(actor=desk, patient=patient, **changes)
    assert field in caught.value.error_dict
    assert not updates().exists()
    fresh = Patient.objects.get(pk=patient.pk)
    assert getattr(fresh, field) == getattr(patient, field)


def test_every_problem_is_reported_at_once(desk, patient):
    with pytest.raises(ValidationError) as caught:
        patient_update(
            actor=desk,
            patient=patient,
            email="nope",
            postal_code="1",
            work_phone="12",
            race=["9999-9"],
            date_of_birth=localdate() + timedelta(days=1),
        )
    assert set(caught.value.error_dict) == {
        "email",
        "postal_code",
        "work_phone",
        "race",
        "date_of_birth",
    }


def test_a_future_date_of_birth_is_refused(desk, patient):
    with pytest.raises(ValidationError) as caught:
        patient_update(actor=desk, patient=patient, date_of_birth=localdate() + timedelta(days=1))
    assert "in the future" in caught.value.error_dict["date_of_birth"][0].message


def test_deceased_needs_a_date_of_death_that_is_neither_future_nor_before_birth(desk, patient):
    cases = [
        (None, "deceased_date_required"),
        (localdate() + timedelta(days=1), "death_in_future"),
        (patient.date_of_birth - timedelta(days=1), "death_before_birth"),
    ]
    for died, code in cases:
        with pytest.raises(ValidationError) as caught:
            patient_update(actor=desk, patient=patient, status="deceased", deceased_date=died)
        assert field_errors(caught) == {"deceased_date": [code]}
    patient = patient_update(
        actor=desk, patient=patient, status="deceased", deceased_date=date(2024, 5, 1)
    )
    assert (patient.status, patient.deceased_date) == ("deceased", date(2024, 5, 1))
    # A later birth date would put the death before the birth.
    with pytest.raises(ValidationError) as caught:
        patient_update(actor=desk, patient=patient, date_of_birth=date(2024, 6, 1))
    assert field_errors(caught) == {"deceased_date": ["death_before_birth"]}


def test_a_date_of_death_needs_the_deceased_status_and_leaves_with_it(desk, patient):
    with pytest.raises(ValidationError) as caught:
        patient_update(actor=desk, patient=patient, deceased_date=date(2024, 5, 1))
    assert field_errors(caught) == {"deceased_date": ["not_deceased"]}
    patient_update(actor=desk, patient=patient, status="deceased", deceased_date=date(2024, 5, 1))
    # Recorded deceased by mistake: back to active, the date (as it was) goes too.
    patient = patient_update(
        actor=desk, patient=patient, status="active", deceased_date=date(2024, 5, 1)
    )
    assert patient.deceased_date is None
    assert changes_of(updates().latest("sequence"))["deceased_date"] == {
        "old": "2024-05-01",
        "new": None,
    }


def test_merged_is_never_set_here(desk, patient):
    with pytest.raises(ValidationError) as caught:
        patient_update(actor=desk, patient=patient, status="merged")
    assert "status" in caught.value.error_dict


@pytest.mark.parametrize(
    ("changes", "codes"),
    [
        ({"reminder_channel": "sms", "mobile_phone": ""}, ["sms_needs_phone"]),
        ({"reminder_channel": "sms", "sms_consent": False}, ["sms_needs_consent"]),
        (
            {"reminder_channel": "sms", "mobile_phone": "", "sms_consent": False},
            ["sms_needs_phone", "sms_needs_consent"],
        ),
        ({"reminder_channel": "email", "email": ""}, ["email_needs_email"]),
    ],
)
def test_a_reminder_channel_needs_its_phone_consent_or_email(desk, patient, changes, codes):
    patient = patient_update(actor=desk, patient=patient, reminder_channel="none")
    changes.setdefault("sms_consent", True)
    with pytest.raises(ValidationError) as caught:
        patient_update(actor=desk, patient=patient, **changes)
    assert field_errors(caught) == {"reminder_channel": codes}


def test_removing_what_the_channel_needs_is_refused_too(desk, patient):
    patient = patient_update(actor=desk, patient=patient, sms_consent=True, reminder_channel="sms")
    with pytest.raises(ValidationError) as caught:
        patient_update(actor=desk, patient=patient, sms_consent=False)
    assert field_errors(caught) == {"reminder_channel": ["sms_needs_consent"]}
    patient = patient_update(
        actor=desk, patient=patient, sms_consent=False, reminder_channel="none"
    )
    assert patient.reminder_channel == "none"


def test_an_unrelated_edit_is_not_blocked_by_the_default_channel(desk, patient):
    # Registered with the default (text) channel and no consent: a new address still saves.
    assert (patient.reminder_channel, patient.sms_consent) == ("sms", False)
    patient = patient_update(actor=desk, patient=patient, city="Springfield")
    assert patient.city == "Springfield"


def test_race_codes_are_checked(desk, patient):
    with pytest.raises(ValidationError) as caught:
        patient_update(actor=desk, patient=patient, race=["2106-3", "0000-0"])
    assert field_errors(caught) == {"race": ["unknown_race"]}
    assert "0000-0" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        patient_update(actor=desk, patient=patient, race=["ASKU", "2106-3"])
    assert field_errors(caught) == {"race": ["race_declined"]}
    with pytest.raises(TypeError):
        patient_update(actor=desk, patient=patient, race="2106-3")
    assert patient_update(actor=desk, patient=patient, race=["ASKU"]).race == ["ASKU"]


def test_the_primary_care_provider_is_an_active_physician(desk, doctor, patient):
    nurse = UserFactory(username="nurse1", roles=[Role.NURSE])
    with pytest.raises(ValidationError) as caught:
        patient_update(actor=desk, patient=patient, primary_care_provider=nurse)
    assert field_errors(caught) == {"primary_care_provider": ["not_a_physician"]}
    retired = UserFactory(username="drold", roles=[Role.PHYSICIAN])
    user_deactivate(actor=UserFactory(username="boss", roles=[Role.ADMIN]), user=retired)
    retired.refresh_from_db()
    with pytest.raises(ValidationError) as caught:
        patient_update(actor=desk, patient=patient, primary_care_provider=retired)
    assert field_errors(caught) == {"primary_care_provider": ["not_a_physician"]}
    patient = patient_update(actor=desk, patient=patient, primary_care_provider=doctor)
    assert patient.primary_care_provider == doctor


def test_a_provider_who_left_stays_until_someone_chooses_another(desk, doctor, patient):
    patient = patient_update(actor=desk, patient=patient, primary_care_provider=doctor)
    user_deactivate(actor=UserFactory(username="boss", roles=[Role.ADMIN]), user=doctor)
    doctor.refresh_from_db()
    patient = patient_update(
        actor=desk, patient=patient, primary_care_provider=doctor, city="Peoria"
    )
    assert (patient.primary_care_provider, patient.city) == (doctor, "Peoria")


def test_unknown_or_read_only_fields_are_a_programming_error(desk, patient):
    for field in ("favourite_colour", "mrn", "merged_into", "no_known_allergies"):
        with pytest.raises(TypeError):
            patient_update(actor=desk, patient=patient, **{field: "x"})


def test_a_stale_editor_does_not_undo_a_colleagues_change(desk, patient):
    opened = patient.updated_at
    patient_update(actor=desk, patient=patient, city="Peoria")
    with pytest.raises(ChangedElsewhere):
        patient_update(actor=desk, patient=patient, if_unchanged_since=opened, city="Chicago")
    assert Patient.objects.get(pk=patient.pk).city == "Peoria"


def test_the_front_desk_cannot_restrict_a_record(desk, patient):
    with pytest.raises(AccessDenied):
        patient_update(actor=desk, patient=patient, restricted=True, city="Peoria")
    with pytest.raises(AccessDenied):
        patient_restriction_set(actor=desk, patient=patient, restricted=True)
    fresh = Patient.objects.get(pk=patient.pk)
    assert (fresh.restricted, fresh.city) == (False, "")
    assert not AuditEvent.objects.filter(action="patients.restriction_changed").exists()


def test_a_physician_restricts_a_record_as_its_own_audited_action(doctor, patient):
    patient = patient_update(actor=doctor, patient=patient, restricted=True, city="Peoria")
    assert patient.restricted
    restriction = AuditEvent.objects.get(action="patients.restriction_changed")
    assert changes_of(restriction) == {"restricted": {"old": False, "new": True}}
    assert restriction.actor == doctor
    assert changes_of(updates().get()) == {"city": {"old": "", "new": "Peoria"}}


def test_the_administrator_may_lift_a_restriction(doctor, patient):
    patient = patient_restriction_set(actor=doctor, patient=patient, restricted=True)
    admin = UserFactory(username="boss", roles=[Role.ADMIN])
    patient = patient_restriction_set(actor=admin, patient=patient, restricted=False)
    assert not patient.restricted
    events = AuditEvent.objects.filter(action="patients.restriction_changed").order_by("sequence")
    assert [changes_of(event)["restricted"]["new"] for event in events] == [True, False]
    assert not updates().exists()


@pytest.mark.parametrize("role", [Role.BILLER, Role.PRIVACY_OFFICER, Role.ADMIN, Role.PATIENT])
def test_roles_without_edit_rights_change_nothing(patient, role):
    user = UserFactory(username="someone", roles=[role])
    with pytest.raises(AccessDenied):
        patient_update(actor=user, patient=patient, city="Peoria")
    with pytest.raises(AccessDenied):
        contact_add(
            actor=user,
            patient=patient,
            kind="emergency",
            name="Ana",
            relationship="Spouse",
            phone="2175550101",
        )
    assert Patient.objects.get(pk=patient.pk).city == ""
    assert not Contact.objects.exists()


# --- Contacts ------------------------------------------------------------------------------------


def test_contacts_are_added_with_a_normalised_phone_and_audited(desk, patient):
    contact = contact_add(
        actor=desk,
        patient=patient,
        kind="emergency",
        name=" Ana Rivera ",
        relationship="Spouse",
        phone="217 555 0101",
    )
    assert (contact.name, contact.phone) == ("Ana Rivera", "(217) 555-0101")
    event = AuditEvent.objects.get(action="patients.contact_added")
    assert (event.patient_id, event.category, event.target_id) == (
        patient.pk,
        "demographics",
        str(contact.pk),
    )
    assert changes_of(event)["name"] == "Ana Rivera"
    assert "Ana" not in event.changes


def test_an_emergency_contact_must_be_reachable(desk, patient):
    with pytest.raises(ValidationError) as caught:
        contact_add(actor=desk, patient=patient, kind="emergency", name="Ana", relationship="Aunt")
    assert field_errors(caught) == {"phone": ["contact_unreachable"]}
    with pytest.raises(ValidationError) as caught:
        contact_add(
            actor=desk,
            patient=patient,
            kind="emergency",
            name="Ana",
            relationship="Aunt",
            phone="12345",
            email="bad",
        )
    assert set(caught.value.error_dict) == {"phone"}
    contact_add(
        actor=desk,
        patient=patient,
        kind="emergency",
        name="Ana",
        relationship="Aunt",
        email="ana@example.test",
    )
    assert patient.contacts.count() == 1


def test_one_guarantor_at_most_and_never_the_patient(desk, patient):
    assert patient_contacts(actor=desk, patient=patient).guarantor is None  # "Patient (self)"
    with pytest.raises(ValidationError) as caught:
        contact_add(actor=desk, patient=patient, kind="guarantor", name="José", relationship="Self")
    assert field_errors(caught) == {"relationship": ["guarantor_self"]}
    mother = contact_add(
        actor=desk, patient=patient, kind="guarantor", name="Rosa Rivera", relationship="Mother"
    )
    with pytest.raises(ValidationError) as caught:
        contact_add(
            actor=desk, patient=patient, kind="guarantor", name="Luis", relationship="Father"
        )
    assert field_errors(caught) == {"kind": ["guarantor_exists"]}
    assert patient_contacts(actor=desk, patient=patient).guarantor == mother
    contact_remove(actor=desk, contact=mother)
    contact_add(actor=desk, patient=patient, kind="guarantor", name="Luis", relationship="Father")


def test_removing_a_contact_keeps_what_was_removed_in_the_audit_trail(desk, patient):
    contact = contact_add(
        actor=desk,
        patient=patient,
        kind="emergency",
        name="Ana Rivera",
        relationship="Spouse",
        email="ana@example.test",
    )
    contact_remove(actor=desk, contact=contact)
    assert not Contact.objects.exists()
    event = AuditEvent.objects.get(action="patients.contact_removed")
    assert (event.kind, event.patient_id, event.target_id) == (
        "delete",
        patient.pk,
        str(contact.pk),
    )
    assert changes_of(event) == {
        "kind": "emergency",
        "name": "Ana Rivera",
        "relationship": "Spouse",
        "phone": "",
        "email": "ana@example.test",
        "address": "",
    }
    assert "Ana" not in event.changes


# --- The edit page -------------------------------------------------------------------------------


def edit_url(patient) -> str:
    return f"/patients/{patient.pk}/edit/"


def form_data(client, patient, **overrides) -> dict:
    """What the browser would post: the page's own prefilled values, then the user's edits."""
    form = client.get(edit_url(patient)).context["form"]
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(value, list):
            data[name] = value
        elif isinstance(value, bool) or field.widget.input_type == "checkbox":
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = value
    data.update(overrides)
    return {name: value for name, value in data.items() if value is not None}


@pytest.fixture
def desk_client(client, sign_in, practice, desk):
    return sign_in(client, desk)


def test_the_edit_page_is_prefilled_and_its_opening_audited(desk_client, desk, doctor, patient):
    patient = patient_update(actor=desk, patient=patient, ssn="123-45-6789", race=["2028-9"])
    response = desk_client.get(edit_url(patient))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'value="José"' in html and 'value="(217) 555-0140"' in html
    assert "123-45-6789" not in html  # only the last four, as a hint
    assert "ending 6789" in html
    assert re.search(r'<input[^>]*value="2028-9"[^>]*checked', html)
    assert "Dr. Meredith Gray" in html  # the physicians to choose from
    for legend in ("Name and identity", "Contact", "Language and background", "Communication"):
        assert f"<legend>{legend}</legend>" in html
    assert "<legend>Care</legend>" in html
    assert "<legend>Privacy</legend>" not in html  # the front desk may not restrict a record
    assert 'name="restricted"' not in html
    assert AuditEvent.objects.filter(
        action="patients.demographics_opened", patient_id=patient.pk, actor=desk
    ).exists()


def test_saving_the_edit_page(desk_client, doctor, patient):
    data = form_data(
        desk_client,
        patient,
        preferred_name="Pepe",
        home_phone="217 555 0199",
        interpreter_needed="on",
        preferred_language="Spanish",
        race=["2106-3", "2131-1"],
        primary_care_provider=str(doctor.pk),
        ssn="123456789",
    )
    response = desk_client.post(edit_url(patient), data)
    assert response.status_code == 302
    assert response["Location"] == f"/patients/{patient.pk}/"
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Saved the details of José Rivera."
    ]
    patient.refresh_from_db()
    assert (patient.preferred_name, patient.home_phone) == ("Pepe", "(217) 555-0199")
    assert patient.interpreter_needed and patient.race == ["2106-3", "2131-1"]
    assert patient.ssn == "123-45-6789"
    assert patient.primary_care_provider == doctor
    changed = set(changes_of(updates().get()))
    assert changed == {
        "preferred_name",
        "home_phone",
        "interpreter_needed",
        "preferred_language",
        "race",
        "primary_care_provider",
        "ssn",
    }


def test_saving_an_unchanged_page_says_so_and_records_nothing(desk_client, patient):
    response = desk_client.post(edit_url(patient), form_data(desk_client, patient), follow=True)
    assert "Nothing had changed" in response.content.decode()
    assert not updates().exists()


def test_an_empty_ssn_keeps_the_one_on_file_and_remove_clears_it(desk_client, desk, patient):
    patient = patient_update(actor=desk, patient=patient, ssn="123-45-6789")
    desk_client.post(edit_url(patient), form_data(desk_client, patient, city="Peoria"))
    patient.refresh_from_db()
    assert (patient.city, patient.ssn) == ("Peoria", "123-45-6789")
    desk_client.post(edit_url(patient), form_data(desk_client, patient, remove_ssn="on"))
    patient.refresh_from_db()
    assert patient.ssn is None


def test_the_form_shows_each_error_and_keeps_what_was_typed(desk_client, patient):
    typed = {
        "given_name": "Josefina",
        "email": "jose@@example",
        "mobile_phone": "555-01",
        "postal_code": "ABCDE",
        "state": "Illinois",
        "city": "Springfield",
        "gender_identity": "Non-binary",
        "ssn": "12-345",
        "date_of_birth": "1984-02-30",
    }
    response = desk_client.post(edit_url(patient), form_data(desk_client, patient, **typed))
    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) == {
        "email",
        "mobile_phone",
        "postal_code",
        "state",
        "ssn",
        "date_of_birth",
    }
    html = response.content.decode()
    for value in typed.values():
        assert f'value="{value}"' in html
    assert "check the 6 fields below" in html
    assert 'href="#id_email"' in html  # the summary links to each field
    assert Patient.objects.get(pk=patient.pk).given_name == "José"


def test_the_services_errors_come_back_beside_their_fields(desk_client, patient):
    tomorrow = (localdate() + timedelta(days=1)).isoformat()
    response = desk_client.post(
        edit_url(patient),
        form_data(
            desk_client,
            patient,
            status="deceased",
            deceased_date=tomorrow,
            reminder_channel="email",
            email="",
            race=["ASKU", "2106-3"],
            date_of_birth=(localdate() + timedelta(days=3)).isoformat(),
            preferred_name="Pepe",
        ),
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) == {"date_of_birth", "reminder_channel", "race", "deceased_date"}
    html = response.content.decode()
    assert f'value="{tomorrow}"' in html and 'value="Pepe"' in html
    assert Patient.objects.get(pk=patient.pk).preferred_name == ""
    # With a good birth date, the date of death is the remaining problem.
    response = desk_client.post(
        edit_url(patient),
        form_data(desk_client, patient, status="deceased", deceased_date=tomorrow),
    )
    assert response.context["form"].errors["deceased_date"] == [
        "The date of death is in the future."
    ]
    assert "deceased-field is-invalid" in response.content.decode()


def test_a_colleagues_save_in_between_is_reported_not_overwritten(desk_client, desk, patient):
    data = form_data(desk_client, patient, city="Chicago")
    patient_update(actor=desk, patient=patient, city="Peoria")
    response = desk_client.post(edit_url(patient), data)
    assert response.status_code == 200
    assert "Someone else saved changes" in response.content.decode()
    assert Patient.objects.get(pk=patient.pk).city == "Peoria"


def test_the_front_desk_cannot_restrict_through_a_forged_post(desk_client, patient):
    response = desk_client.post(edit_url(patient), form_data(desk_client, patient, restricted="on"))
    assert response.status_code == 302
    assert not Patient.objects.get(pk=patient.pk).restricted


def test_a_physician_restricts_from_the_privacy_section(client, sign_in, practice, doctor, patient):
    sign_in(client, doctor)
    patient_update(actor=doctor, patient=patient, primary_care_provider=doctor)
    assert "<legend>Privacy</legend>" in client.get(edit_url(patient)).content.decode()
    response = client.post(edit_url(patient), form_data(client, patient, restricted="on"))
    assert response.status_code == 302
    assert Patient.objects.get(pk=patient.pk).restricted
    assert AuditEvent.objects.filter(action="patients.restriction_changed", actor=doctor).exists()
    chart = client.get(f"/patients/{patient.pk}/").content.decode()
    assert '<span class="status status-denied">Restricted</span>' in chart


@pytest.mark.parametrize("role", [Role.BILLER, Role.PRIVACY_OFFICER])
def test_roles_that_only_read_get_403_on_the_page_and_its_posts(
    client, sign_in, practice, desk, patient, role
):
    contact = contact_add(
        actor=desk,
        patient=patient,
        kind="emergency",
        name="Ana",
        relationship="Aunt",
        phone="2175550101",
    )
    sign_in(client, UserFactory(username="reader", roles=[role]))
    assert client.get(edit_url(patient)).status_code == 403
    assert client.post(edit_url(patient), {"given_name": "X"}).status_code == 403
    contact_post = {"contact-kind": "emergency", "contact-name": "Eve", "contact-relationship": "x"}
    assert client.post(f"/patients/{patient.pk}/contacts/", contact_post).status_code == 403
    remove = f"/patients/{patient.pk}/contacts/{contact.pk}/remove/"
    assert client.post(remove).status_code == 403
    assert Patient.objects.get(pk=patient.pk).given_name == "José"
    assert list(patient.contacts.all()) == [contact]
    chart = client.get(f"/patients/{patient.pk}/").content.decode()
    assert "Edit details" not in chart and "Add a contact" not in chart
    assert f"/patients/{patient.pk}/contacts/" not in chart  # no add or remove forms
    assert "Ana" in chart  # they still see who to call


# --- The chart's Contact section ---------------------------------------------------------------


def test_the_chart_shows_the_details_contacts_and_alerts(desk_client, desk, doctor, patient):
    patient = patient_update(
        actor=desk,
        patient=patient,
        home_phone="2175550199",
        preferred_language="Vietnamese",
        interpreter_needed=True,
        reminder_channel="email",
        primary_care_provider=doctor,
        status="deceased",
        deceased_date=date(2024, 5, 1),
    )
    html = desk_client.get(f"/patients/{patient.pk}/").content.decode()
    assert "(217) 555-0199" in html
    assert "Vietnamese" in html and "Interpreter: Vietnamese" in html
    assert "Deceased 2024-05-01" in html
    assert "Dr. Meredith Gray" in html
    assert re.search(r"Reminders by</dt>\s*<dd>Email", html)
    assert "No emergency contact yet" in html
    assert "Patient (self)" in html
    assert f'href="/patients/{patient.pk}/edit/"' in html  # "Edit details"
    assert "Restricted" not in html


def test_adding_and_removing_contacts_from_the_chart(desk_client, patient):
    url = f"/patients/{patient.pk}/contacts/"
    response = desk_client.post(
        url,
        {
            "contact-kind": "guarantor",
            "contact-name": "Rosa Rivera",
            "contact-relationship": "Mother",
            "contact-phone": "217-555-0111",
        },
    )
    assert response.status_code == 302
    rosa = patient.contacts.get()
    html = desk_client.get(f"/patients/{patient.pk}/").content.decode()
    assert "Rosa Rivera" in html and "(217) 555-0111" in html and "Patient (self)" not in html

    second = {
        "contact-kind": "guarantor",
        "contact-name": "Luis Rivera",
        "contact-relationship": "Father",
        "contact-phone": "bad",
    }
    response = desk_client.post(url, second)
    assert response.status_code == 200  # the chart again, the form open with its errors
    form = response.context["contact_form"]
    assert set(form.errors) == {"phone"}
    second["contact-phone"] = "217 555 0112"
    response = desk_client.post(url, second)
    assert response.context["contact_form"].errors["kind"] == [
        "The patient already has a guarantor: remove it first to name another."
    ]
    html = response.content.decode()
    assert 'value="Luis Rivera"' in html and '<details class="add-contact" open>' in html

    other = registered_patient(actor=UserFactory(username="desk9", roles=[Role.FRONT_DESK]))
    wrong_patient = f"/patients/{other.pk}/contacts/{rosa.pk}/remove/"
    assert desk_client.post(wrong_patient).status_code == 404
    response = desk_client.post(f"/patients/{patient.pk}/contacts/{rosa.pk}/remove/")
    assert response.status_code == 302
    assert not patient.contacts.exists()
    assert desk_client.get(f"/patients/{patient.pk}/contacts/").status_code == 405


# --- In a real browser ---------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_editing_details_and_contacts_in_a_browser(page, live_server, practice):
    from playwright.sync_api import expect

    from ambula.accounts.tests.factories import TEST_PASSWORD

    clerk = UserFactory(username="desk7", roles=[Role.FRONT_DESK])
    patient = registered_patient(actor=clerk, **JOSE)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(clerk.username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    page.get_by_role("link", name="Edit details").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit details")
    expect(page.get_by_label("Date of death")).to_be_hidden()
    page.get_by_label("Status", exact=True).select_option("deceased")
    expect(page.get_by_label("Date of death")).to_be_visible()  # shown with the status, no JS
    page.get_by_label("Email", exact=True).fill("jose@@example")
    page.get_by_role("button", name="Save details").click()

    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("check the 2 fields below")
    summary.get_by_role("link", name="Email").click()
    expect(page.get_by_label("Email", exact=True)).to_be_focused()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("jose@example.test")
    page.get_by_label("Date of death").fill("2024-05-01")
    page.get_by_label("Preferred language").fill("Spanish")
    page.get_by_label("Needs an interpreter").check()
    page.get_by_role("button", name="Save details").press("Enter")

    expect(page).to_have_url(f"{live_server.url}/patients/{patient.pk}/")
    banner = page.locator(".patient-banner")
    expect(banner).to_contain_text("Deceased 2024-05-01")
    expect(banner).to_contain_text("Interpreter: Spanish")
    contact = page.get_by_role("region", name="Contact", exact=True)
    expect(contact).to_contain_text("Patient (self)")
    contact.locator("summary", has_text="Add a contact").click()
    contact.get_by_label("Name", exact=True).fill("Ana Rivera")
    contact.get_by_label("Relationship").fill("Spouse")
    contact.get_by_label("Phone", exact=True).fill("217 555 0101")
    contact.get_by_role("button", name="Add contact").click()
    expect(page.get_by_role("status")).to_contain_text("Added Ana Rivera.")
    expect(contact.get_by_role("list", name="Emergency contacts")).to_contain_text("(217) 555-0101")
    contact.get_by_role("button", name="Remove Ana Rivera").click()
    expect(contact).to_contain_text("No emergency contact yet")
    assert page.console_errors == []
