import pytest

from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.core.models import Practice

pytestmark = pytest.mark.django_db
RESTRICTED_RECORDS = {"care_relationship": "primary_care", "emergency_access_minutes": "60"}
URL = "/practice/security/"


def test_admin_changes_the_security_settings(admin_client, practice, admin_user):
    response = admin_client.post(
        URL, {**RESTRICTED_RECORDS, "mfa_required": "on", "idle_timeout_minutes": "10"}
    )
    assert response.status_code == 302
    practice = Practice.objects.get()
    assert practice.mfa_required is True
    assert practice.idle_timeout_minutes == 10
    event = AuditEvent.objects.get(action="practice.settings_changed")
    assert event.actor == admin_user
    assert changes_of(event) == {
        "before": {"mfa_required": False, "idle_timeout_minutes": 15},
        "after": {"mfa_required": True, "idle_timeout_minutes": 10},
    }
    assert event.changed_fields == ["after", "before"]


def test_saving_unchanged_settings_records_nothing(admin_client, practice):
    admin_client.post(URL, {**RESTRICTED_RECORDS, "idle_timeout_minutes": "15"})
    assert not AuditEvent.objects.filter(action="practice.settings_changed").exists()


@pytest.mark.parametrize("minutes", ["1", "241", "", "ten", "-5"])
def test_out_of_range_idle_timeouts_are_refused(admin_client, practice, minutes):
    response = admin_client.post(
        URL, {**RESTRICTED_RECORDS, "mfa_required": "on", "idle_timeout_minutes": minutes}
    )
    assert response.status_code == 200
    assert "idle_timeout_minutes" in response.context["form"].errors
    assert Practice.objects.get().idle_timeout_minutes == 15
    assert Practice.objects.get().mfa_required is False


def test_other_roles_cannot_change_security_settings(signed_in_client, practice):
    response = signed_in_client.post(URL, {**RESTRICTED_RECORDS, "idle_timeout_minutes": "240"})
    assert response.status_code == 403
    assert Practice.objects.get().idle_timeout_minutes == 15
    assert AuditEvent.objects.filter(action="auth.access_denied").exists()


def test_a_shorter_idle_timeout_applies_to_open_sessions(admin_client, practice):
    admin_client.post(URL, {**RESTRICTED_RECORDS, "idle_timeout_minutes": "5"})
    assert admin_client.get("/").context["request"].idle_timeout_minutes == 5


def test_admin_sets_who_opens_restricted_records(admin_client, practice):
    settings = {"care_relationship": "nobody", "emergency_access_minutes": "30"}
    response = admin_client.post(URL, {**settings, "idle_timeout_minutes": "15"})
    assert response.status_code == 302
    practice.refresh_from_db()
    assert (practice.care_relationship, practice.emergency_access_minutes) == ("nobody", 30)


@pytest.mark.parametrize("minutes", ["4", "721", "x"])
def test_emergency_access_length_is_bounded(admin_client, practice, minutes):
    response = admin_client.post(
        URL, {**RESTRICTED_RECORDS, "emergency_access_minutes": minutes, "idle_timeout_minutes": 15}
    )
    assert response.status_code == 200
    practice.refresh_from_db()
    assert practice.emergency_access_minutes == 60
