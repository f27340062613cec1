"""Every URL in the project, against every role: the permission policy's contract.

A new URL without an access declaration fails `test_every_view_declares_its_access`; a
declaration that the middleware does not enforce fails the matrix.
"""

import io
from datetime import date, time, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpResponse
from django.urls import URLPattern, URLResolver, get_resolver, path, reverse
from PIL import Image

from ambula.accounts.policy import BEARER_TOKEN, PUBLIC, SIGNED_IN, can, declared_access
from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.services import record
from ambula.patients.allergies import allergy_add
from ambula.patients.coverage import coverage_add, payer_create
from ambula.patients.demographics import contact_add
from ambula.patients.documents import document_upload
from ambula.patients.emergency import emergency_access_grant
from ambula.patients.history import history_add
from ambula.patients.medications import medication_add
from ambula.patients.problems import problem_add
from ambula.patients.services import patient_register
from ambula.scheduling.availability import wall_clock
from ambula.scheduling.booking import appointment_book
from ambula.scheduling.tests.factories import (
    make_block,
    make_exception,
    make_location,
    make_provider,
    make_room,
    make_type,
)
from ambula.terminology.tests.factories import load_sample_codes

ANONYMOUS = "anonymous"
SAMPLE_ARGUMENTS = {
    "uidb64": "Tk8tU1VDSC1VU0VS",
    "token": "c0ffee-0000000000000000000000000000",
    "action": "unlock",
    "status": "resolved",
    "resource_type": "Patient",
    "version_id": "1",
    "rest": "nothing-here",
}


def all_url_patterns(patterns=None, namespace=""):
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from all_url_patterns(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern):
            yield f"{namespace}{pattern.name}", pattern


URL_NAMES = sorted(name for name, _ in all_url_patterns())
ROLES = [ANONYMOUS, *Role]


def test_every_view_declares_its_access():
    undeclared = [
        name for name, pattern in all_url_patterns() if declared_access(pattern.callback) is None
    ]
    assert undeclared == []


def test_every_url_pattern_has_a_name():
    assert all(name and not name.endswith("None") for name in URL_NAMES)


def url_for(name: str, objects: dict[str, str]) -> str:
    """The URL, with ids of real objects where it names one, sample values elsewhere."""
    pattern = dict(all_url_patterns())[name]
    kwargs = {
        key: objects.get(key, SAMPLE_ARGUMENTS.get(key)) for key in pattern.pattern.converters
    }
    return reverse(name, kwargs=kwargs)


