from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.timezone import now

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.core.errors import AccessDenied
from ambula.core.models import Practice
from ambula.patients.allergies import allergy_add
from ambula.patients.emergency import (
    EmergencyAccessRequired,
    emergency_access_grant,
    emergency_access_review,
)
from ambula.patients.models import EmergencyAccess, Patient
from ambula.patients.selectors import patient_get
from ambula.patients.tests.factories import registered_patient

pytestmark = pytest.mark.django_db
REASON = "Covering the clinic: patient called with chest pain"


@pytest.fixture
def privacy_officer():
    return UserFactory(username="privacy1", roles=[Role.PRIVACY_OFFICER])


@pytest.fixture
def restricted(physician):
    patient = registered_patient(actor=UserFactory(username="desk1", roles=[Role.FRONT_DESK]))
    Patient.objects.filter(pk=patient.pk).update(restricted=True, primary_care_provider=physician)
    return Patient.objects.get(pk=patient.pk)


def test_the_primary_care_provider_opens_a_restricted_record_without_a_reason(
    practice, physician, restricted
):
    assert patient_get(actor=physician, patient_id=restricted.pk) == restricted
    assert not EmergencyAccess.objects.exists()


def test_anyone_else_is_asked_for_a_reason_and_the_refusal_is_audited(practice, nurse, restricted):
    with pytest.raises(EmergencyAccessRequired):
        patient_get(actor=nurse, patient_id=restricted.pk)
    event = AuditEvent.objects.get(action="patients.restricted_record_refused")
    assert (event.actor_id, event.patient_id, event.outcome) == (nurse.pk, restricted.pk, "denied")


def test_when_nobody_counts_as_care_team_even_the_pcp_gives_a_reason(
    practice, physician, restricted
):
    Practice.objects.update(care_relationship=Practice.CareRelationship.NOBODY)
    with pytest.raises(EmergencyAccessRequired):
        patient_get(actor=physician, patient_id=restricted.pk)


def test_unrestricted_records_need_no_reason(practice, nurse):
    patient = registered_patient(actor=nurse)
    assert patient_get(actor=nurse, patient_id=patient.pk) == patient


@pytest.mark.parametrize("reason", ["", "   ", "because", "x" * 501])
def test_a_reason_too_short_or_too_long_is_refused(practice, nurse, restricted, reason):
    with pytest.raises(ValidationError) as caught:
        emergency_access_grant(actor=nurse, patient=restricted, reason=reason)
    assert "reason" in caught.value.message_dict
    assert not EmergencyAccess.objects.exists()


def test_a_grant_lasts_the_practice_setting_and_is_audited_with_its_reason(
    practice, nurse, restricted
):
    Practice.objects.update(emergency_access_minutes=30)
    grant = emergency_access_grant(actor=nurse, patient=restricted, reason=f"  {REASON}\n")
    assert grant.reason == REASON
    assert timedelta(minutes=29) < grant.expires_at - now() <= timedelta(minutes=30)
    event = AuditEvent.objects.get(action="patients.emergency_access_granted")
    assert event.kind == "emergency_access"
    assert changes_of(event)["reason"] == REASON
    assert REASON not in event.changes  # encrypted, like every change value
    assert patient_get(actor=nurse, patient_id=restricted.pk) == restricted


def test_an_expired_grant_asks_again(practice, nurse, restricted):
    grant = emergency_access_grant(actor=nurse, patient=restricted, reason=REASON)
    EmergencyAccess.objects.filter(pk=grant.pk).update(expires_at=now() - timedelta(seconds=1))
    with pytest.raises(EmergencyAccessRequired):
        patient_get(actor=nurse, patient_id=restricted.pk)


def test_a_grant_is_personal(practice, nurse, restricted):
    emergency_access_grant(actor=nurse, patient=restricted, reason=REASON)
    other_nurse = UserFactory(username="nurse2", roles=[Role.NURSE])
    with pytest.raises(EmergencyAccessRequired):
        patient_get(actor=other_nurse, patient_id=restricted.pk)


def test_opening_a_restricted_chart_redirects_to_the_reason_page(
    client, sign_in, practice, nurse, restricted
):
    sign_in(client, nurse)
    chart = reverse("patients:chart", args=[restricted.pk])
    response = client.get(chart)
    assert response.status_code == 302
    assert response["Location"].startswith(
        reverse("patients:emergency_access", args=[restricted.pk])
    )
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert restricted.mrn in page.content.decode()
    # The reason page does not show the record: no chart read was recorded.
    assert not AuditEvent.objects.filter(action="patients.chart_viewed").exists()


