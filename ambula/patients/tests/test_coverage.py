import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils.timezone import localdate
from PIL import Image

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.core.errors import AccessDenied
from ambula.patients.coverage import (
    coverage_add,
    coverage_end,
    coverage_for_chart,
    coverage_strike,
    coverage_update,
    masked_member_id,
    payer_create,
    payer_deactivate,
)
from ambula.patients.documents import document_strike, document_upload
from ambula.patients.models import Coverage
from ambula.patients.selectors import patient_search
from ambula.patients.tests.factories import registered_patient

pytestmark = pytest.mark.django_db

SPOUSE = {
    "relationship": Coverage.Relationship.SPOUSE,
    "subscriber_given_name": "Maria",
    "subscriber_family_name": "Rivera",
    "subscriber_date_of_birth": date(1982, 5, 14),
    "subscriber_sex": "F",
}


@pytest.fixture
def desk():
    return UserFactory(username="desk1", full_name="Dana Desk", roles=[Role.FRONT_DESK])


@pytest.fixture
def patient(desk):
    return registered_patient(actor=desk, given_name="José", family_name="Rivera")


@pytest.fixture
def prairie(admin_user):
    return payer_create(actor=admin_user, name="Prairie Mutual Health", payer_id="AMB01")


@pytest.fixture
def lakeshore(admin_user):
    return payer_create(actor=admin_user, name="Lakeshore Care Alliance", payer_id="AMB02")


def add(actor, patient, payer, **overrides):
    details = {
        "member_id": "W123456789",
        "priority": Coverage.Priority.PRIMARY,
        "relationship": Coverage.Relationship.SELF,
    } | overrides
    return coverage_add(actor=actor, patient=patient, payer=payer, **details)


def card_scan(actor, patient, *, category="insurance_card", title="Insurance card, front"):
    """A real PNG filed through the documents service."""
    buffer = io.BytesIO()
    Image.new("RGB", (60, 38), (20, 120, 110)).save(buffer, "PNG")
    return document_upload(
        actor=actor,
        patient=patient,
        uploaded_file=SimpleUploadedFile("card.png", buffer.getvalue(), "image/png"),
        category=category,
        title=title,
    )


# --- Adding ------------------------------------------------------------------------------------


def test_adding_a_plan_for_the_patient_as_subscriber(desk, patient, prairie):
    coverage = add(
        desk,
        patient,
        prairie,
        member_id="  W123 456 789 ",
        plan_name=" PPO Gold ",
        group_number="GRP-4410",
        effective_from=date(2025, 1, 1),
        copay=Decimal("25.00"),
        # Left over from a form where Spouse was chosen first: not kept for Self.
        subscriber_given_name="Maria",
    )
    coverage.refresh_from_db()
    assert coverage.member_id == "W123 456 789"
    assert (coverage.plan_name, coverage.status, coverage.copay) == (
        "PPO Gold",
        "active",
        Decimal("25.00"),
    )
    assert coverage.subscriber_given_name == ""
    event = AuditEvent.objects.get(action="patients.coverage_added")
    assert (event.category, event.kind, event.patient_id) == ("coverage", "create", patient.pk)
    assert changes_of(event) == {"payer": "AMB01", "priority": 1, "member_id": "••••6789"}


def test_the_member_id_is_encrypted_at_rest(desk, patient, prairie):
    add(desk, patient, prairie, member_id="XQZ987654321")
    with connection.cursor() as cursor:
        cursor.execute("SELECT member_id, member_id_index FROM patients_coverage")
        [(stored, index)] = cursor.fetchall()
    assert stored and index
    for fragment in ("XQZ987654321", "987654321", "xqz987654321"):
        assert fragment not in stored
        assert fragment not in index
    assert Coverage.objects.get().member_id == "XQZ987654321"