def request(client, url: str):
    """GET, or POST for views that only take POST (they answer GET with 405)."""
    response = client.get(url)
    if response.status_code == 405:
        response = client.post(url)
    return response


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", URL_NAMES)
def test_role_url_matrix(client, practice, sign_in, name, role):
    target_user = UserFactory(username="target", roles=[Role.NURSE])
    event = record(
        actor=None, action="accounts.user_created", category="accounts", target=target_user
    )
    patient = patient_register(
        actor=UserFactory(username="clerk", roles=[Role.FRONT_DESK]),
        given_name="Sample",
        family_name="Patient",
        date_of_birth=date(1980, 1, 2),
        administrative_sex="F",
    )
    allergy = allergy_add(
        actor=UserFactory(username="nurse0", roles=[Role.NURSE]),
        patient=patient,
        substance="Latex",
        severity="mild",
    )
    medication = medication_add(
        actor=UserFactory(username="nurse1", roles=[Role.NURSE]),
        patient=patient,
        name="Metformin",
        route="oral",
    )
    history_entry = history_add(
        actor=UserFactory(username="nurse2", roles=[Role.NURSE]),
        patient=patient,
        kind="medical",
        condition="Asthma",
    )
    # A category every role that sees the chart may see, so download and preview answer 200.
    card = io.BytesIO()
    Image.new("RGB", (8, 8)).save(card, "PNG")
    document = document_upload(
        actor=UserFactory(username="clerk2", roles=[Role.FRONT_DESK]),
        patient=patient,
        uploaded_file=SimpleUploadedFile("card.png", card.getvalue()),
        category="insurance_card",
    )
    payer = payer_create(
        actor=UserFactory(username="admin0", roles=[Role.ADMIN]),
        name="Sample Health Plan",
        payer_id="SMP01",
    )
    coverage = coverage_add(
        actor=UserFactory(username="clerk3", roles=[Role.FRONT_DESK]),
        patient=patient,
        payer=payer,
        member_id="SMP123456",
        priority=1,
        relationship="18",
    )
    contact = contact_add(
        actor=UserFactory(username="clerk4", roles=[Role.FRONT_DESK]),
        patient=patient,
        kind="emergency",
        name="Sample Contact",
        relationship="Spouse",
        phone="217-555-0100",
    )
    load_sample_codes()
    problem = problem_add(
        actor=UserFactory(username="nurse3", roles=[Role.NURSE]), patient=patient, code="I10"
    )
    grant = emergency_access_grant(
        actor=UserFactory(username="nurse4", roles=[Role.NURSE]),
        patient=patient,
        reason="Covering the clinic for a colleague",
    )
    location = make_location("Sample Clinic")
    room = make_room(location)
    provider = make_provider()
    (block, *_) = make_block(provider, location)
    upcoming_closure = make_exception(
        "closure",
        wall_clock(date.today() + timedelta(days=20), time(0)),
        wall_clock(date.today() + timedelta(days=21), time(0)),
        location=location,
    )
    appointment = appointment_book(
        actor=UserFactory(username="clerk5", roles=[Role.FRONT_DESK]),
        patient=patient,
        provider=provider,
        location=location,
        appointment_type=make_type("Sample visit"),
        starts_at=wall_clock(date.today() + timedelta(days=3), time(10)),
    )
    user = None
    if role != ANONYMOUS:
        user = UserFactory(username="visitor", roles=[role])
        sign_in(client, user)
    url = url_for(
        name,
        {
            "user_id": str(target_user.pk),
            "event_id": str(event.pk),
            "patient_id": str(patient.pk),
            "allergy_id": str(allergy.pk),
            "medication_id": str(medication.pk),
            "history_entry_id": str(history_entry.pk),
            "document_id": str(document.pk),
            "payer_id": str(payer.pk),
            "coverage_id": str(coverage.pk),
            "contact_id": str(contact.pk),
            "problem_id": str(problem.pk),
            "grant_id": str(grant.pk),
            "provider_id": str(provider.pk),
            "appointment_id": str(appointment.pk),
            "location_id": str(location.pk),
            "resource_id": str(room.pk),
            "block_id": str(block.pk),
            "appointment_type_id": str(appointment.appointment_type_id),
            "exception_id": str(upcoming_closure.pk),
        },
    )
    access = declared_access(dict(all_url_patterns())[name].callback)
    response = request(client, url)

    assert response.status_code < 500, response.status_code
    if access == PUBLIC:
        assert response.status_code != 403
    elif access == BEARER_TOKEN:
        # The API takes bearer tokens only: a signed-in browser session opens nothing there.
        assert response.status_code == 401
    elif user is None:
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")
    elif access == SIGNED_IN or can(user, access):
        assert response.status_code in (200, 204, 302), response.status_code
        assert not response.get("Location", "").startswith("/accounts/login/")
    else:
        assert response.status_code == 403


def undeclared_view(request):
    return HttpResponse("should never be served")


urlpatterns = [path("undeclared/", undeclared_view)]


@pytest.mark.urls("ambula.accounts.tests.test_access_matrix")
def test_a_view_without_a_declaration_is_refused_even_to_admins(admin_client, caplog):
    response = admin_client.get("/undeclared/")
    assert response.status_code == 403
    assert "declares no access" in caplog.text
