import pytest

from ambula.accounts.tests.factories import TEST_PASSWORD, UserFactory


@pytest.fixture
def physician(db):
    return UserFactory(username="drwho", full_name="Dr. Jamie Rivera")


@pytest.fixture
def signed_in_client(client, physician):
    client.login(username=physician.username, password=TEST_PASSWORD)
    return client


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