@pytest.mark.parametrize(
    "member_id",
    [
        "",
        "   ",
        "A",
        "--",
        "- -",
        "W12345678901234567890123456789012345678901",
        "W123/456",
        "Ω12345",
    ],
)
def test_a_malformed_member_id_is_refused(desk, patient, prairie, member_id):
    with pytest.raises(ValidationError) as caught:
        add(desk, patient, prairie, member_id=member_id)
    assert set(caught.value.error_dict) == {"member_id"}
    assert not Coverage.objects.exists()


def test_a_plan_in_someone_elses_name_needs_the_subscriber(desk, patient, prairie):
    with pytest.raises(ValidationError) as caught:
        add(desk, patient, prairie, relationship=Coverage.Relationship.CHILD)
    assert set(caught.value.error_dict) == {
        "subscriber_given_name",
        "subscriber_family_name",
        "subscriber_date_of_birth",
        "subscriber_sex",
    }
    with pytest.raises(ValidationError) as caught:
        add(
            desk,
            patient,
            prairie,
            **SPOUSE | {"subscriber_date_of_birth": localdate() + timedelta(days=1)},
        )
    assert caught.value.error_dict["subscriber_date_of_birth"][0].code == "future_date"
    assert not Coverage.objects.exists()
    coverage = add(desk, patient, prairie, **SPOUSE | {"subscriber_given_name": "  Maria "})
    assert (coverage.subscriber_given_name, coverage.get_relationship_display()) == (
        "Maria",
        "Spouse",
    )


def test_one_active_plan_per_priority(desk, patient, prairie, lakeshore):
    primary = add(desk, patient, prairie)
    with pytest.raises(ValidationError) as caught:
        add(desk, patient, lakeshore, member_id="LK-100200")
    assert caught.value.error_dict["priority"][0].code == "priority_taken"
    add(desk, patient, lakeshore, member_id="LK-100200", priority=Coverage.Priority.SECONDARY)
    coverage_end(actor=desk, coverage=primary)
    add(desk, patient, lakeshore, member_id="LK-300400")  # primary again, now free
    assert patient.coverages.filter(status="active").count() == 2


def test_another_patients_primary_is_no_conflict(desk, patient, prairie):
    add(desk, patient, prairie)
    other = registered_patient(actor=desk)
    add(desk, other, prairie, member_id="W555000111")
    assert Coverage.objects.count() == 2


def test_dates_out_of_order_are_refused(desk, patient, prairie):
    with pytest.raises(ValidationError) as caught:
        add(desk, patient, prairie, effective_from=date(2025, 6, 1), effective_to=date(2025, 5, 31))
    assert caught.value.error_dict["effective_to"][0].code == "dates_out_of_order"
    add(desk, patient, prairie, effective_from=date(2025, 6, 1), effective_to=date(2025, 6, 1))


def test_an_inactive_payer_is_refused_for_new_plans(admin_user, desk, patient, prairie):
    payer_deactivate(actor=admin_user, payer=prairie)
    with pytest.raises(ValidationError) as caught:
        add(desk, patient, prairie)
    assert caught.value.error_dict["payer"][0].code == "payer_inactive"
    assert not Coverage.objects.exists()


def test_a_negative_copay_is_refused(desk, patient, prairie):
    with pytest.raises(ValidationError) as caught:
        add(desk, patient, prairie, copay=Decimal("-5"))
    assert "copay" in caught.value.error_dict


def test_card_images_must_be_this_patients_insurance_cards(desk, patient, prairie):
    other = registered_patient(actor=desk)
    foreign_card = card_scan(desk, other)
    with pytest.raises(ValidationError) as caught:
        add(desk, patient, prairie, card_front=foreign_card)
    assert caught.value.error_dict["card_front"][0].code == "other_patient"
    photo_id = card_scan(desk, patient, category="identification", title="Driver's license")
    with pytest.raises(ValidationError) as caught:
        add(desk, patient, prairie, card_back=photo_id)
    assert caught.value.error_dict["card_back"][0].code == "not_a_card"
    assert not Coverage.objects.exists()
    front = card_scan(desk, patient)
    back = card_scan(desk, patient, title="Insurance card, back")
    coverage = add(desk, patient, prairie, card_front=front, card_back=back)
    assert (coverage.card_front, coverage.card_back) == (front, back)


