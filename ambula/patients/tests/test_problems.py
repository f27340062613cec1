from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils.timezone import localdate

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.core.errors import AccessDenied
from ambula.patients.models import Problem
from ambula.patients.problems import (
    problem_add,
    problem_resolve,
    problem_strike,
    problem_update_note,
    problems_for_chart,
)
from ambula.patients.tests.factories import registered_patient
from ambula.terminology.tests.factories import load_sample_codes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def codes():
    load_sample_codes()


def error_code(caught, field="code"):
    return caught.value.error_dict[field][0].code


def event(action):
    return AuditEvent.objects.get(action=action)


# --- Services -----------------------------------------------------------------------------------


def test_adding_a_problem_copies_code_and_description_from_the_table(nurse, patient):
    problem = problem_add(
        actor=nurse, patient=patient, code=" e119 ", onset=date(2020, 1, 15), note=" diet "
    )
    assert (problem.code, problem.description) == (
        "E11.9",
        "Type 2 diabetes mellitus without complications",
    )
    assert (problem.status, problem.onset, problem.note) == ("active", date(2020, 1, 15), "diet")
    added = event("patients.problem_added")
    assert (added.patient_id, added.category, added.kind) == (patient.pk, "problem list", "create")
    assert added.target_id == str(problem.pk)
    assert changes_of(added) == {"code": "E11.9", "onset": "2020-01-15"}


def test_a_category_code_is_allowed_and_known_as_not_billable(nurse, patient):
    problem_add(actor=nurse, patient=patient, code="E11")
    problem_add(actor=nurse, patient=patient, code="I10")
    listed = {
        problem.code: problem.billable
        for problem in problems_for_chart(actor=nurse, patient=patient)
    }
    assert listed == {"E11": False, "I10": True}


@pytest.mark.parametrize(
    ("code", "expected"),
    [("E11.99", "unknown_code"), ("diabetes", "unknown_code"), ("  ", "required")],
)
def test_a_code_not_in_the_table_is_refused_on_the_code_field(nurse, patient, code, expected):
    with pytest.raises(ValidationError) as caught:
        problem_add(actor=nurse, patient=patient, code=code)
    assert error_code(caught) == expected
    assert not Problem.objects.exists()
    assert not AuditEvent.objects.filter(action="patients.problem_added").exists()


def test_the_message_for_an_unknown_code_names_it(nurse, patient):
    with pytest.raises(ValidationError) as caught:
        problem_add(actor=nurse, patient=patient, code="Q99.99")
    assert caught.value.error_dict["code"][0].messages == [
        "“Q99.99” is not an ICD-10-CM code. Search by code or by words, then pick one."
    ]


def test_the_same_code_is_active_once_and_may_return_after_resolving(nurse, patient):
    first = problem_add(actor=nurse, patient=patient, code="J45.909")
    with pytest.raises(ValidationError) as caught:
        problem_add(actor=nurse, patient=patient, code="j45909")
    assert error_code(caught) == "problem_recorded"
    assert "J45.909 is already on the active problem list." in caught.value.messages
    problem_resolve(actor=nurse, problem=first)
    again = problem_add(actor=nurse, patient=patient, code="J45.909")
    assert again.status == "active"
    assert patient.problems.count() == 2


def test_onset_must_be_between_birth_and_today(nurse, patient):
    with pytest.raises(ValidationError) as caught:
        problem_add(actor=nurse, patient=patient, code="I10", onset=localdate() + timedelta(days=1))
    assert error_code(caught, "onset") == "future"
    with pytest.raises(ValidationError) as caught:
        problem_add(actor=nurse, patient=patient, code="I10", onset=date(1969, 12, 31))
    assert error_code(caught, "onset") == "before_birth"
    assert problem_add(actor=nurse, patient=patient, code="I10", onset=localdate()).onset
    assert patient.problems.count() == 1


def test_a_note_longer_than_the_field_is_refused(nurse, patient):
    with pytest.raises(ValidationError) as caught:
        problem_add(actor=nurse, patient=patient, code="I10", note="x" * 2001)
    assert error_code(caught, "note") == "too_long"


