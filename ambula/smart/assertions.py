"""SMART Backend Services: verify a client's signed JWT assertion (RFC 7523, private_key_jwt)."""

from __future__ import annotations

import contextvars
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.timezone import now as timezone_now

from ambula.smart.models import ApiClient, AssertionJti

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS384", "ES384")
MAX_ASSERTION_BYTES = 16 * 1024
MAX_LIFETIME = timedelta(minutes=5)
# Clocks differ a little between the client and us.
LEEWAY = timedelta(seconds=30)

# Why the last client authentication failed, for the token view's audit event.
refusal_reason: contextvars.ContextVar[str] = contextvars.ContextVar("refusal_reason", default="")


class AssertionRefused(Exception):
    pass


def unverified_issuer(assertion: str) -> str:
    """The `iss` the assertion claims, before anything is verified (to find its keys)."""
    from jwcrypto import jws

    token = jws.JWS()
    try:
        token.deserialize(assertion)
        claims = json.loads(token.objects["payload"])
    except Exception:  # jwcrypto and json raise several types for malformed input
        raise AssertionRefused("The assertion is not a compact JWS.") from None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    if not isinstance(issuer, str) or not issuer or len(issuer) > 100:
        raise AssertionRefused("The assertion has no iss.")
    return issuer


def verify_assertion(*, assertion: str, client: ApiClient, token_url: str) -> None:
    """Check the assertion's signature and claims, and spend its jti; raise AssertionRefused."""
    from jwcrypto import jwk, jws

    if len(assertion.encode()) > MAX_ASSERTION_BYTES:
        raise AssertionRefused("The assertion is too large.")
    token = jws.JWS()
    try:
        token.deserialize(assertion)
        header = token.jose_header
    except Exception:
        raise AssertionRefused("The assertion is not a compact JWS.") from None
    algorithm, kid = header.get("alg"), header.get("kid")
    if algorithm not in ALGORITHMS:
        raise AssertionRefused("The assertion must be signed with RS384 or ES384.")
    if not isinstance(kid, str) or not kid:
        raise AssertionRefused("The assertion's header has no kid.")
    keys = jwk.JWKSet()
    try:
        keys.import_keyset(json.dumps(client.jwks))
    except Exception:
        raise AssertionRefused("The client's registered key set cannot be read.") from None
    key = keys.get_key(kid)
    if key is None:
        raise AssertionRefused("No registered key has this kid.")
    try:
        token.verify(key, alg=algorithm)
    except Exception:
        raise AssertionRefused("The signature does not verify with the registered key.") from None
    claims = json.loads(token.payload)
    _check_claims(claims, client_id=client.application.client_id, token_url=token_url)
    _spend(client.application.client_id, claims["jti"], claims["exp"])


def _check_claims(claims: Any, *, client_id: str, token_url: str) -> None:
    if not isinstance(claims, dict):
        raise AssertionRefused("The assertion's payload is not a JSON object.")
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise AssertionRefused("iss and sub must both be the client id.")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if token_url not in audiences:
        raise AssertionRefused("aud must be this server's token endpoint.")
    expires = claims.get("exp")
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        raise AssertionRefused("The assertion has no exp.")
    now = timezone_now()
    try:
        expires_at = datetime.fromtimestamp(expires, UTC)
    except (OverflowError, ValueError, OSError):
        raise AssertionRefused("exp is out of range.") from None
    if expires_at <= now - LEEWAY:
        raise AssertionRefused("The assertion has expired.")
    if expires_at > now + MAX_LIFETIME + LEEWAY:
        raise AssertionRefused("exp may be at most five minutes ahead.")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 255:
        raise AssertionRefused("The assertion needs a jti (up to 255 characters).")


def _spend(client_id: str, jti: str, expires: float) -> None:
    """Record the jti; a second use of it, while it could still be valid, is a replay."""
    now = timezone_now()
    AssertionJti.objects.filter(expires_at__lt=now - LEEWAY).delete()
    try:
        with transaction.atomic():
            AssertionJti.objects.create(
                client_id=client_id,
                jti=jti,
                expires_at=datetime.fromtimestamp(expires, UTC) + LEEWAY,
            )
    except IntegrityError:
        raise AssertionRefused("This assertion's jti was already used.") from None