def test_a_struck_out_card_cannot_be_linked(desk, patient, prairie):
    card = card_scan(desk, patient)
    document_strike(actor=desk, document=card)
    with pytest.raises(ValidationError) as caught:
        add(desk, patient, prairie, card_front=card)  # the caller's copy still looks current
    assert caught.value.error_dict["card_front"][0].code == "not_a_card"


@pytest.mark.parametrize("role", [Role.BILLER, Role.ADMIN, Role.PRIVACY_OFFICER, Role.PATIENT])
def test_only_those_who_edit_demographics_manage_coverage(patient, prairie, role):
    user = UserFactory(username="someone", roles=[role])
    with pytest.raises(AccessDenied):
        add(user, patient, prairie)
    assert not Coverage.objects.exists()


def test_nurses_and_physicians_manage_coverage_too(patient, prairie, physician):
    assert add(physician, patient, prairie).status == "active"


# --- Changing, ending, striking ----------------------------------------------------------------


def test_ending_a_plan_today_or_on_a_given_day(desk, patient, prairie, lakeshore):
    primary = add(desk, patient, prairie, effective_from=date(2024, 1, 1))
    ended = coverage_end(actor=desk, coverage=primary)
    assert (ended.status, ended.effective_to) == ("ended", localdate())
    with pytest.raises(ValidationError):
        coverage_end(actor=desk, coverage=ended)
    secondary = add(desk, patient, lakeshore, member_id="LK-1", priority=2)
    coverage_end(actor=desk, coverage=secondary, effective_to=date(2024, 12, 31))
    secondary.refresh_from_db()
    assert secondary.effective_to == date(2024, 12, 31)
    event = AuditEvent.objects.filter(action="patients.coverage_ended").first()
    assert changes_of(event) == {
        "status": {"old": "active", "new": "ended"},
        "effective_to": {"old": "", "new": str(localdate())},
    }


def test_a_plan_cannot_end_before_it_starts(desk, patient, prairie):
    coverage = add(desk, patient, prairie, effective_from=date(2025, 3, 1))
    with pytest.raises(ValidationError) as caught:
        coverage_end(actor=desk, coverage=coverage, effective_to=date(2025, 2, 28))
    assert "effective_to" in caught.value.error_dict
    coverage.refresh_from_db()
    assert coverage.status == "active"


def test_striking_a_plan_frees_its_priority_and_freezes_it(desk, patient, prairie, lakeshore):
    wrong = add(desk, patient, prairie)
    struck = coverage_strike(actor=desk, coverage=wrong)
    assert struck.status == "entered_in_error"
    with pytest.raises(ValidationError):
        coverage_strike(actor=desk, coverage=struck)
    with pytest.raises(ValidationError):
        coverage_update(actor=desk, coverage=struck, plan_name="Fixed")
    add(desk, patient, lakeshore, member_id="LK-77")
    event = AuditEvent.objects.get(action="patients.coverage_struck")
    assert changes_of(event) == {"status": {"old": "active", "new": "entered_in_error"}}
    assert coverage_for_chart(actor=desk, patient=patient)[0].payer == lakeshore


def test_updating_a_plan_records_what_changed_with_the_member_id_masked(desk, patient, prairie):
    coverage = add(desk, patient, prairie)
    coverage_update(actor=desk, coverage=coverage, member_id="W123456000", group_number="G1")
    coverage.refresh_from_db()
    assert (coverage.member_id, coverage.group_number) == ("W123456000", "G1")
    event = AuditEvent.objects.get(action="patients.coverage_updated")
    assert changes_of(event) == {
        "member_id": {"old": "••••6789", "new": "••••6000"},
        "group_number": {"old": "", "new": "G1"},
    }
    assert "W123456000" not in str(changes_of(event))


