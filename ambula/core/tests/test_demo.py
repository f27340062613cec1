import pytest
from django.core.management import call_command

from ambula.accounts.models import User
from ambula.accounts.roles import STAFF_ROLES
from ambula.core.demo import DEMO_PASSWORD, demo_load
from ambula.core.models import Practice
from ambula.core.services import practice_create
from ambula.scheduling.models import Location

pytestmark = pytest.mark.django_db


def test_demo_creates_one_practice_two_locations_and_one_user_per_staff_role():
    assert demo_load() is True
    practice = Practice.objects.get()
    assert practice.is_demo
    assert Location.objects.count() == 2
    users = User.objects.prefetch_related("role_assignments")
    assert sorted(role for user in users for role in user.roles) == sorted(STAFF_ROLES)
    assert all(user.check_password(DEMO_PASSWORD) for user in users)
    assert all(user.email.endswith(".invalid") for user in users)


def test_demo_runs_once(capsys):
    call_command("demo")
    call_command("demo")
    assert Practice.objects.count() == 1
    assert User.objects.count() == len(STAFF_ROLES)
    assert "admin" in capsys.readouterr().out


def test_demo_never_touches_a_real_practice(capsys):
    practice_create(actor=None, name="Lakeside Pediatrics")
    assert demo_load() is False
    call_command("demo")
    assert "was not loaded" in capsys.readouterr().out
    assert not User.objects.exists()
    assert Practice.objects.get().name == "Lakeside Pediatrics"


def test_demo_patients_are_registered_through_the_service_and_audited():
    from ambula.audit.models import AuditEvent
    from ambula.patients.models import Patient

    assert demo_load(patients=12) is True
    assert Patient.objects.count() == 12
    assert AuditEvent.objects.filter(action="patients.registered").count() == 12
    assert all(patient.mobile_phone.startswith("(217) 555-") for patient in Patient.objects.all())


def test_the_demo_command_takes_a_patient_count(capsys):
    from ambula.patients.models import Patient

    call_command("demo", "--patients=3")
    assert Patient.objects.count() == 3
    assert "with 3 synthetic patients" in capsys.readouterr().out
