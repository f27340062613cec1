import pytest
from django.test import Client

from ambula.accounts.services import user_deactivate
from ambula.accounts.tests.factories import TEST_PASSWORD, UserFactory
from ambula.core.demo import DEMO_PASSWORD, demo_load
from ambula.core.models import Practice

# A practice without two-step sign-in: test_mfa_views.py covers the second step.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("practice")]

LOGIN = "/accounts/login/"
GENERIC_ERROR = "That username and password do not match"


def sign_in(client, username, password):
    return client.post(LOGIN, {"username": username, "password": password})


def test_login_page_has_a_heading_labels_and_title(client):
    html = client.get(LOGIN).content.decode()
    assert "<title>Sign in" in html
    assert "<h1" in html
    assert '<label for="id_username">' in html
    assert '<label for="id_password">' in html
    assert 'autocomplete="current-password"' in html


def never_cached(response) -> bool:
    directives = {part.strip() for part in response["Cache-Control"].split(",")}
    return {"no-store", "no-cache"} <= directives


def test_the_sign_in_page_is_never_stored_by_a_browser_or_proxy(client):
    assert never_cached(client.get(LOGIN))
    failed = sign_in(client, "nobody-here", "not-the-password-at-all")
    assert GENERIC_ERROR in failed.content.decode()
    assert never_cached(failed)


def test_sign_in_reaches_the_home_page(client, physician):
    response = sign_in(client, physician.username, TEST_PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert physician.full_name in home.content.decode()


def test_sign_in_follows_a_safe_next_but_not_an_external_one(client, physician):
    response = client.post(
        LOGIN + "?next=/healthz",
        {"username": physician.username, "password": TEST_PASSWORD, "next": "/healthz"},
    )
    assert response["Location"] == "/healthz"
    client.post("/accounts/logout/")
    response = client.post(
        LOGIN,
        {"username": physician.username, "password": TEST_PASSWORD, "next": "https://evil.test/"},
    )
    assert response["Location"] == "/"


def test_sign_in_gives_a_new_session_id(client, physician):
    client.get(LOGIN)
    client.session.save()
    before = client.session.session_key
    sign_in(client, physician.username, TEST_PASSWORD)
    assert client.session.session_key != before


@pytest.mark.parametrize("case", ["wrong password", "unknown user", "inactive user", "empty"])
def test_failed_sign_in_never_reveals_whether_the_user_exists(client, case, admin_user):
    user = UserFactory(username="casey")
    if case == "inactive user":
        user_deactivate(actor=admin_user, user=user)
    username, password = {
        "wrong password": ("casey", "not-the-password-at-all"),
        "unknown user": ("nobody-here", TEST_PASSWORD),
        "inactive user": ("casey", TEST_PASSWORD),
        "empty": ("", ""),
    }[case]
    response = sign_in(client, username, password)
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    html = response.content.decode()
    if case == "empty":
        assert "This field is required." in html
    else:
        assert GENERIC_ERROR in html


def test_home_needs_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN}?next=/"


def test_signed_in_user_visiting_login_goes_home(signed_in_client):
    assert signed_in_client.get(LOGIN)["Location"] == "/"


def test_sign_out_needs_post_and_ends_the_session(signed_in_client):
    assert signed_in_client.get("/accounts/logout/").status_code == 405
    assert signed_in_client.get("/").status_code == 200
    response = signed_in_client.post("/accounts/logout/")
    assert response["Location"] == LOGIN
    assert signed_in_client.get("/").status_code == 302


def test_session_cookie_replayed_after_sign_out_is_dead(physician):
    client = Client()
    sign_in(client, physician.username, TEST_PASSWORD)
    stolen = client.cookies["ambula_session"].value
    client.post("/accounts/logout/")
    replay = Client()
    replay.cookies["ambula_session"] = stolen
    assert replay.get("/").status_code == 302


def test_sign_in_without_csrf_token_is_refused_with_a_helpful_page(physician):
    client = Client(enforce_csrf_checks=True)
    response = sign_in(client, physician.username, TEST_PASSWORD)
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_demo_practice_login_page_lists_the_demo_logins(client):
    Practice.objects.all().delete()
    demo_load(patients=5)
    html = client.get(LOGIN).content.decode()
    assert "Demo practice" in html
    assert DEMO_PASSWORD in html
    assert "frontdesk" in html
    assert sign_in(client, "frontdesk", DEMO_PASSWORD).status_code == 302


def test_a_real_practice_login_page_shows_no_demo_logins(client):
    html = client.get(LOGIN).content.decode()
    assert "Lakeside Family Practice" in html
    assert DEMO_PASSWORD not in html


def test_unknown_page_is_a_friendly_404(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()