def test_an_update_is_validated_like_an_addition(desk, patient, prairie, lakeshore):
    add(desk, patient, prairie)
    secondary = add(desk, patient, lakeshore, member_id="LK-1", priority=2)
    with pytest.raises(ValidationError) as caught:
        coverage_update(actor=desk, coverage=secondary, priority=1)
    assert "priority" in caught.value.error_dict
    with pytest.raises(ValidationError) as caught:
        coverage_update(actor=desk, coverage=secondary, relationship="19")
    assert "subscriber_sex" in caught.value.error_dict
    with pytest.raises(TypeError, match="status"):
        coverage_update(actor=desk, coverage=secondary, status="active")


def test_a_plan_keeps_its_payer_after_the_payer_is_deactivated(
    admin_user, desk, patient, prairie, lakeshore
):
    coverage = add(desk, patient, prairie)
    payer_deactivate(actor=admin_user, payer=prairie)
    coverage_update(actor=desk, coverage=coverage, plan_name="PPO Silver")
    payer_deactivate(actor=admin_user, payer=lakeshore)
    with pytest.raises(ValidationError) as caught:
        coverage_update(actor=desk, coverage=coverage, payer=lakeshore)
    assert "payer" in caught.value.error_dict


# --- Reading -----------------------------------------------------------------------------------


def test_the_chart_reader_lists_active_by_priority_then_past_plans(
    desk, patient, prairie, lakeshore
):
    old = add(desk, patient, lakeshore, member_id="OLD-0001", effective_from=date(2020, 1, 1))
    coverage_end(actor=desk, coverage=old, effective_to=date(2023, 12, 31))
    struck = add(desk, patient, lakeshore, member_id="OOPS-0001", priority=3)
    coverage_strike(actor=desk, coverage=struck)
    secondary = add(desk, patient, lakeshore, member_id="LK-9876", priority=2)
    primary = add(desk, patient, prairie)
    biller = UserFactory(username="biller1", roles=[Role.BILLER])
    plans = coverage_for_chart(actor=biller, patient=patient)
    assert plans == [primary, secondary, old]
    assert [plan.masked_member_id for plan in plans] == ["••••6789", "••••9876", "••••0001"]
    assert AuditEvent.objects.filter(
        action="patients.coverage_viewed", actor=biller, patient_id=patient.pk, category="coverage"
    ).exists()
    with pytest.raises(AccessDenied):
        coverage_for_chart(actor=UserFactory(username="pat", roles=[Role.PATIENT]), patient=patient)


@pytest.mark.parametrize(
    ("member_id", "masked"),
    [
        ("W123456789", "••••6789"),
        ("W123-456 789", "••••6789"),
        ("LK-9876", "••••9876"),
        ("AB12", "••••12"),
        ("AB", "••••B"),
    ],
)
def test_masking_shows_the_last_four_or_half_a_short_id(member_id, masked):
    assert masked_member_id(member_id) == masked


# --- Search by member ID ----------------------------------------------------------------------


def test_the_number_on_the_card_finds_the_patient_however_it_is_typed(desk, patient, prairie):
    add(desk, patient, prairie, member_id="W123456789")
    registered_patient(actor=desk, given_name="Wanda", family_name="Wu")
    for typed in ("W123 456 789", "w123-456-789", "W123456789"):
        assert patient_search(actor=desk, query=typed) == [patient]
    assert patient_search(actor=desk, query="W123 456 780") == []
    # Names still match as before, alongside.
    assert patient_search(actor=desk, query="rivera") == [patient]


def test_an_ended_plan_no_longer_finds_the_patient(desk, patient, prairie):
    coverage = add(desk, patient, prairie, member_id="ZZ99887766")
    coverage_end(actor=desk, coverage=coverage)
    assert patient_search(actor=desk, query="ZZ99887766") == []


def test_a_word_without_digits_is_read_as_a_name_only(desk, patient, prairie):
    # Member IDs carry digits; reading every word as one too would slow each name search.
    namesake = registered_patient(actor=desk, given_name="Ann", family_name="Kessler")
    add(desk, patient, prairie, member_id="KESS")
    assert patient_search(actor=desk, query="kess") == [namesake]


# --- Pages -------------------------------------------------------------------------------------


