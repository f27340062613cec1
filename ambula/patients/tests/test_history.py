import pytest
from django.core.exceptions import ValidationError
from django.utils.timezone import localdate

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.core.errors import AccessDenied
from ambula.patients.history import (
    history_add,
    history_for_chart,
    history_strike,
    social_history_update,
)
from ambula.patients.models import HistoryEntry, SocialHistory
from ambula.patients.tests.factories import registered_patient

pytestmark = pytest.mark.django_db

NEVER = SocialHistory.Tobacco.NEVER
EVERY_DAY = SocialHistory.Tobacco.EVERY_DAY


def error_code(caught, field):
    return caught.value.error_dict[field][0].code


# --- History entries ----------------------------------------------------------------------------


def test_adding_history_is_audited_with_its_values_encrypted(nurse, patient):
    entry = history_add(
        actor=nurse, patient=patient, kind="surgical", condition=" Appendectomy ", year=1988
    )
    assert (entry.condition, entry.year, entry.entered_in_error) == ("Appendectomy", 1988, False)
    event = AuditEvent.objects.get(action="patients.history_added")
    assert (event.patient_id, event.category, event.kind) == (patient.pk, "history", "create")
    assert event.target_id == str(entry.pk)
    assert "Appendectomy" not in event.changes
    assert changes_of(event) == {
        "kind": "surgical",
        "condition": "Appendectomy",
        "relation": "",
        "year": 1988,
    }


def test_family_history_needs_a_relation(nurse, patient):
    with pytest.raises(ValidationError) as caught:
        history_add(actor=nurse, patient=patient, kind="family", condition="Diabetes", relation=" ")
    assert error_code(caught, "relation") == "relation_required"
    assert not HistoryEntry.objects.exists()
    entry = history_add(
        actor=nurse, patient=patient, kind="family", condition="Diabetes", relation="Mother"
    )
    assert entry.relation == "Mother"


def test_only_family_history_names_a_relation(nurse, patient):
    with pytest.raises(ValidationError) as caught:
        history_add(actor=nurse, patient=patient, kind="medical", condition="Asthma", relation="x")
    assert error_code(caught, "relation") == "relation_not_family"


@pytest.mark.parametrize("kind", ["medical", "surgical", "family"])
def test_the_year_may_not_be_in_the_future(nurse, patient, kind):
    with pytest.raises(ValidationError) as caught:
        history_add(
            actor=nurse,
            patient=patient,
            kind=kind,
            condition="Something",
            relation="Father" if kind == "family" else "",
            year=localdate().year + 1,
        )
    assert error_code(caught, "year") == "future"
    assert not HistoryEntry.objects.exists()


@pytest.mark.parametrize("kind", ["medical", "surgical"])
def test_the_patients_own_history_cannot_predate_their_birth(nurse, patient, kind):
    with pytest.raises(ValidationError) as caught:
        history_add(actor=nurse, patient=patient, kind=kind, condition="Measles", year=1969)
    assert error_code(caught, "year") == "before_birth"
    # The year of birth itself is fine.
    history_add(actor=nurse, patient=patient, kind=kind, condition="Measles", year=1970)


def test_a_relatives_illness_may_predate_the_patient(nurse, patient):
    entry = history_add(
        actor=nurse,
        patient=patient,
        kind="family",
        condition="Stroke",
        relation="Grandfather",
        year=1950,
    )
    assert entry.year == 1950
    with pytest.raises(ValidationError) as caught:
        history_add(
            actor=nurse,
            patient=patient,
            kind="family",
            condition="Stroke",
            relation="Father",
            year=1700,
        )
    assert "year" in caught.value.error_dict


@pytest.mark.parametrize(
    "details, field",
    [
        ({"kind": "dental"}, "kind"),
        ({"condition": ""}, "condition"),
        ({"condition": "x" * 201}, "condition"),
        ({"note": "x" * 501}, "note"),
    ],
)
def test_bad_values_are_refused_with_a_field_error(nurse, patient, details, field):
    arguments = {"kind": "medical", "condition": "Asthma", **details}
    with pytest.raises(ValidationError) as caught:
        history_add(actor=nurse, patient=patient, **arguments)
    assert field in caught.value.error_dict
    assert not HistoryEntry.objects.exists()


