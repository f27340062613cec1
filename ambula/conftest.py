import pytest
from django.utils.timezone import now as timezone_now

from ambula.accounts.roles import Role
from ambula.accounts.sessions import LAST_ACTIVITY, SIGNED_IN_AT
from ambula.accounts.tests.factories import TEST_PASSWORD, UserFactory
from ambula.core.services import practice_create


@pytest.fixture
def practice(db):
    """A practice that does not require two-step sign-in (tests of MFA turn it on)."""
    return practice_create(actor=None, name="Lakeside Family Practice", mfa_required=False)


@pytest.fixture
def sign_in():
    """Sign a test client in as the user: a session as `session_begin` leaves it, minus the form."""

    def sign_in_as(client, user):
        client.force_login(user)
        session = client.session
        session[SIGNED_IN_AT] = session[LAST_ACTIVITY] = timezone_now().timestamp()
        session.save()
        return client

    return sign_in_as


@pytest.fixture
def physician(db):
    return UserFactory(username="drwho", full_name="Dr. Jamie Rivera")


@pytest.fixture
def admin_user(db):
    return UserFactory(username="boss", full_name="Avery Admin", roles=[Role.ADMIN])


@pytest.fixture
def signed_in_client(client, physician, sign_in):
    return sign_in(client, physician)


@pytest.fixture
def admin_client(client, admin_user, sign_in):
    return sign_in(client, admin_user)


@pytest.fixture
def password():
    return TEST_PASSWORD


@pytest.fixture(scope="session")
def live_server():  # overrides pytest-django's; a conftest outranks a plugin
    """pytest-django's live server, with static files served by WhiteNoise as in production.

    Django's test handler would look files up by their plain names, not the hashed names the
    templates ask for, so it steps aside and the application's own middleware answers.
    """
    from pytest_django.live_server_helper import LiveServer

    server = LiveServer("localhost", start=False)
    server.thread.static_handler = lambda application: application
    server.start()
    yield server
    server.stop()