def test_the_chart_shows_coverage_masked_to_everyone_who_sees_demographics(
    client, sign_in, practice, desk, patient, prairie
):
    add(desk, patient, prairie, member_id="W123456789", plan_name="PPO Gold", **SPOUSE)
    for role in (Role.FRONT_DESK, Role.BILLER, Role.PHYSICIAN, Role.ADMIN):
        sign_in(client, UserFactory(username=f"u-{role}", roles=[role]))
        html = client.get(f"/patients/{patient.pk}/").content.decode()
        assert 'id="coverage-heading"' in html
        assert 'href="#coverage-heading"' in html
        assert "Prairie Mutual Health" in html and "PPO Gold" in html
        assert "••••6789" in html
        assert "W123456789" not in html
        assert "Maria Rivera" in html
        assert ("Add plan" in html) == (role in (Role.FRONT_DESK, Role.PHYSICIAN))
        client.post("/accounts/logout/")


def test_the_edit_page_shows_the_member_id_in_full_and_its_read_is_audited(
    client, sign_in, practice, desk, patient, prairie
):
    coverage = add(desk, patient, prairie, member_id="W123456789")
    sign_in(client, desk)
    page = client.get(f"/patients/{patient.pk}/coverage/{coverage.pk}/edit/")
    assert page.status_code == 200
    assert 'value="W123456789"' in page.content.decode()
    assert AuditEvent.objects.filter(
        action="patients.coverage_viewed", target_id=str(coverage.pk), actor=desk
    ).exists()
    saved = client.post(
        f"/patients/{patient.pk}/coverage/{coverage.pk}/edit/",
        {
            "payer": prairie.pk,
            "priority": 1,
            "member_id": "W123456789",
            "relationship": "18",
            "plan_name": "HMO Basic",
        },
    )
    assert saved.status_code == 302
    coverage.refresh_from_db()
    assert coverage.plan_name == "HMO Basic"


def test_adding_through_the_chart_with_errors_shows_them_in_place(
    client, sign_in, practice, desk, patient, prairie
):
    sign_in(client, desk)
    bad = client.post(
        f"/patients/{patient.pk}/coverage/",
        {"payer": prairie.pk, "priority": 1, "member_id": "W1", "relationship": "01"},
    )
    assert bad.status_code == 200
    errors = bad.context["coverage_form"].errors
    assert {"subscriber_given_name", "subscriber_date_of_birth"} <= set(errors)
    assert 'id="coverage-add" open>' in bad.content.decode()
    assert not Coverage.objects.exists()
    good = client.post(
        f"/patients/{patient.pk}/coverage/",
        {
            "payer": prairie.pk,
            "priority": 1,
            "member_id": "W123456789",
            "relationship": "18",
            "copay": "30",
            "effective_from": "2025-01-01",
        },
    )
    assert good.status_code == 302
    assert good["Location"].endswith("#coverage-heading")
    assert patient.coverages.get().copay == Decimal("30.00")


def test_a_foreign_card_cannot_be_linked_through_the_form(
    client, sign_in, practice, desk, patient, prairie
):
    foreign = card_scan(desk, registered_patient(actor=desk))
    sign_in(client, desk)
    response = client.post(
        f"/patients/{patient.pk}/coverage/",
        {
            "payer": prairie.pk,
            "priority": 1,
            "member_id": "W123456789",
            "relationship": "18",
            "card_front": foreign.pk,
        },
    )
    assert "card_front" in response.context["coverage_form"].errors
    assert not Coverage.objects.exists()


def test_the_chart_links_scanned_cards(client, sign_in, practice, desk, patient, prairie):
    front = card_scan(desk, patient)
    add(desk, patient, prairie, card_front=front)
    sign_in(client, desk)
    html = client.get(f"/patients/{patient.pk}/").content.decode()
    assert f"/patients/{patient.pk}/documents/{front.pk}/" in html