def test_striking_an_entry_hides_it_and_is_audited(nurse, patient):
    entry = history_add(actor=nurse, patient=patient, kind="medical", condition="Gout")
    history_strike(actor=nurse, entry=entry)
    assert history_for_chart(actor=nurse, patient=patient).medical == []
    assert HistoryEntry.objects.get().entered_in_error  # kept in the record
    event = AuditEvent.objects.get(action="patients.history_struck")
    assert (event.kind, event.target_id) == ("update", str(entry.pk))
    assert changes_of(event) == {"entered_in_error": {"old": False, "new": True}}
    with pytest.raises(ValidationError) as caught:
        history_strike(actor=nurse, entry=entry)
    assert caught.value.code == "already_struck"


def test_the_chart_sorts_each_list_latest_first(nurse, patient):
    def entry(kind, condition, year=None, relation=""):
        history_add(
            actor=nurse,
            patient=patient,
            kind=kind,
            condition=condition,
            year=year,
            relation=relation,
        )

    entry("medical", "Hypertension", 2010)
    entry("medical", "Asthma")
    entry("medical", "Chickenpox", 1976)
    entry("surgical", "Appendectomy", 1988)
    entry("family", "Breast cancer", 1995, relation="Mother")
    history = history_for_chart(actor=nurse, patient=patient)
    assert [e.condition for e in history.medical] == ["Hypertension", "Chickenpox", "Asthma"]
    assert [e.condition for e in history.surgical] == ["Appendectomy"]
    assert [(e.condition, e.relation) for e in history.family] == [("Breast cancer", "Mother")]
    assert history.social is None
    assert not history.is_empty
    event = AuditEvent.objects.get(action="patients.history_viewed")
    assert (event.patient_id, event.actor, event.category) == (patient.pk, nurse, "history")


# --- Social history -----------------------------------------------------------------------------


def test_social_history_is_created_then_updated_in_place(nurse, patient):
    first = social_history_update(
        actor=nurse, patient=patient, tobacco=NEVER, alcohol="occasional", occupation=" Teacher "
    )
    assert first.occupation == "Teacher"
    created = AuditEvent.objects.get(action="patients.social_history_recorded")
    assert created.kind == "create"
    assert changes_of(created) == {
        "tobacco": {"old": None, "new": NEVER},
        "alcohol": {"old": None, "new": "occasional"},
        "occupation": {"old": None, "new": "Teacher"},
    }

    second = social_history_update(
        actor=nurse, patient=patient, tobacco=EVERY_DAY, alcohol="occasional", occupation="Teacher"
    )
    assert second.pk == first.pk
    assert SocialHistory.objects.count() == 1
    assert SocialHistory.objects.get().tobacco == EVERY_DAY
    updated = AuditEvent.objects.get(action="patients.social_history_updated")
    assert (updated.kind, updated.target_id, updated.changed_fields) == (
        "update",
        str(first.pk),
        ["tobacco"],
    )
    assert changes_of(updated) == {"tobacco": {"old": NEVER, "new": EVERY_DAY}}
    assert history_for_chart(actor=nurse, patient=patient).smokes


def test_saving_unchanged_social_history_records_nothing(nurse, patient):
    for _ in range(2):
        social_history_update(
            actor=nurse, patient=patient, tobacco=NEVER, alcohol="none", occupation=""
        )
    assert AuditEvent.objects.filter(action__startswith="patients.social_history").count() == 1


@pytest.mark.parametrize(
    "details, field",
    [
        ({"tobacco": "cigar-ish"}, "tobacco"),
        ({"alcohol": "lots"}, "alcohol"),
        ({"occupation": "x" * 101}, "occupation"),
    ],
)
def test_bad_social_history_is_refused(nurse, patient, details, field):
    arguments = {"tobacco": NEVER, "alcohol": "none", "occupation": "", **details}
    with pytest.raises(ValidationError) as caught:
        social_history_update(actor=nurse, patient=patient, **arguments)
    assert field in caught.value.error_dict
    assert not SocialHistory.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="patients.social_history").exists()


