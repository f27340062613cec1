"""django-oauth-toolkit plug points: SMART scopes and the request validator.

The validator adds SMART's rules to DOT's: scopes narrowed to what the client is registered
for (unknown ones refused), backend clients authenticated by signed JWT assertion, the launch
patient carried from the authorization code to the token (and across refreshes), refresh
tokens only with offline_access or online_access, `fhirUser` in the ID token, and every
issued token audited.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from django.db import transaction
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import BaseScopes
from oauth2_provider.settings import oauth2_settings

from ambula.audit.services import record
from ambula.smart.assertions import (
    ASSERTION_TYPE,
    AssertionRefused,
    refusal_reason,
    unverified_issuer,
    verify_assertion,
)
from ambula.smart.models import ApiClient, LaunchContext, LaunchGrant
from ambula.smart.scopes import KNOWN_OTHER, Scopes

logger = logging.getLogger(__name__)

SCOPE_DESCRIPTIONS = {
    "openid": "Confirm who you are to the app",
    "fhirUser": "Tell the app which user you are",
    "profile": "Share your name with the app",
    "launch/patient": "Choose the patient the app works with",
    "offline_access": "Keep access after you sign out, until you revoke it",
    "online_access": "Keep access while you stay signed in",
}
REFRESH_SCOPES = {"offline_access", "online_access"}


class _Descriptions(dict):
    """Known scopes' descriptions; any resource scope describes itself (they are open-ended)."""

    def __missing__(self, scope: str) -> str:
        return scope


class SmartScopes(BaseScopes):
    """SMART scopes are open-ended (`patient/Observation.rs`): the client's own list bounds them."""

    def get_all_scopes(self) -> dict[str, str]:
        return _Descriptions({name: SCOPE_DESCRIPTIONS[name] for name in sorted(KNOWN_OTHER)})

    def get_available_scopes(self, application=None, request=None, *args, **kwargs) -> list[str]:
        client = getattr(application, "smart_client", None)
        if client is None or client.revoked_at is not None:
            return []
        return str(Scopes.parse(client.allowed_scopes)).split()

    def get_default_scopes(self, application=None, request=None, *args, **kwargs) -> list[str]:
        return []


def smart_client_of(application) -> ApiClient | None:
    """The application's live ApiClient, or None when it has none or it was revoked."""
    client = getattr(application, "smart_client", None)
    if client is None or client.revoked_at is not None:
        return None
    return client


def granted_scopes(client: ApiClient, asked: Scopes) -> Scopes:
    """What the client gets of what it asked: within its registration and its kind's contexts."""
    narrowed = asked.narrowed_to(Scopes.parse(client.allowed_scopes))
    if client.is_user_facing:
        return narrowed.only_contexts("patient", "user")
    # Backend and internal clients act for no user: OpenID and launch scopes mean nothing.
    return Scopes(narrowed.only_contexts("system").resources)


def origin_of(request) -> str:
    """scheme://host of an oauthlib request (whose `uri` is only the path), as DOT derives it."""
    parts = urlsplit(oauth2_settings.oidc_issuer(request))
    return f"{parts.scheme}://{parts.netloc}"


