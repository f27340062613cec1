import itertools

import pytest
from django.core.management import call_command

from ambula.accounts.models import User
from ambula.accounts.roles import STAFF_ROLES
from ambula.core.demo import DEMO_PASSWORD, demo_load
from ambula.core.demo_schedule import EXTRA_PROVIDERS
from ambula.core.models import Practice
from ambula.core.services import practice_create
from ambula.scheduling.models import Location

pytestmark = pytest.mark.django_db


def test_demo_creates_one_practice_two_locations_and_one_user_per_staff_role():
    assert demo_load(patients=5) is True
    practice = Practice.objects.get()
    assert practice.is_demo
    assert Location.objects.count() == 2
    users = User.objects.prefetch_related("role_assignments")
    sign_ins = [user for user in users if user.has_usable_password()]
    assert sorted(role for user in sign_ins for role in user.roles) == sorted(STAFF_ROLES)
    assert all(user.check_password(DEMO_PASSWORD) for user in sign_ins)
    assert all(user.email.endswith(".invalid") for user in users)
    # The other bookable clinicians have no sign-in of their own.
    assert len(users) - len(sign_ins) == len(EXTRA_PROVIDERS)


def test_demo_runs_once(capsys):
    call_command("demo", "--patients=5")
    call_command("demo", "--patients=5")
    assert Practice.objects.count() == 1
    assert User.objects.count() == len(STAFF_ROLES) + len(EXTRA_PROVIDERS)
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


def test_demo_records_are_full_and_coherent():
    from ambula.patients.models import Allergy, Coverage, Medication, Patient, Problem
    from ambula.terminology.tests.factories import load_sample_codes

    load_sample_codes()
    assert demo_load(patients=40) is True
    patients = Patient.objects.all()
    # Most have a plan, children on someone else's; every record says something about allergies.
    assert Coverage.objects.count() >= 30
    for coverage in Coverage.objects.select_related("patient"):
        expected = "18" if coverage.patient.age >= 18 else "19"
        assert coverage.relationship == expected
    assert all(patient.no_known_allergies or patient.allergies.exists() for patient in patients)
    assert Allergy.objects.exists() and patients.filter(no_known_allergies=True).exists()
    # Problems only with codes from the loaded table; hypertension comes with its medication.
    assert Problem.objects.exists()
    for problem in Problem.objects.filter(code="I10"):
        assert Medication.objects.filter(patient=problem.patient, name="Lisinopril").exists()
    assert (
        patients.filter(restricted=True, primary_care_provider__username="physician").count() == 2
    )
    # Some plans come with a scanned card: a real PNG in the encrypted document store.
    scanned = Coverage.objects.filter(card_front__isnull=False).select_related("card_front")
    assert scanned.exists()
    assert {coverage.card_front.content_type for coverage in scanned} == {"image/png"}


def test_demo_schedule_has_templates_history_and_bookings_without_overlaps():
    from django.utils.timezone import now

    from ambula.scheduling.models import Appointment, Provider, ScheduleBlock

    assert demo_load(patients=30) is True
    assert Provider.objects.count() == 3
    assert ScheduleBlock.objects.exists()
    past = Appointment.objects.filter(starts_at__lt=now())
    assert {"completed", "no_show", "cancelled"} <= set(past.values_list("status", flat=True))
    upcoming = Appointment.objects.filter(starts_at__gte=now(), status="scheduled")
    assert upcoming.exists()
    # Nothing double-booked: no provider holds two active visits at overlapping times.
    active = list(
        Appointment.objects.exclude(status__in=["cancelled", "no_show"]).order_by(
            "provider", "starts_at"
        )
    )
    for before, after in itertools.pairwise(active):
        if before.provider_id == after.provider_id:
            assert after.starts_at >= before.blocked_until
