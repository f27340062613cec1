"""Registering and revoking API clients. Every change is audited."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.timezone import now as timezone_now
from django.utils.translation import gettext as _
from oauth2_provider.models import AccessToken, Application, RefreshToken

from ambula.accounts.policy import Capability, require
from ambula.accounts.roles import STAFF_ROLES, Role
from ambula.accounts.services import user_create
from ambula.audit.services import record
from ambula.smart.models import ApiClient
from ambula.smart.scopes import Scopes

USER_FACING_KINDS = (ApiClient.Kind.APP, ApiClient.Kind.CONFIDENTIAL_APP)
SYSTEM_KINDS = (ApiClient.Kind.BACKEND, ApiClient.Kind.INTERNAL)
SECRET_KINDS = (ApiClient.Kind.CONFIDENTIAL_APP, ApiClient.Kind.INTERNAL)
MAX_JWKS_BYTES = 64 * 1024


@dataclass(frozen=True)
class Registration:
    client: ApiClient
    # Shown once: only its hash is stored.
    client_secret: str | None

    @property
    def client_id(self) -> str:
        return self.client.application.client_id


def _is_local(host: str | None) -> bool:
    return host in ("localhost", "127.0.0.1", "::1")


def clean_redirect_uris(text: str) -> list[str]:
    """The redirect URIs, one per line or space: https, or http on this machine only."""
    uris = list(dict.fromkeys(text.split()))
    for uri in uris:
        parts = urlsplit(uri)
        if parts.fragment or not parts.netloc:
            raise ValidationError(
                {"redirect_uris": _("%(uri)s is not an absolute address.") % {"uri": uri}},
                code="redirect_uri_invalid",
            )
        if parts.scheme == "https" or (parts.scheme == "http" and _is_local(parts.hostname)):
            continue
        raise ValidationError(
            {
                "redirect_uris": _("%(uri)s must use https (http only for localhost).")
                % {"uri": uri}
            },
            code="redirect_uri_insecure",
        )
    return uris


def clean_scopes(text: str, *, kind: str) -> Scopes:
    """The client's allowed scopes: known ones only, in the contexts its kind may use."""
    scopes = Scopes.parse(text)
    if scopes.unknown or scopes.ignored:
        raise ValidationError(
            {
                "scopes": _("Not a scope this server supports: %(scopes)s")
                % {"scopes": " ".join(sorted(scopes.unknown | scopes.ignored))}
            },
            code="scope_unknown",
        )
    if not scopes.resources:
        raise ValidationError(
            {"scopes": _("Give at least one resource scope, like patient/*.rs.")},
            code="scope_required",
        )
    contexts = ("system",) if kind in SYSTEM_KINDS else ("patient", "user")
    if scopes.context_names - set(contexts):
        raise ValidationError(
            {
                "scopes": _("This kind of client may only have %(contexts)s scopes.")
                % {"contexts": " or ".join(f"{context}/" for context in contexts)}
            },
            code="scope_context",
        )
    return scopes


