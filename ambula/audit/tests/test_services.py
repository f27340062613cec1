import dataclasses
from ipaddress import ip_network

import pytest
from django.test import RequestFactory

from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of, record
from ambula.core.middleware import client_ip
from ambula.logging import client_ip_var, request_id_var, user_agent_var

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def test_record_stores_who_what_when_where(physician):
    ip_token = client_ip_var.set("203.0.113.7")
    request_token = request_id_var.set("req-000000001")
    agent_token = user_agent_var.set("Mozilla/5.0 (Ward PC)")
    try:
        event = record(
            actor=physician,
            action="auth.signed_in",
            category="authentication",
            target=physician,
            changes={"method": "password"},
        )
    finally:
        client_ip_var.reset(ip_token)
        request_id_var.reset(request_token)
        user_agent_var.reset(agent_token)
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.actor == physician
    assert stored.actor_username == physician.username
    assert stored.actor_roles == "physician"
    assert stored.action == "auth.signed_in"
    assert stored.kind == "login"
    assert stored.target_type == "accounts.user"
    assert stored.target_id == str(physician.pk)
    assert stored.ip_address == "203.0.113.7"
    assert stored.user_agent == "Mozilla/5.0 (Ward PC)"
    assert stored.request_id == "req-000000001"
    assert stored.outcome == "success"
    assert stored.occurred_at is not None
    # The names of the changed fields are readable; their values only with the keys.
    assert stored.changed_fields == ["method"]
    assert "password" not in stored.changes
    assert changes_of(stored) == {"method": "password"}
    assert len(stored.mac) == 64
    assert stored.mac != stored.previous_mac


def test_events_are_numbered_and_each_links_to_the_one_before(physician):
    first = record(actor=None, action="accounts.user_created", category="accounts")
    second = record(actor=physician, action="auth.signed_out", category="authentication")

    assert second.sequence == first.sequence + 1
    assert second.previous_mac == first.mac
    assert list(AuditEvent.objects.values_list("sequence", flat=True))[-2:] == [
        first.sequence,
        second.sequence,
    ]


def test_record_without_a_request_or_an_actor():
    event = record(actor=None, action="accounts.user_created", category="accounts")
    assert event.actor is None
    assert event.actor_username == ""
    assert event.actor_roles == ""
    assert event.ip_address is None
    assert event.user_agent == ""
    assert event.request_id == ""
    assert event.changes == ""
    assert event.changed_fields == []
    assert changes_of(event) == {}


def test_a_username_names_who_an_event_without_an_actor_was_about():
    event = record(
        actor=None,
        action="auth.sign_in_failed",
        category="authentication",
        outcome=AuditEvent.Outcome.FAILURE,
        username="Somebody",
        changes={"reason": "password"},
    )

    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.actor is None
    assert stored.actor_username == "Somebody"
    assert stored.kind == "login_failed"
    assert changes_of(stored) == {"reason": "password"}


def test_unknown_actions_are_refused():
    with pytest.raises(ValueError, match=r"actions\.py"):
        record(actor=None, action="auth.teleported", category="authentication")
    assert not AuditEvent.objects.exists()


# The client's address


def signed_in_from(client, physician, password, **headers) -> str:
    """Sign in through the form; return the address the audit trail recorded."""
    response = client.post(LOGIN, {"username": physician.username, "password": password}, **headers)
    assert response.status_code == 302
    return AuditEvent.objects.get(action="auth.signed_in").ip_address


@pytest.fixture
def behind_proxy(settings):
    """AMBULA_BEHIND_PROXY on; AMBULA_TRUSTED_PROXIES as given (default: this machine)."""

    def configure(*trusted: str) -> None:
        changes = {"behind_proxy": True}
        if trusted:
            changes["trusted_proxies"] = tuple(ip_network(network) for network in trusted)
        settings.CONFIG = dataclasses.replace(settings.CONFIG, **changes)

    return configure


def test_requests_record_the_client_address(client, practice, physician, password):
    client.post(LOGIN, {"username": physician.username, "password": password})
    event = AuditEvent.objects.get(action="auth.signed_in")
    assert event.ip_address == "127.0.0.1"
    assert len(event.request_id) == 32


def test_behind_a_trusted_proxy_the_forwarded_address_is_recorded(
    client, practice, physician, password, behind_proxy
):
    behind_proxy()  # the default trusts 127.0.0.1, where the test client comes from

    # The proxy appends the address it saw; anything to its left the client may have made up.
    address = signed_in_from(
        client, physician, password, HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.9"
    )

    assert address == "203.0.113.9"


def test_a_forwarded_header_from_an_untrusted_address_is_ignored_even_behind_a_proxy(
    client, practice, physician, password, behind_proxy
):
    behind_proxy()

    # Straight to the app, past the proxy: the header is the sender's own invention.
    address = signed_in_from(
        client,
        physician,
        password,
        REMOTE_ADDR="198.51.100.20",
        HTTP_X_FORWARDED_FOR="203.0.113.9",
    )

    assert address == "198.51.100.20"


def test_a_chain_of_trusted_proxies_is_read_from_the_right(
    client, practice, physician, password, behind_proxy
):
    behind_proxy("10.0.0.0/8")

    address = signed_in_from(
        client,
        physician,
        password,
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.2",
    )

    assert address == "203.0.113.9"


def test_a_forged_forwarded_header_is_ignored_without_a_proxy(
    client, practice, physician, password
):
    address = signed_in_from(client, physician, password, HTTP_X_FORWARDED_FOR="203.0.113.9")

    assert address == "127.0.0.1"


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        ("10.0.0.1", "203.0.113.9", "203.0.113.9"),
        ("10.0.0.1", "192.0.2.1, 203.0.113.9, 10.0.0.3", "203.0.113.9"),
        ("10.0.0.1", "", "10.0.0.1"),
        ("10.0.0.1", "not-an-address", "10.0.0.1"),
        ("10.0.0.1", "10.0.0.2, 10.0.0.3", "10.0.0.1"),
        ("198.51.100.20", "203.0.113.9", "198.51.100.20"),
        ("::1", "2001:db8::7", "2001:db8::7"),
        ("2001:db8::5", "203.0.113.9", "2001:db8::5"),
        ("", "203.0.113.9", ""),
    ],
    ids=[
        "one-hop",
        "past-trusted-hops",
        "no-header",
        "garbage-header",
        "only-trusted-hops",
        "untrusted-sender",
        "ipv6",
        "untrusted-ipv6-sender",
        "no-remote-address",
    ],
)
def test_client_ip_trusts_the_header_only_from_trusted_proxies(
    behind_proxy, remote, forwarded, expected
):
    behind_proxy("10.0.0.0/8", "::1")
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)

    assert client_ip(request) == expected


def test_client_ip_ignores_the_header_when_not_behind_a_proxy(settings):
    assert settings.CONFIG.behind_proxy is False
    request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")

    assert client_ip(request) == "127.0.0.1"
