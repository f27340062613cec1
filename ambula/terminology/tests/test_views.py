import pytest

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.terminology.tests.factories import load_sample_codes

pytestmark = pytest.mark.django_db

URL = "/codes/icd10/"


@pytest.fixture(autouse=True)
def codes():
    load_sample_codes()


@pytest.mark.parametrize("role", [Role.PHYSICIAN, Role.NURSE])
def test_clinicians_get_matching_codes_as_options(client, sign_in, practice, role):
    sign_in(client, UserFactory(username="clinician", roles=[role]))
    events_before = AuditEvent.objects.count()
    response = client.get(URL, {"q": "type 2 diab"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('role="option"') == 3
    assert 'data-code="E11.9"' in html
    assert "Type 2 diabetes mellitus without complications" in html
    assert html.count("category — not billable") == 1  # E11 only
    assert "<html" not in html  # a fragment for the picker
    assert AuditEvent.objects.count() == events_before  # reference data: not audited


def test_no_match_says_so_and_an_empty_query_says_nothing(client, sign_in, practice, physician):
    sign_in(client, physician)
    html = client.get(URL, {"q": "xyzzy"}).content.decode()
    assert "No ICD-10-CM code matches “xyzzy”" in html
    assert 'role="option"' not in html
    assert client.get(URL).content.decode().strip() == ""
    assert client.get(URL, {"q": "   "}).content.decode().strip() == ""


def test_the_query_is_escaped(client, sign_in, practice, physician):
    sign_in(client, physician)
    html = client.get(URL, {"q": "<script>alert(1)</script>"}).content.decode()
    assert "<script>alert" not in html
    assert "&lt;script&gt;" in html


def test_only_get_is_answered(client, sign_in, practice, physician):
    sign_in(client, physician)
    assert client.post(URL, {"q": "diab"}).status_code == 405


@pytest.mark.parametrize("role", [Role.FRONT_DESK, Role.BILLER, Role.ADMIN, Role.PRIVACY_OFFICER])
def test_roles_without_the_clinical_chart_are_refused(client, sign_in, practice, role):
    sign_in(client, UserFactory(username="other", roles=[role]))
    response = client.get(URL, {"q": "diab"})
    assert response.status_code == 403
    assert "E11.9" not in response.content.decode()


def test_anonymous_visitors_are_sent_to_sign_in(client, practice):
    response = client.get(URL, {"q": "diab"})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
