import pytest
from django.core.exceptions import ValidationError

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.core.errors import AccessDenied
from ambula.patients.allergies import (
    active_allergies,
    allergies_none_known,
    allergy_add,
    allergy_status_change,
)
from ambula.patients.models import Allergy

pytestmark = pytest.mark.django_db


def test_adding_an_allergy_is_audited_with_its_values_encrypted(nurse, patient):
    allergy = allergy_add(
        actor=nurse, patient=patient, substance=" Penicillin ", reaction="Hives", severity="severe"
    )
    assert allergy.substance == "Penicillin"
    event = AuditEvent.objects.get(action="patients.allergy_added")
    assert (event.patient_id, event.category, event.kind) == (patient.pk, "allergy list", "create")
    assert "Penicillin" not in event.changes
    assert changes_of(event) == {"substance": "Penicillin", "severity": "severe"}


def test_the_same_active_allergy_cannot_be_listed_twice(nurse, patient):
    allergy_add(actor=nurse, patient=patient, substance="Latex", severity="mild")
    with pytest.raises(ValidationError) as caught:
        allergy_add(actor=nurse, patient=patient, substance="LATEX", severity="mild")
    assert caught.value.error_dict["__all__"][0].code == "allergy_recorded"
    assert Allergy.objects.count() == 1


def test_a_resolved_allergy_leaves_the_list_and_can_be_added_again(nurse, patient):
    latex = allergy_add(actor=nurse, patient=patient, substance="Latex", severity="mild")
    allergy_status_change(actor=nurse, allergy=latex, status="resolved")
    assert active_allergies(actor=nurse, patient=patient) == []
    allergy_add(actor=nurse, patient=patient, substance="Latex", severity="moderate")
    event = AuditEvent.objects.get(action="patients.allergy_updated")
    assert changes_of(event) == {"status": {"old": "active", "new": "resolved"}}


def test_an_allergy_cannot_be_set_back_to_active_by_status_change(nurse, patient):
    latex = allergy_add(actor=nurse, patient=patient, substance="Latex", severity="mild")
    with pytest.raises(ValidationError):
        allergy_status_change(actor=nurse, allergy=latex, status="active")


def test_no_known_allergies_is_explicit_and_cleared_by_a_new_allergy(nurse, patient):
    patient = allergies_none_known(actor=nurse, patient=patient)
    assert patient.no_known_allergies
    allergy_add(actor=nurse, patient=patient, substance="Peanuts", severity="severe")
    patient.refresh_from_db()
    assert not patient.no_known_allergies
    with pytest.raises(ValidationError):
        allergies_none_known(actor=nurse, patient=patient)


@pytest.mark.parametrize("role", [Role.FRONT_DESK, Role.BILLER, Role.ADMIN, Role.PRIVACY_OFFICER])
def test_non_clinical_roles_can_neither_read_nor_write_allergies(patient, role):
    user = UserFactory(username="someone", roles=[role])
    with pytest.raises(AccessDenied):
        allergy_add(actor=user, patient=patient, substance="Latex", severity="mild")
    with pytest.raises(AccessDenied):
        active_allergies(actor=user, patient=patient)
    assert not Allergy.objects.exists()


def test_reading_the_list_is_audited(nurse, patient):
    active_allergies(actor=nurse, patient=patient)
    assert AuditEvent.objects.filter(
        action="patients.allergies_viewed", patient_id=patient.pk, actor=nurse
    ).exists()


def test_the_chart_shows_allergies_to_clinicians_only(client, sign_in, practice, nurse, patient):
    allergy_add(actor=nurse, patient=patient, substance="Penicillin", severity="severe")
    sign_in(client, nurse)
    html = client.get(f"/patients/{patient.pk}/").content.decode()
    assert "Penicillin" in html
    client.post("/accounts/logout/")
    sign_in(client, UserFactory(username="desk2", roles=[Role.FRONT_DESK]))
    html = client.get(f"/patients/{patient.pk}/").content.decode()
    assert "Penicillin" not in html
    assert "Allergies" not in html


def test_adding_through_the_chart(client, sign_in, practice, nurse, patient):
    sign_in(client, nurse)
    response = client.post(
        f"/patients/{patient.pk}/allergies/",
        {"substance": "Sulfa", "reaction": "Rash", "severity": "moderate"},
    )
    assert response.status_code == 302
    assert patient.allergies.get().substance == "Sulfa"
    bad = client.post(f"/patients/{patient.pk}/allergies/", {"substance": "", "severity": "x"})
    assert bad.status_code == 200  # the chart again, with the form's errors
    assert set(bad.context["allergy_form"].errors) == {"substance", "severity"}
    assert patient.allergies.count() == 1


def test_front_desk_cannot_post_allergies(client, sign_in, practice, patient):
    sign_in(client, UserFactory(username="desk3", roles=[Role.FRONT_DESK]))
    response = client.post(
        f"/patients/{patient.pk}/allergies/", {"substance": "Sulfa", "severity": "mild"}
    )
    assert response.status_code == 403
    assert not patient.allergies.exists()