@pytest.mark.parametrize("role", [Role.FRONT_DESK, Role.BILLER, Role.ADMIN, Role.PRIVACY_OFFICER])
def test_non_clinical_roles_can_neither_read_nor_change_history(nurse, patient, role):
    entry = history_add(actor=nurse, patient=patient, kind="medical", condition="Asthma")
    user = UserFactory(username="someone", roles=[role])
    with pytest.raises(AccessDenied):
        history_add(actor=user, patient=patient, kind="medical", condition="Gout")
    with pytest.raises(AccessDenied):
        history_strike(actor=user, entry=entry)
    with pytest.raises(AccessDenied):
        social_history_update(
            actor=user, patient=patient, tobacco=NEVER, alcohol="none", occupation=""
        )
    with pytest.raises(AccessDenied):
        history_for_chart(actor=user, patient=patient)
    assert list(HistoryEntry.objects.values_list("condition", "entered_in_error")) == [
        ("Asthma", False)
    ]
    assert not SocialHistory.objects.exists()


# --- The chart ----------------------------------------------------------------------------------


def chart_url(patient):
    return f"/patients/{patient.pk}/"


def test_the_chart_shows_the_section_to_clinicians(client, sign_in, practice, nurse, patient):
    history_add(actor=nurse, patient=patient, kind="family", condition="Glaucoma", relation="aunt")
    social_history_update(
        actor=nurse, patient=patient, tobacco=EVERY_DAY, alcohol="none", occupation="Welder"
    )
    sign_in(client, nurse)
    html = client.get(chart_url(patient)).content.decode()
    assert 'id="history-heading"' in html and 'href="#history-heading"' in html
    assert "Glaucoma" in html and "Aunt" in html
    assert "Welder" in html and "Smokes every day" in html
    # The sections follow each other in the agreed order.
    assert html.index('id="allergies-heading"') < html.index('id="medications-heading"')
    assert html.index('id="medications-heading"') < html.index('id="history-heading"')


def test_the_chart_says_what_to_ask_when_nothing_is_recorded(
    client, sign_in, practice, nurse, patient
):
    sign_in(client, nurse)
    html = client.get(chart_url(patient)).content.decode()
    assert "Nothing recorded yet." in html
    assert "Record social history" in html


@pytest.mark.parametrize("role", [Role.FRONT_DESK, Role.BILLER])
def test_the_section_is_absent_for_non_clinical_roles(
    client, sign_in, practice, nurse, patient, role
):
    history_add(actor=nurse, patient=patient, kind="medical", condition="Epilepsy")
    social_history_update(
        actor=nurse, patient=patient, tobacco=NEVER, alcohol="none", occupation="Pilot"
    )
    sign_in(client, UserFactory(username="other", roles=[role]))
    html = client.get(chart_url(patient)).content.decode()
    assert "Epilepsy" not in html and "Pilot" not in html
    assert "history-heading" not in html
    assert not AuditEvent.objects.filter(action="patients.history_viewed").exists()


def test_adding_and_striking_through_the_chart(client, sign_in, practice, nurse, patient):
    sign_in(client, nurse)
    response = client.post(
        f"/patients/{patient.pk}/history/",
        {"kind": "family", "condition": "Colon cancer", "relation": "father", "year": "2001"},
    )
    assert response.status_code == 302
    entry = patient.history.get()
    assert (entry.kind, entry.relation, entry.year) == ("family", "father", 2001)
    response = client.post(f"/patients/{patient.pk}/history/{entry.pk}/entered-in-error/")
    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.entered_in_error


def test_a_failed_add_shows_the_chart_with_the_errors_in_the_history_form(
    client, sign_in, practice, nurse, patient
):
    sign_in(client, nurse)
    bad = client.post(
        f"/patients/{patient.pk}/history/",
        {"kind": "family", "condition": "Colon cancer", "relation": ""},
    )
    assert bad.status_code == 200
    assert bad.context["history_form"].errors == {
        "relation": ["Say who in the family had it (e.g. mother)."]
    }
    assert not bad.context["medication_form"].errors
    assert not bad.context["social_history_form"].errors
    assert 'value="Colon cancer"' in bad.content.decode()

    bad = client.post(
        f"/patients/{patient.pk}/history/",
        {"kind": "medical", "condition": "", "year": "nineteen eighty"},
    )
    assert set(bad.context["history_form"].errors) == {"condition", "year"}
    assert not patient.history.exists()


