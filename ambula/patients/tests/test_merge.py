from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from ambula.accounts import sessions
from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.core.errors import AccessDenied
from ambula.patients.allergies import allergy_add
from ambula.patients.merge import patient_merge
from ambula.patients.models import Allergy, Coverage, Patient, Payer, Problem, SocialHistory
from ambula.patients.selectors import PatientMerged, patient_get, patient_search
from ambula.patients.tests.factories import registered_patient

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk():
    return UserFactory(username="desk1", roles=[Role.FRONT_DESK])


@pytest.fixture
def pair(clerk):
    """The same person registered twice: the second time with a phone and an email."""
    born = date(1971, 5, 9)
    survivor = registered_patient(
        actor=clerk, given_name="Ana", family_name="Lima", date_of_birth=born
    )
    duplicate = registered_patient(
        actor=clerk,
        given_name="Ana",
        family_name="Lima",
        date_of_birth=born,
        mobile_phone="(217) 555-0199",
        email="ana.lima@example.test",
    )
    return duplicate, survivor


def test_everything_moves_and_the_duplicate_points_to_the_survivor(
    practice, admin_user, nurse, pair
):
    duplicate, survivor = pair
    allergy_add(actor=nurse, patient=duplicate, substance="Penicillin", severity="severe")
    Problem.objects.create(patient=duplicate, code="E11.9", description="Type 2 diabetes")
    SocialHistory.objects.create(patient=duplicate, occupation="Teacher")

    patient_merge(actor=admin_user, duplicate=duplicate, survivor=survivor)

    duplicate.refresh_from_db()
    survivor.refresh_from_db()
    assert (duplicate.status, duplicate.merged_into) == (Patient.Status.MERGED, survivor)
    assert list(survivor.allergies.values_list("substance", flat=True)) == ["Penicillin"]
    assert survivor.problems.get().code == "E11.9"
    assert survivor.social_history.occupation == "Teacher"
    assert not duplicate.allergies.exists()
    # The survivor had no phone or email: the duplicate's fill the gaps.
    assert (survivor.mobile_phone, survivor.email) == ("(217) 555-0199", "ana.lima@example.test")


def test_the_merge_is_audited_on_both_records(practice, admin_user, nurse, pair):
    duplicate, survivor = pair
    allergy_add(actor=nurse, patient=duplicate, substance="Latex", severity="mild")
    patient_merge(actor=admin_user, duplicate=duplicate, survivor=survivor)
    events = AuditEvent.objects.filter(action="patients.merged")
    assert {event.patient_id for event in events} == {duplicate.pk, survivor.pk}
    details = changes_of(events.first())
    assert details["duplicate_mrn"] == duplicate.mrn
    assert details["survivor_mrn"] == survivor.mrn
    assert details["moved"] == {"allergies": 1}
    assert set(details["filled_fields"]) == {"mobile_phone", "email"}


def test_the_same_active_allergy_is_kept_once_and_the_copy_struck_out(
    practice, admin_user, nurse, pair
):
    duplicate, survivor = pair
    allergy_add(actor=nurse, patient=survivor, substance="Penicillin", severity="severe")
    allergy_add(actor=nurse, patient=duplicate, substance="penicillin", severity="moderate")
    patient_merge(actor=admin_user, duplicate=duplicate, survivor=survivor)
    statuses = sorted(survivor.allergies.values_list("status", flat=True))
    assert statuses == [Allergy.Status.ACTIVE, Allergy.Status.ENTERED_IN_ERROR]


def test_different_active_plans_at_the_same_priority_stop_the_merge(practice, admin_user, pair):
    duplicate, survivor = pair
    one = Payer.objects.create(name="Prairie Health Plan", payer_id="AMB01")
    two = Payer.objects.create(name="Lakeshore Mutual", payer_id="AMB02")
    Coverage.objects.create(patient=survivor, payer=one, member_id="W111")
    Coverage.objects.create(patient=duplicate, payer=two, member_id="Z222")
    with pytest.raises(ValidationError) as caught:
        patient_merge(actor=admin_user, duplicate=duplicate, survivor=survivor)
    assert caught.value.code == "coverage_conflict"
    duplicate.refresh_from_db()
    assert duplicate.merged_into is None  # nothing happened
    assert duplicate.coverages.count() == 1