def test_resolving_today_by_default_and_audited(nurse, patient):
    problem = problem_add(actor=nurse, patient=patient, code="M54.50", onset=date(2024, 3, 1))
    problem = problem_resolve(actor=nurse, problem=problem)
    assert (problem.status, problem.resolved_on) == ("resolved", localdate())
    assert changes_of(event("patients.problem_resolved")) == {
        "status": {"old": "active", "new": "resolved"},
        "resolved_on": {"old": None, "new": localdate().isoformat()},
    }
    with pytest.raises(ValidationError) as caught:
        problem_resolve(actor=nurse, problem=problem)
    assert caught.value.code == "not_active"


def test_resolution_dates_are_checked(nurse, patient):
    problem = problem_add(actor=nurse, patient=patient, code="M54.50", onset=date(2024, 3, 1))
    for day, code in [
        (date(2024, 2, 29), "dates_out_of_order"),
        (localdate() + timedelta(days=1), "future"),
    ]:
        with pytest.raises(ValidationError) as caught:
            problem_resolve(actor=nurse, problem=problem, resolved_on=day)
        assert error_code(caught, "resolved_on") == code
    problem.refresh_from_db()
    assert problem.status == "active"


def test_striking_hides_the_entry_from_the_chart_but_keeps_it(nurse, patient):
    active = problem_add(actor=nurse, patient=patient, code="I10")
    resolved = problem_resolve(
        actor=nurse, problem=problem_add(actor=nurse, patient=patient, code="E55.9")
    )
    problem_strike(actor=nurse, problem=active)
    problem_strike(actor=nurse, problem=resolved)
    assert problems_for_chart(actor=nurse, patient=patient) == []
    assert patient.problems.filter(status="entered_in_error").count() == 2
    struck = AuditEvent.objects.filter(action="patients.problem_struck").order_by("sequence")
    assert [changes_of(e)["status"]["old"] for e in struck] == ["active", "resolved"]
    with pytest.raises(ValidationError) as caught:
        problem_strike(actor=nurse, problem=active)
    assert caught.value.code == "already_struck"
    # Struck out, the code may be listed again.
    assert problem_add(actor=nurse, patient=patient, code="I10").status == "active"


def test_the_note_can_change_and_each_change_is_audited(nurse, patient):
    problem = problem_add(actor=nurse, patient=patient, code="I10", note="home readings")
    problem = problem_update_note(actor=nurse, problem=problem, note="  on lisinopril ")
    assert problem.note == "on lisinopril"
    assert changes_of(event("patients.problem_note_updated")) == {
        "note": {"old": "home readings", "new": "on lisinopril"}
    }
    problem_update_note(actor=nurse, problem=problem, note="on lisinopril")  # no change
    assert AuditEvent.objects.filter(action="patients.problem_note_updated").count() == 1
    with pytest.raises(ValidationError):
        problem_update_note(actor=nurse, problem=problem, note="x" * 2001)
    problem_strike(actor=nurse, problem=problem)
    with pytest.raises(ValidationError) as caught:
        problem_update_note(actor=nurse, problem=problem, note="")
    assert caught.value.code == "already_struck"


def test_the_chart_lists_active_problems_first_latest_onset_first(nurse, patient):
    problem_add(actor=nurse, patient=patient, code="I10", onset=date(2015, 6, 1))
    problem_add(actor=nurse, patient=patient, code="E11.9", onset=date(2019, 2, 1))
    problem_add(actor=nurse, patient=patient, code="J45.909")  # onset unknown: last of the active
    old = problem_add(actor=nurse, patient=patient, code="M54.50", onset=date(2010, 1, 1))
    problem_resolve(actor=nurse, problem=old, resolved_on=date(2011, 1, 1))
    recent = problem_add(actor=nurse, patient=patient, code="E55.9", onset=date(2012, 1, 1))
    problem_resolve(actor=nurse, problem=recent, resolved_on=date(2013, 1, 1))
    listed = [problem.code for problem in problems_for_chart(actor=nurse, patient=patient)]
    assert listed == ["E11.9", "I10", "J45.909", "E55.9", "M54.50"]