def test_social_history_through_the_chart(client, sign_in, practice, nurse, patient):
    sign_in(client, nurse)
    url = f"/patients/{patient.pk}/history/social/"
    response = client.post(url, {"tobacco": NEVER, "alcohol": "moderate", "occupation": "Nurse"})
    assert response.status_code == 302
    response = client.post(url, {"tobacco": NEVER, "alcohol": "none", "occupation": "Nurse"})
    assert response.status_code == 302
    assert SocialHistory.objects.get(patient=patient).alcohol == "none"
    assert SocialHistory.objects.count() == 1

    # The edit form starts from what is recorded.
    chart = client.get(chart_url(patient))
    assert chart.context["social_history_form"].initial["alcohol"] == "none"

    bad = client.post(url, {"tobacco": "42", "alcohol": "none", "occupation": "x" * 101})
    assert bad.status_code == 200
    assert set(bad.context["social_history_form"].errors) == {"tobacco", "occupation"}
    assert not bad.context["history_form"].errors
    assert '<details class="section-disclosure" open>' in bad.content.decode()
    assert SocialHistory.objects.get(patient=patient).occupation == "Nurse"


@pytest.mark.parametrize("role", [Role.FRONT_DESK, Role.BILLER])
def test_non_clinical_roles_cannot_post(client, sign_in, practice, nurse, patient, role):
    entry = history_add(actor=nurse, patient=patient, kind="medical", condition="Asthma")
    sign_in(client, UserFactory(username="other", roles=[role]))
    base = f"/patients/{patient.pk}/history/"
    assert client.post(base, {"kind": "medical", "condition": "Gout"}).status_code == 403
    assert client.post(f"{base}{entry.pk}/entered-in-error/").status_code == 403
    social = {"tobacco": NEVER, "alcohol": "none", "occupation": ""}
    assert client.post(f"{base}social/", social).status_code == 403
    assert list(HistoryEntry.objects.values_list("condition", "entered_in_error")) == [
        ("Asthma", False)
    ]
    assert not SocialHistory.objects.exists()
    assert AuditEvent.objects.filter(action="auth.access_denied").count() == 3


def test_another_patients_entry_is_not_found(client, sign_in, practice, nurse, patient):
    someone_else = registered_patient(actor=UserFactory(username="desk9", roles=[Role.FRONT_DESK]))
    entry = history_add(actor=nurse, patient=someone_else, kind="medical", condition="Asthma")
    sign_in(client, nurse)
    response = client.post(f"/patients/{patient.pk}/history/{entry.pk}/entered-in-error/")
    assert response.status_code == 404
    entry.refresh_from_db()
    assert not entry.entered_in_error


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_nurse_takes_a_history_in_a_browser(page, live_server, practice):
    from playwright.sync_api import expect

    from ambula.accounts.tests.factories import TEST_PASSWORD

    nurse = UserFactory(username="nurse2", roles=[Role.NURSE])
    patient = registered_patient(actor=UserFactory(username="desk2", roles=[Role.FRONT_DESK]))
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(nurse.username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/patients/{patient.pk}/")

    section = page.get_by_role("region", name="History", exact=True)
    expect(section).to_contain_text("Nothing recorded yet.")
    section.get_by_label("Kind").select_option(label="Family")
    section.get_by_label("Condition or procedure").fill("Breast cancer")
    section.get_by_role("button", name="Add to history").click()
    section = page.get_by_role("region", name="History", exact=True)
    expect(section.locator(".field-invalid .field-error")).to_have_text(
        "Say who in the family had it (e.g. mother)."
    )
    expect(section.get_by_label("Condition or procedure")).to_have_value("Breast cancer")
    section.get_by_label("Relation").fill("mother")
    section.get_by_label("Year").fill("1995")
    section.get_by_role("button", name="Add to history").click()
    family = page.get_by_role("region", name="Family history")
    expect(family).to_contain_text("Breast cancer")
    expect(family).to_contain_text("Mother · 1995")

    social = page.get_by_role("region", name="Social history")
    social.get_by_text("Record social history").focus()
    page.keyboard.press("Enter")  # opens the form, with the keyboard
    social.get_by_label("Tobacco use").select_option(label="Smokes some days")
    social.get_by_label("Occupation").fill("Carpenter")
    social.get_by_role("button", name="Save social history").click()
    social = page.get_by_role("region", name="Social history")
    expect(social).to_contain_text("Smokes some days")
    expect(social).to_contain_text("Carpenter")
    assert SocialHistory.objects.get(patient=patient).occupation == "Carpenter"
    assert page.console_errors == []