def test_the_same_plan_on_both_is_kept_once(practice, admin_user, pair):
    duplicate, survivor = pair
    payer = Payer.objects.create(name="Prairie Health Plan", payer_id="AMB01")
    Coverage.objects.create(patient=survivor, payer=payer, member_id="W111-222")
    Coverage.objects.create(patient=duplicate, payer=payer, member_id="w111 222")
    patient_merge(actor=admin_user, duplicate=duplicate, survivor=survivor)
    assert survivor.coverages.filter(status="active").count() == 1
    assert survivor.coverages.count() == 2


def test_a_record_cannot_be_merged_into_itself(practice, admin_user, pair):
    duplicate, _ = pair
    with pytest.raises(ValidationError) as caught:
        patient_merge(actor=admin_user, duplicate=duplicate, survivor=duplicate)
    assert caught.value.code == "merge_into_self"


def test_a_merged_record_cannot_be_merged_again(practice, admin_user, clerk, pair):
    duplicate, survivor = pair
    patient_merge(actor=admin_user, duplicate=duplicate, survivor=survivor)
    third = registered_patient(actor=clerk)
    with pytest.raises(ValidationError):
        patient_merge(actor=admin_user, duplicate=duplicate, survivor=third)
    with pytest.raises(ValidationError):
        patient_merge(actor=admin_user, duplicate=third, survivor=duplicate)


@pytest.mark.parametrize("role", [Role.FRONT_DESK, Role.PHYSICIAN, Role.PRIVACY_OFFICER])
def test_only_administrators_merge(practice, pair, role):
    duplicate, survivor = pair
    with pytest.raises(AccessDenied):
        patient_merge(
            actor=UserFactory(username="u", roles=[role]), duplicate=duplicate, survivor=survivor
        )


def test_the_old_record_leads_to_the_survivor(practice, admin_user, clerk, pair):
    duplicate, survivor = pair
    patient_merge(actor=admin_user, duplicate=duplicate, survivor=survivor)
    with pytest.raises(PatientMerged) as caught:
        patient_get(actor=clerk, patient_id=duplicate.pk)
    assert caught.value.location == reverse("patients:chart", args=[survivor.pk])
    # Search shows the survivor once, and the old MRN still finds it.
    assert patient_search(actor=clerk, query="lima, ana") == [survivor]
    assert patient_search(actor=clerk, query=duplicate.mrn) == [survivor]


def test_the_merge_page_compares_then_merges(client, sign_in, practice, admin_user, pair):
    duplicate, survivor = pair
    sign_in(client, admin_user)
    url = reverse("patients:merge", args=[duplicate.pk])
    page = client.get(url, {"survivor_mrn": survivor.mrn})
    assert page.status_code == 200
    assert f"Merge {duplicate.mrn} into {survivor.mrn}" in page.content.decode()

    itself = client.get(url, {"survivor_mrn": duplicate.mrn})
    assert "cannot be merged into itself" in itself.content.decode()
    unknown = client.get(url, {"survivor_mrn": "99999997"})
    assert unknown.status_code == 200
    assert not Patient.objects.filter(status=Patient.Status.MERGED).exists()

    done = client.post(url, {"survivor_mrn": survivor.mrn})
    assert done.status_code == 302
    assert done["Location"] == reverse("patients:chart", args=[survivor.pk])
    old_chart = client.get(reverse("patients:chart", args=[duplicate.pk]))
    assert old_chart["Location"] == reverse("patients:chart", args=[survivor.pk])


def test_the_merge_page_needs_a_recent_password(client, sign_in, practice, admin_user, pair):
    duplicate, survivor = pair
    sign_in(client, admin_user)
    session = client.session
    session[sessions.SIGNED_IN_AT] -= (sessions.RECENT_AUTHENTICATION_MINUTES + 1) * 60
    session.save()
    response = client.post(
        reverse("patients:merge", args=[duplicate.pk]), {"survivor_mrn": survivor.mrn}
    )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:confirm_password"))
    duplicate.refresh_from_db()
    assert duplicate.merged_into is None