def test_ending_and_striking_through_the_chart(client, sign_in, practice, desk, patient, prairie):
    coverage = add(desk, patient, prairie)
    sign_in(client, desk)
    ended = client.post(f"/patients/{patient.pk}/coverage/{coverage.pk}/end/")
    assert ended.status_code == 302
    coverage.refresh_from_db()
    assert coverage.status == "ended"
    again = client.post(f"/patients/{patient.pk}/coverage/{coverage.pk}/end/", follow=True)
    assert "Only an active plan can be ended." in again.content.decode()
    client.post(f"/patients/{patient.pk}/coverage/{coverage.pk}/entered-in-error/")
    coverage.refresh_from_db()
    assert coverage.status == "entered_in_error"
    html = client.get(f"/patients/{patient.pk}/").content.decode()
    assert "coverage-plans" not in html  # struck out: off the chart
    assert "No insurance on file" in html
    assert client.get(f"/patients/{patient.pk}/coverage/{coverage.pk}/edit/").status_code == 302


def test_a_plan_of_another_patient_is_not_found_here(
    client, sign_in, practice, desk, patient, prairie
):
    other = registered_patient(actor=desk)
    coverage = add(desk, other, prairie)
    sign_in(client, desk)
    for suffix in ("edit/", "end/", "entered-in-error/"):
        response = client.post(f"/patients/{patient.pk}/coverage/{coverage.pk}/{suffix}")
        assert response.status_code == 404
    coverage.refresh_from_db()
    assert coverage.status == "active"


@pytest.mark.parametrize("role", [Role.BILLER, Role.ADMIN, Role.PRIVACY_OFFICER])
def test_read_only_roles_cannot_post_coverage(
    client, sign_in, practice, desk, patient, prairie, role
):
    coverage = add(desk, patient, prairie)
    sign_in(client, UserFactory(username="reader", roles=[role]))
    add_url = f"/patients/{patient.pk}/coverage/"
    posted = {"payer": prairie.pk, "priority": 2, "member_id": "X1234", "relationship": "18"}
    assert client.post(add_url, posted).status_code == 403
    assert client.post(f"{add_url}{coverage.pk}/end/").status_code == 403
    assert client.get(f"{add_url}{coverage.pk}/edit/").status_code == 403
    coverage.refresh_from_db()
    assert coverage.status == "active"
    assert Coverage.objects.count() == 1


# --- In a browser ------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_front_desk_adds_a_plan_in_a_browser(page, live_server, practice, admin_user):
    from playwright.sync_api import expect

    from ambula.accounts.tests.factories import TEST_PASSWORD

    clerk = UserFactory(username="desk9", roles=[Role.FRONT_DESK])
    patient = registered_patient(actor=clerk, given_name="José", family_name="Rivera")
    payer_create(actor=admin_user, name="Prairie Mutual Health", payer_id="AMB01")
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(clerk.username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Payers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Payer directory")
    expect(page.get_by_role("cell", name="Prairie Mutual Health")).to_be_visible()

    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    page.get_by_role("navigation", name="Sections of the chart").get_by_role(
        "link", name="Coverage"
    ).click()
    subscriber_name = page.get_by_label("Subscriber first name")
    expect(subscriber_name).to_be_hidden()  # the add form opens itself: no plan yet, Self chosen
    page.get_by_label("Patient is the subscriber's").select_option("Child")
    expect(subscriber_name).to_be_visible()
    page.get_by_label("Payer", exact=True).select_option(label="Prairie Mutual Health (AMB01)")
    page.get_by_label("Member ID").fill("W123 456 789")
    subscriber_name.fill("Ana")
    page.get_by_label("Subscriber last name").fill("Rivera")
    page.get_by_label("Subscriber date of birth").fill("1980-02-03")
    page.get_by_label("Subscriber sex").select_option("F")
    page.get_by_role("button", name="Add plan").click()

    expect(page.get_by_role("status")).to_contain_text("Primary plan with Prairie Mutual Health")
    plan = page.locator(".coverage-plan")
    expect(plan).to_contain_text("••••6789")
    expect(plan).to_contain_text("Ana Rivera")
    expect(plan).not_to_contain_text("W123")
    assert patient.coverages.get().subscriber_given_name == "Ana"
    assert page.console_errors == []
