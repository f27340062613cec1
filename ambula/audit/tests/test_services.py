import pytest

from ambula.audit.models import AuditEvent
from ambula.audit.services import record
from ambula.logging import client_ip_var, request_id_var

pytestmark = pytest.mark.django_db


def test_record_stores_who_what_when_where(physician):
    ip_token = client_ip_var.set("203.0.113.7")
    request_token = request_id_var.set("req-000000001")
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
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.actor == physician
    assert stored.actor_roles == "physician"
    assert stored.target_type == "accounts.user"
    assert stored.target_id == str(physician.pk)
    assert stored.ip_address == "203.0.113.7"
    assert stored.request_id == "req-000000001"
    assert stored.outcome == "success"
    assert stored.occurred_at is not None
    assert stored.changes == {"method": "password"}


def test_record_without_a_request_or_an_actor():
    event = record(actor=None, action="accounts.user_created", category="accounts")
    assert event.actor is None
    assert event.actor_roles == ""
    assert event.ip_address is None
    assert event.request_id == ""


def test_unknown_actions_are_refused():
    with pytest.raises(ValueError, match=r"actions\.py"):
        record(actor=None, action="auth.teleported", category="authentication")
    assert not AuditEvent.objects.exists()


def test_requests_record_the_client_address(client, practice, physician, password):
    client.post("/accounts/login/", {"username": physician.username, "password": password})
    event = AuditEvent.objects.get(action="auth.signed_in")
    assert event.ip_address == "127.0.0.1"
    assert len(event.request_id) == 32


def test_behind_a_proxy_the_forwarded_address_is_recorded(
    client, practice, physician, password, settings
):
    from dataclasses import replace

    settings.CONFIG = replace(settings.CONFIG, behind_proxy=True)
    client.post(
        "/accounts/login/",
        {"username": physician.username, "password": password},
        HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.9",
    )
    assert AuditEvent.objects.get(action="auth.signed_in").ip_address == "203.0.113.9"


def test_a_forged_forwarded_header_is_ignored_without_a_proxy(
    client, practice, physician, password
):
    client.post(
        "/accounts/login/",
        {"username": physician.username, "password": password},
        HTTP_X_FORWARDED_FOR="203.0.113.9",
    )
    assert AuditEvent.objects.get(action="auth.signed_in").ip_address == "127.0.0.1"
