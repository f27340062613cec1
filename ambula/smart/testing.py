"""Helpers for tests that need a real bearer token (the FHIR API's tests, ours)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils.timezone import now as timezone_now
from oauth2_provider.models import AccessToken, set_token_value
from oauthlib.common import generate_token

from ambula.accounts.roles import Role
from ambula.smart.models import ApiClient, LaunchContext
from ambula.smart.services import api_client_register

_counter = iter(range(1, 1_000_000))


def _test_client(kind: str, scopes: str, role: str | None = None) -> ApiClient:
    registration = api_client_register(
        actor=None,
        name=f"Test app {next(_counter)}",
        kind=kind,
        scopes=scopes,
        redirect_uris="https://app.example.test/callback" if role is None else "",
        role=role,
    )
    return registration.client


@transaction.atomic
def issue_token(
    user: Any,
    scopes: str,
    *,
    patient: Any = None,
    client: ApiClient | None = None,
    expires_in: int = 3600,
) -> str:
    """Issue a real access token to `user` through `client` and return the bearer string.

    Without a client, an app client allowed exactly `scopes` is registered. The scopes are
    stored as given (normalised), not narrowed: tests of narrowing go through the endpoints.
    """
    if client is None:
        client = _test_client(ApiClient.Kind.APP, _resource_part(scopes))
    return _issue(user=user, client=client, scopes=scopes, patient=patient, expires_in=expires_in)


def system_token(scopes: str, *, role: str = Role.FRONT_DESK, expires_in: int = 3600) -> str:
    """A client-credentials token for an internal client whose service account holds `role`."""
    client = _test_client(ApiClient.Kind.INTERNAL, scopes, role=str(role))
    return _issue(user=None, client=client, scopes=scopes, patient=None, expires_in=expires_in)


def _resource_part(scopes: str) -> str:
    from ambula.smart.scopes import Scopes

    parsed = Scopes.parse(scopes)
    # A client needs at least one resource scope to be registered.
    return str(parsed) if parsed.resources else f"{scopes} user/Patient.r"


def _issue(*, user, client: ApiClient, scopes: str, patient, expires_in: int) -> str:
    from ambula.audit.services import record
    from ambula.smart.scopes import Scopes

    raw = generate_token()
    token = AccessToken(
        user=user,
        application=client.application,
        expires=timezone_now() + timedelta(seconds=expires_in),
        scope=str(Scopes.parse(scopes)),
    )
    set_token_value(token, raw)
    token.save()
    if patient is not None:
        LaunchContext.objects.create(access_token=token, patient=patient)
    record(
        actor=user,
        action="smart.token_issued",
        category="api",
        patient=patient,
        changes={"client_id": client.application.client_id, "scope": token.scope},
    )
    return raw