class SmartValidator(OAuth2Validator):
    oidc_claim_scope = {**OAuth2Validator.oidc_claim_scope, "fhirUser": "fhirUser"}

    # --- clients ---------------------------------------------------------------------------

    def _load_application(self, client_id, request):
        application = super()._load_application(client_id, request)
        if application is not None and smart_client_of(application) is None:
            refusal_reason.set("The client is revoked or not registered for the API.")
            request.client = None
            return None
        return application

    def authenticate_client(self, request, *args, **kwargs):
        params = dict(request.decoded_body or [])
        if "client_assertion" in params or "client_assertion_type" in params:
            return self._authenticate_by_assertion(request, params)
        if not super().authenticate_client(request, *args, **kwargs):
            refusal_reason.set("The client id or secret is wrong.")
            return False
        if request.client.smart_client.kind == ApiClient.Kind.BACKEND:
            refusal_reason.set("A backend service authenticates with a signed assertion.")
            return False
        return True

    def _authenticate_by_assertion(self, request, params) -> bool:
        assertion = params.get("client_assertion") or ""
        try:
            if params.get("client_assertion_type") != ASSERTION_TYPE:
                raise AssertionRefused(f"client_assertion_type must be {ASSERTION_TYPE}.")
            if len(assertion) > 16 * 1024:
                raise AssertionRefused("The assertion is too large.")
            client_id = unverified_issuer(assertion)
            if params.get("client_id") not in (None, client_id):
                raise AssertionRefused("client_id and the assertion's iss differ.")
            application = self._load_application(client_id, request)
            if application is None:
                raise AssertionRefused("No live client has this id.")
            if application.smart_client.kind != ApiClient.Kind.BACKEND:
                raise AssertionRefused("Only backend services authenticate with an assertion.")
            token_url = origin_of(request) + urlsplit(request.uri).path
            verify_assertion(
                assertion=assertion, client=application.smart_client, token_url=token_url
            )
        except AssertionRefused as refused:
            refusal_reason.set(str(refused))
            request.client = None
            return False
        request.client_id = application.client_id
        return True

    # --- scopes ----------------------------------------------------------------------------

    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs):
        client_record = smart_client_of(client)
        asked = Scopes.parse(" ".join(scopes))
        if client_record is None:
            return False
        if asked.unknown:
            refusal_reason.set("Unknown scopes: " + " ".join(sorted(asked.unknown)))
            return False
        granted = granted_scopes(client_record, asked)
        if not granted.resources:
            refusal_reason.set("None of the scopes asked for is allowed to this client.")
            return False
        request.scopes = str(granted).split()
        return True

    # --- authorization code and launch context ---------------------------------------------

    def save_authorization_code(self, client_id, code, request, *args, **kwargs):
        grant = self._create_authorization_code(request, code)
        patient_id = getattr(request, "launch_patient_id", None)
        if patient_id is not None:
            LaunchGrant.objects.create(grant=grant, patient_id=patient_id)

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        if not super().validate_code(client_id, code, client, request, *args, **kwargs):
            refusal_reason.set("The authorization code is unknown, used or expired.")
            return False
        if not request.user.is_active:
            refusal_reason.set("The user who approved has been deactivated.")
            return False
        request.launch_patient_id = (
            LaunchGrant.objects.filter(grant__code=code, grant__application=client)
            .values_list("patient_id", flat=True)
            .first()
        )
        return True

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
            refusal_reason.set("The refresh token is unknown, revoked or expired.")
            return False
        if request.user is not None and not request.user.is_active:
            refusal_reason.set("The user behind this refresh token has been deactivated.")
            return False
        previous = request.refresh_token_instance.access_token
        request.launch_patient_id = (
            LaunchContext.objects.filter(access_token=previous)
            .values_list("patient_id", flat=True)
            .first()
            if previous is not None
            else None
        )
        return True

    def save_bearer_token(self, token, request, *args, **kwargs):
        if "refresh_token" in token and not REFRESH_SCOPES & set(token.get("scope", "").split()):
            # SMART: a refresh token only for an app that asked to keep access.
            del token["refresh_token"]
        with transaction.atomic():
            super().save_bearer_token(token, request, *args, **kwargs)
            self._record_issue(token, request)

    def _create_access_token(self, expires, request, token, source_refresh_token=None):
        access_token = super()._create_access_token(
            expires, request, token, source_refresh_token=source_refresh_token
        )
        patient_id = getattr(request, "launch_patient_id", None)
        if patient_id is not None:
            LaunchContext.objects.create(access_token=access_token, patient_id=patient_id)
            token["patient"] = str(patient_id)
        return access_token

    def _record_issue(self, token, request) -> None:
        client = request.client.smart_client
        refreshed = request.grant_type == "refresh_token"
        record(
            actor=request.user or client.service_user,
            action="smart.token_refreshed" if refreshed else "smart.token_issued",
            category="api",
            patient_id=getattr(request, "launch_patient_id", None),
            changes={
                "client_id": request.client.client_id,
                "client_name": request.client.name,
                "grant_type": request.grant_type,
                "scope": token.get("scope", ""),
                "refresh_token": "refresh_token" in token,
            },
        )

    # --- OpenID Connect --------------------------------------------------------------------

    def get_additional_claims(self, request):
        provider = getattr(request.user, "provider_profile", None)
        if provider is None:
            # SMART's fhirUser names a FHIR resource; only providers have one (Practitioner).
            return {}
        return {"fhirUser": f"{origin_of(request)}/fhir/Practitioner/{provider.pk}"}
