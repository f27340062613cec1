"""Who is calling the FHIR API: the bearer token, resolved to a user, a client and scopes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from uuid import UUID

from django.http import HttpRequest
from django.utils.timezone import now as timezone_now
from oauth2_provider.models import AccessToken

from ambula.smart.scopes import Scopes


class Unauthorized(Exception):
    """No usable bearer token: missing, malformed, unknown, expired, revoked, or its user gone."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Grant:
    """What a scope allows: everything the user's role allows, or one patient's compartment."""

    patient_id: UUID | None


@dataclass(frozen=True)
class Principal:
    user: Any
    client_id: str
    client_name: str
    scopes: Scopes
    patient_id: UUID | None

    def grant(self, resource_type: str, letter: str) -> Grant | None:
        """Tell what the token's scopes allow for this letter (c r u d s) on this type.

        A user/ or system/ scope allows it without a compartment (the role still bounds it);
        a patient/ scope only within the launch patient's compartment, and not at all when the
        token carries no patient.
        """
        contexts = self.scopes.contexts(resource_type, letter)
        if "user" in contexts or "system" in contexts:
            return Grant(None)
        if "patient" in contexts and self.patient_id is not None:
            return Grant(self.patient_id)
        return None


_MAX_TOKEN_LENGTH = 4096
# Tokens share a handful of scope strings; Scopes are never changed once made.
_parsed_scopes = lru_cache(maxsize=1024)(Scopes.parse)


def authenticate(request: HttpRequest) -> Principal:
    """Resolve the request's `Authorization: Bearer` token, or raise Unauthorized."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("A bearer token is required.")
    if len(token) > _MAX_TOKEN_LENGTH or not token.isascii():
        raise Unauthorized("The token is not valid.")
    checksum = hashlib.sha256(token.encode()).hexdigest()
    # A slice, not .first(): ordering by pk would only add work to a unique lookup.
    rows = AccessToken.objects.select_related(
        "user",
        "application__smart_client__service_user",
        "launch_context",
    ).filter(token_checksum=checksum)[:1]
    row = next(iter(rows), None)
    # Revoked access tokens are deleted by DOT, so a revoked token is simply not found.
    if row is None or row.application is None:
        raise Unauthorized("The token is not valid.")
    if row.expires <= timezone_now():
        raise Unauthorized("The token has expired.")
    client = getattr(row.application, "smart_client", None)
    if client is None or client.revoked_at is not None:
        raise Unauthorized("The client this token was issued to has been revoked.")
    user = row.user or client.service_user
    if user is None or not user.is_active:
        raise Unauthorized("The account behind this token is not active.")
    try:
        patient_id = row.launch_context.patient_id
    except AccessToken.launch_context.RelatedObjectDoesNotExist:
        patient_id = None
    return Principal(
        user=user,
        client_id=row.application.client_id,
        client_name=row.application.name,
        scopes=_parsed_scopes(row.scope),
        patient_id=patient_id,
    )