def test_every_action_under_a_grant_is_marked_as_emergency_access(
    client, sign_in, practice, nurse, restricted
):
    sign_in(client, nurse)
    url = reverse("patients:emergency_access", args=[restricted.pk])
    refused = client.post(url, {"reason": "  "})
    assert refused.status_code == 200
    assert not EmergencyAccess.objects.exists()

    response = client.post(url, {"reason": REASON})
    assert response.status_code == 302
    assert response["Location"] == reverse("patients:chart", args=[restricted.pk])
    grant = EmergencyAccess.objects.get()
    assert client.get(response["Location"]).status_code == 200
    client.post(
        reverse("patients:allergy_add", args=[restricted.pk]),
        {"substance": "Latex", "severity": "mild"},
    )
    under_grant = AuditEvent.objects.filter(
        patient_id=restricted.pk, actor_id=nurse.pk, occurred_at__gte=grant.created_at
    ).exclude(action="patients.emergency_access_granted")
    actions = {event.action for event in under_grant}
    assert {"patients.chart_viewed", "patients.allergy_added"} <= actions
    for event in under_grant:
        assert changes_of(event)["emergency_access"] == str(grant.pk), event.action


def test_a_search_in_the_same_session_is_not_marked(client, sign_in, practice, nurse, restricted):
    emergency_access_grant(actor=nurse, patient=restricted, reason=REASON)
    sign_in(client, nurse)
    client.get(reverse("patients:chart", args=[restricted.pk]))
    client.get(reverse("patients:search"), {"q": "zzz"})
    search = AuditEvent.objects.filter(action="patients.searched").latest("sequence")
    assert "emergency_access" not in changes_of(search)


def test_the_next_url_stays_inside_this_patients_record(
    client, sign_in, practice, nurse, restricted
):
    sign_in(client, nurse)
    url = reverse("patients:emergency_access", args=[restricted.pk])
    response = client.post(url, {"reason": REASON, "next": "https://evil.example/"})
    assert response["Location"] == reverse("patients:chart", args=[restricted.pk])


def test_the_privacy_officer_reviews_each_grant(
    client, sign_in, practice, nurse, privacy_officer, restricted
):
    grant = emergency_access_grant(actor=nurse, patient=restricted, reason=REASON)
    sign_in(client, privacy_officer)
    queue = client.get(reverse("patients:emergency_reviews"))
    assert queue.status_code == 200
    assert REASON[:40] in queue.content.decode()

    review_url = reverse("patients:emergency_review", args=[grant.pk])
    detail = client.get(review_url)
    assert "patients.emergency_access_granted" in detail.content.decode()
    missing_note = client.post(review_url, {"outcome": "inappropriate", "note": ""})
    assert missing_note.status_code == 200
    assert client.post(review_url, {"outcome": "appropriate"}).status_code == 302

    grant.refresh_from_db()
    assert (grant.review_outcome, grant.reviewed_by) == ("appropriate", privacy_officer)
    pending = client.get(reverse("patients:emergency_reviews"))
    assert REASON[:40] not in pending.content.decode()
    assert AuditEvent.objects.filter(action="patients.emergency_access_reviewed").count() == 1


def test_nobody_reviews_their_own_emergency_access(practice, restricted):
    both = UserFactory(username="both", roles=[Role.NURSE, Role.PRIVACY_OFFICER])
    grant = emergency_access_grant(actor=both, patient=restricted, reason=REASON)
    with pytest.raises(ValidationError):
        emergency_access_review(actor=both, grant=grant, outcome="appropriate")


@pytest.mark.parametrize("role", [Role.NURSE, Role.ADMIN, Role.FRONT_DESK, Role.PHYSICIAN])
def test_only_the_privacy_officer_reviews(client, sign_in, practice, restricted, nurse, role):
    grant = emergency_access_grant(actor=nurse, patient=restricted, reason=REASON)
    user = UserFactory(username="someone", roles=[role])
    with pytest.raises(AccessDenied):
        emergency_access_review(actor=user, grant=grant, outcome="appropriate")
    sign_in(client, user)
    assert client.get(reverse("patients:emergency_reviews")).status_code == 403


def test_restricted_records_still_need_the_capability(practice, restricted):
    biller_grant_holder = UserFactory(username="portal", roles=[Role.PATIENT])
    with pytest.raises(AccessDenied):
        emergency_access_grant(actor=biller_grant_holder, patient=restricted, reason=REASON)


def test_allergies_recorded_under_a_grant_land_on_the_record(practice, nurse, restricted):
    emergency_access_grant(actor=nurse, patient=restricted, reason=REASON)
    patient = patient_get(actor=nurse, patient_id=restricted.pk)
    allergy_add(actor=nurse, patient=patient, substance="Latex", severity="mild")
    assert restricted.allergies.count() == 1