def test_reading_the_list_is_audited(nurse, patient):
    problems_for_chart(actor=nurse, patient=patient)
    viewed = event("patients.problems_viewed")
    assert (viewed.actor_id, viewed.patient_id, viewed.kind) == (nurse.pk, patient.pk, "read")


@pytest.mark.parametrize("role", [Role.FRONT_DESK, Role.BILLER, Role.ADMIN, Role.PRIVACY_OFFICER])
def test_non_clinical_roles_can_neither_read_nor_change_problems(nurse, patient, role):
    problem = problem_add(actor=nurse, patient=patient, code="I10")
    user = UserFactory(username="someone", roles=[role])
    for attempt in (
        lambda: problem_add(actor=user, patient=patient, code="E11.9"),
        lambda: problem_resolve(actor=user, problem=problem),
        lambda: problem_strike(actor=user, problem=problem),
        lambda: problem_update_note(actor=user, problem=problem, note="x"),
        lambda: problems_for_chart(actor=user, patient=patient),
    ):
        with pytest.raises(AccessDenied):
            attempt()
    problem.refresh_from_db()
    assert (problem.status, problem.note, patient.problems.count()) == ("active", "", 1)


# --- Views --------------------------------------------------------------------------------------


def chart_url(patient):
    return f"/patients/{patient.pk}/"


def test_the_chart_shows_problems_to_clinicians_only(client, sign_in, practice, nurse, patient):
    problem_add(actor=nurse, patient=patient, code="E11")
    sign_in(client, nurse)
    html = client.get(chart_url(patient)).content.decode()
    assert 'id="problems-heading"' in html and 'href="#problems-heading"' in html
    assert "Type 2 diabetes mellitus" in html
    assert "category — not billable" in html
    assert "data-code-picker" in html and "code_picker" in html
    client.post("/accounts/logout/")
    sign_in(client, UserFactory(username="desk2", roles=[Role.FRONT_DESK]))
    html = client.get(chart_url(patient)).content.decode()
    assert "problems-heading" not in html
    assert "Type 2 diabetes" not in html
    assert "data-code-picker" not in html


def test_adding_through_the_chart(client, sign_in, practice, nurse, patient):
    sign_in(client, nurse)
    response = client.post(
        f"/patients/{patient.pk}/problems/",
        {"code": "e11.9", "onset": "2021-04-02", "note": "A1c 7.1"},
    )
    assert response.status_code == 302
    assert response["Location"] == f"/patients/{patient.pk}/#problems-heading"
    problem = patient.problems.get()
    assert (problem.code, problem.onset, problem.note) == ("E11.9", date(2021, 4, 2), "A1c 7.1")
    html = client.get(chart_url(patient)).content.decode()
    assert "E11.9 added to the problem list." in html


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"code": "Q99.99"}, "code", "is not an ICD-10-CM code"),
        ({"code": ""}, "code", "This field is required."),
        ({"code": "I10", "onset": "2999-01-01"}, "onset", "The date is in the future."),
        ({"code": "I10", "onset": "yesterday"}, "onset", "Enter a valid date."),
    ],
)
def test_a_failed_add_shows_the_chart_again_with_the_error(
    client, sign_in, practice, nurse, patient, data, field, message
):
    sign_in(client, nurse)
    response = client.post(f"/patients/{patient.pk}/problems/", data)
    assert response.status_code == 200
    assert message in " ".join(response.context["problem_form"].errors[field])
    html = response.content.decode()
    assert message in html
    assert 'id="problems-heading"' in html  # the whole chart, not a bare form
    assert not patient.problems.exists()


def test_a_duplicate_code_is_explained_on_the_chart(client, sign_in, practice, nurse, patient):
    problem_add(actor=nurse, patient=patient, code="I10")
    sign_in(client, nurse)
    response = client.post(f"/patients/{patient.pk}/problems/", {"code": "i10"})
    assert response.status_code == 200
    assert "I10 is already on the active problem list." in response.content.decode()
    assert patient.problems.count() == 1