def clean_jwks(value: Any) -> dict:
    """A JWK Set of public RSA or EC keys, each with a `kid`."""
    from jwcrypto import jwk

    if isinstance(value, str):
        if len(value.encode()) > MAX_JWKS_BYTES:
            raise ValidationError({"jwks": _("The key set is too large.")}, code="jwks_size")
        try:
            value = json.loads(value)
        except ValueError:
            raise ValidationError(
                {"jwks": _("The key set is not valid JSON.")}, code="jwks_json"
            ) from None
    keys = value.get("keys") if isinstance(value, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ValidationError(
            {"jwks": _('Give a JWK Set: {"keys": [...]}, with at least one key.')},
            code="jwks_shape",
        )
    kids = set()
    for key in keys:
        try:
            parsed = jwk.JWK(**key) if isinstance(key, dict) else None
        except Exception:  # jwcrypto raises several types for a malformed key
            parsed = None
        if parsed is None or parsed.get("kty") not in ("RSA", "EC") or not key.get("kid"):
            raise ValidationError(
                {"jwks": _("Each key must be an RSA or EC public key with a kid.")},
                code="jwks_key",
            )
        if parsed.has_private:
            raise ValidationError(
                {"jwks": _("Register only public keys; this set holds a private key.")},
                code="jwks_private",
            )
        if key["kid"] in kids:
            raise ValidationError({"jwks": _("Two keys share a kid.")}, code="jwks_kid")
        kids.add(key["kid"])
    return {"keys": keys}


@transaction.atomic
def api_client_register(
    *,
    actor: Any | None,
    name: str,
    kind: str,
    scopes: str,
    redirect_uris: str = "",
    jwks: Any = None,
    role: str | None = None,
) -> Registration:
    """Register an API client; return it with its secret (secret kinds only), shown once.

    `actor=None` is the command line (the operator). Backend and internal clients get a
    service account holding `role`, which bounds what their system tokens can do.
    """
    if actor is not None:
        require(actor, Capability.MANAGE_PRACTICE)
    name = name.strip()
    if not name or len(name) > 200:
        raise ValidationError({"name": _("Give the client a name (up to 200 characters).")})
    if kind not in ApiClient.Kind.values:
        raise ValidationError({"kind": _("Choose a kind of client.")}, code="kind_unknown")
    allowed = clean_scopes(scopes, kind=kind)
    uris: list[str] = []
    if kind in USER_FACING_KINDS:
        uris = clean_redirect_uris(redirect_uris)
        if not uris:
            raise ValidationError(
                {"redirect_uris": _("An app needs at least one redirect URI.")},
                code="redirect_uri_required",
            )
    key_set: dict = {}
    if kind == ApiClient.Kind.BACKEND:
        key_set = clean_jwks(jwks)
    service_user = None
    if kind in SYSTEM_KINDS and role not in [r.value for r in STAFF_ROLES]:
        raise ValidationError(
            {"role": _("Choose the staff role this service acts with.")},
            code="role_required",
        )
    secret = secrets.token_urlsafe(32) if kind in SECRET_KINDS else None
    application = Application(
        name=name,
        client_type=(
            Application.CLIENT_PUBLIC
            if kind in (ApiClient.Kind.APP, ApiClient.Kind.BACKEND)
            else Application.CLIENT_CONFIDENTIAL
        ),
        authorization_grant_type=(
            Application.GRANT_AUTHORIZATION_CODE
            if kind in USER_FACING_KINDS
            else Application.GRANT_CLIENT_CREDENTIALS
        ),
        redirect_uris=" ".join(uris),
        # Public clients keep DOT's random secret, never shown and never checked.
        **({"client_secret": secret} if secret else {}),
        algorithm=Application.RS256_ALGORITHM if kind in USER_FACING_KINDS else "",
        skip_authorization=False,
    )
    application.save()
    if kind in SYSTEM_KINDS:
        service_user = user_create(
            actor=None,
            username=f"api-{application.client_id[:40].lower()}",
            email=f"{application.client_id[:40].lower()}@api-clients.invalid",
            full_name=f"API client: {name}"[:200],
            roles=[Role(role)],
        )
    client = ApiClient(
        application=application,
        kind=kind,
        allowed_scopes=str(allowed),
        jwks=key_set,
        service_user=service_user,
        created_by=actor,
    )
    client.full_clean()
    client.save()
    record(
        actor=actor,
        action="smart.client_registered",
        category="api",
        target=client,
        changes={
            "name": name,
            "kind": kind,
            "client_id": application.client_id,
            "scopes": str(allowed),
            "redirect_uris": uris,
            "role": role or "",
        },
    )
    return Registration(client=client, client_secret=secret)


@transaction.atomic
def api_client_revoke(*, actor: Any | None, client: ApiClient) -> ApiClient:
    """Revoke the client and every token it holds; it can get no new ones."""
    if actor is not None:
        require(actor, Capability.MANAGE_PRACTICE)
    client = ApiClient.objects.select_for_update().select_related("application").get(pk=client.pk)
    if client.revoked_at is not None:
        return client
    client.revoked_at = timezone_now()
    client.save(update_fields=["revoked_at", "updated_at"])
    access_count = AccessToken.objects.filter(application=client.application).count()
    for refresh in RefreshToken.objects.filter(
        application=client.application, revoked__isnull=True
    ):
        refresh.revoke()
    AccessToken.objects.filter(application=client.application).delete()
    record(
        actor=actor,
        action="smart.client_revoked",
        category="api",
        target=client,
        changes={"client_id": client.application.client_id, "tokens_revoked": access_count},
    )
    return client