def test_resolving_striking_and_noting_through_the_chart(client, sign_in, practice, nurse, patient):
    problem = problem_add(actor=nurse, patient=patient, code="I10", onset=date(2020, 1, 1))
    base = f"/patients/{patient.pk}/problems/{problem.pk}"
    sign_in(client, nurse)

    assert client.post(f"{base}/note/", {"note": "home BP log"}).status_code == 302
    bad = client.post(f"{base}/resolve/", {"resolved_on": "2019-12-31"}, follow=True)
    assert "cannot resolve before its onset" in bad.content.decode()
    problem.refresh_from_db()
    assert (problem.note, problem.status) == ("home BP log", "active")

    assert client.post(f"{base}/resolve/", {"resolved_on": "2024-05-06"}).status_code == 302
    problem.refresh_from_db()
    assert (problem.status, problem.resolved_on) == ("resolved", date(2024, 5, 6))

    assert client.post(f"{base}/entered-in-error/").status_code == 302
    problem.refresh_from_db()
    assert problem.status == "entered_in_error"
    assert "home BP log" not in client.get(chart_url(patient)).content.decode()


def test_a_problem_of_another_patient_is_not_found(client, sign_in, practice, nurse, patient):
    other = registered_patient(actor=nurse)
    problem = problem_add(actor=nurse, patient=other, code="I10")
    sign_in(client, nurse)
    response = client.post(f"/patients/{patient.pk}/problems/{problem.pk}/entered-in-error/")
    assert response.status_code == 404
    problem.refresh_from_db()
    assert problem.status == "active"


@pytest.mark.parametrize("role", [Role.FRONT_DESK, Role.BILLER])
def test_non_clinical_roles_cannot_post_problems(client, sign_in, practice, nurse, patient, role):
    problem = problem_add(actor=nurse, patient=patient, code="I10")
    sign_in(client, UserFactory(username="visitor", roles=[role]))
    base = f"/patients/{patient.pk}/problems/"
    for url, data in [
        (base, {"code": "E11.9"}),
        (f"{base}{problem.pk}/resolve/", {}),
        (f"{base}{problem.pk}/entered-in-error/", {}),
        (f"{base}{problem.pk}/note/", {"note": "x"}),
    ]:
        assert client.post(url, data).status_code == 403
    problem.refresh_from_db()
    assert (problem.status, problem.note, patient.problems.count()) == ("active", "", 1)


# --- In a browser -------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_code_picker_by_keyboard_and_by_mouse(page, live_server, practice, nurse, patient):
    from playwright.sync_api import expect

    from ambula.accounts.tests.factories import TEST_PASSWORD

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(nurse.username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}{chart_url(patient)}")

    field = page.get_by_role("combobox", name="Diagnosis (ICD-10-CM)")
    field.press_sequentially("type 2 diab", delay=30)
    results = page.locator("#problem-code-results")
    options = results.get_by_role("option")
    expect(options).to_have_count(3)
    expect(options.nth(2)).to_contain_text("category — not billable")
    expect(field).to_have_attribute("aria-expanded", "true")
    expect(options.nth(0)).to_have_attribute("aria-selected", "false")  # nothing until asked
    field.press("ArrowDown")
    field.press("ArrowDown")
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    expect(field).to_have_attribute("aria-activedescendant", "icd10-option-2")
    field.press("Enter")  # chooses; does not submit
    expect(field).to_have_value("E11.65")
    expect(page.get_by_text("E11.65 · Type 2 diabetes mellitus with hyperglycemia")).to_be_visible()
    expect(options).to_have_count(0)
    page.get_by_role("button", name="Add problem").click()
    expect(page.get_by_text("E11.65 added to the problem list.")).to_be_visible()
    assert patient.problems.get().code == "E11.65"

    # With a problem on the list, the add form folds away until asked for.
    page.locator("summary", has_text="Add a problem").click()
    field = page.get_by_role("combobox", name="Diagnosis (ICD-10-CM)")
    field.press_sequentially("hypertens", delay=30)
    results.get_by_role("option", name="I10").click()
    expect(field).to_have_value("I10")
    field.fill("zzzz")
    field.dispatch_event("input")
    expect(results).to_contain_text("No ICD-10-CM code matches")
    field.press("Escape")
    expect(results).to_be_empty()
    assert page.console_errors == []
