"""The authorization server's pages and endpoints, and the API client registration pages."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from oauth2_provider.models import Application
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views import (
    AuthorizationView,
    ConnectDiscoveryInfoView,
    IntrospectTokenView,
    JwksInfoView,
    RevokeTokenView,
    TokenView,
    UserInfoView,
)

from ambula.accounts.policy import Capability, bearer_token, public, requires
from ambula.audit.models import AuditEvent
from ambula.audit.services import record
from ambula.core.errors import ApplicationError
from ambula.patients.selectors import patient_get, patient_search
from ambula.smart.assertions import AssertionRefused, refusal_reason, unverified_issuer
from ambula.smart.consent import describe, narrowed_to_role
from ambula.smart.forms import ApiClientForm, RevokeForm, SmartAllowForm
from ambula.smart.scopes import Scopes
from ambula.smart.selectors import api_client_get, api_client_list
from ambula.smart.services import api_client_register, api_client_revoke

CAPABILITIES = [
    "launch-standalone",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "context-standalone-patient",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
    "sso-openid-connect",
    "authorize-post",
]
SCOPES_SUPPORTED = [
    "openid",
    "fhirUser",
    "launch/patient",
    "offline_access",
    "online_access",
    "patient/*.cruds",
    "user/*.cruds",
    "system/*.cruds",
    "patient/*.read",
    "user/*.read",
    "system/*.read",
]


def fhir_base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/fhir").rstrip("/")


@public
@require_GET
def smart_configuration(request: HttpRequest) -> JsonResponse:
    """SMART App Launch discovery (/.well-known/smart-configuration)."""

    def absolute(name: str) -> str:
        return request.build_absolute_uri(reverse(name))

    response = JsonResponse(
        {
            "issuer": oauth2_settings.oidc_issuer(request),
            "jwks_uri": absolute("oauth2_provider:jwks-info"),
            "authorization_endpoint": absolute("oauth2_provider:authorize"),
            "token_endpoint": absolute("oauth2_provider:token"),
            "revocation_endpoint": absolute("oauth2_provider:revoke-token"),
            "introspection_endpoint": absolute("oauth2_provider:introspect"),
            "userinfo_endpoint": absolute("oauth2_provider:user-info"),
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
            ],
            "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "scopes_supported": SCOPES_SUPPORTED,
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "capabilities": CAPABILITIES,
        }
    )
    # Apps running in a browser read this before they have any token.
    response["Access-Control-Allow-Origin"] = "*"
    return response


# --- Authorization: consent and patient picker ------------------------------------------------


@public  # the view itself sends anonymous users to sign in (DOT's LoginRequiredMixin)
class SmartAuthorizationView(AuthorizationView):
    """Standalone launch: sign in as usual, pick the patient if asked, approve or deny."""

    template_name = "smart/authorize.html"
    form_class = SmartAllowForm
    launch_patient_id = None

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        audience = request.GET.get("aud")
        if audience and audience.rstrip("/") not in self._our_fhir_bases(request):
            return self._refuse(_("The app asked for a FHIR server other than this one."))
        if request.GET.get("code_challenge") and request.GET.get("code_challenge_method") != "S256":
            return self._refuse(_("The app must protect the sign-in with PKCE (S256)."))
        # Always ask: a launch may need a patient picked, and consent is per sign-in here.
        request.GET = request.GET.copy()
        request.GET.pop("approval_prompt", None)
        return super().get(request, *args, **kwargs)

    def _record_refusal(self, error: str, client_id: str) -> None:
        if error == "access_denied":
            return  # the user's own refusal, recorded as smart.access_denied
        record(
            actor=self.request.user,
            action="smart.token_refused",
            category="api",
            outcome=AuditEvent.Outcome.FAILURE,
            changes={"client_id": client_id[:100], "error": error, "step": "authorize"},
        )

    def _refuse(self, text: str) -> HttpResponse:
        self._record_refusal("invalid_request", self.request.GET.get("client_id", ""))
        return render(
            self.request,
            self.template_name,
            {"title": _("This app cannot connect"), "error_text": text},
            status=400,
        )

    @staticmethod
    def _our_fhir_bases(request: HttpRequest) -> set[str]:
        return {fhir_base_url(request), f"{settings.BASE_URL.rstrip('/')}/fhir"}

    def validate_authorization_request(self, request):
        scopes, credentials = super().validate_authorization_request(request)
        narrowed = narrowed_to_role(request.user, Scopes.parse(" ".join(scopes)))
        return str(narrowed).split(), credentials

    def error_response(self, error, application, **kwargs):
        oauth_error = getattr(error, "oauthlib_error", None)
        self._record_refusal(
            getattr(oauth_error, "error", "invalid_request"),
            getattr(application, "client_id", "") or self.request.GET.get("client_id", ""),
        )
        response = super().error_response(error, application, **kwargs)
        if hasattr(response, "context_data"):
            response.context_data["title"] = _("This app cannot connect")
        return response

    def render_to_response(self, context, **response_kwargs):
        response = super().render_to_response(context, **response_kwargs)
        redirect_uri = context.get("redirect_uri")
        if redirect_uri:
            # Browsers hold the form's redirect to the app to the page's form-action rule.
            parts = urlsplit(redirect_uri)
            response["Content-Security-Policy"] = settings.CONTENT_SECURITY_POLICY.replace(
                "form-action 'self'", f"form-action 'self' {parts.scheme}://{parts.netloc}"
            )
        return response

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        scopes = Scopes.parse(" ".join(context.get("scopes") or []))
        context["title"] = _("Allow access")
        context["scope_lines"] = describe(scopes)
        context["needs_patient"] = "launch/patient" in scopes.other
        query = self.request.GET.get("patient_query", "").strip()[:100]
        context["patient_query"] = query
        context["patients"] = (
            patient_search(actor=self.request.user, query=query)
            if context["needs_patient"] and query
            else []
        )
        context["search_params"] = [
            (name, value)
            for name, value in self.request.GET.items()
            if name not in ("patient_query", "approval_prompt")
        ]
        return context

    def form_valid(self, form):
        allow = form.cleaned_data.get("allow")
        scopes = Scopes.parse(form.cleaned_data.get("scope"))
        application = Application.objects.filter(
            client_id=form.cleaned_data.get("client_id")
        ).first()
        if application is None:
            return self._refuse(_("This app is not registered here."))
        if allow and "launch/patient" in scopes.other:
            patient_id = form.cleaned_data.get("patient")
            if patient_id is None:
                messages.error(self.request, _("Choose the patient the app will work with."))
                return redirect(self.request.get_full_path())
            try:
                patient = patient_get(actor=self.request.user, patient_id=patient_id)
            except ApplicationError as error:
                messages.error(self.request, error.message)
                return redirect(self.request.get_full_path())
            self.launch_patient_id = patient.pk
        record(
            actor=self.request.user,
            action="smart.access_approved" if allow else "smart.access_denied",
            category="api",
            outcome=AuditEvent.Outcome.SUCCESS if allow else AuditEvent.Outcome.DENIED,
            patient_id=self.launch_patient_id,
            changes={"client_id": application.client_id, "scope": str(scopes)},
        )
        return super().form_valid(form)

    def form_invalid(self, form):
        # The hidden fields came back altered: start the page again from the app's request.
        messages.error(self.request, _("The form was incomplete. Please try again."))
        return redirect(self.request.get_full_path())

    def create_authorization_response(self, request, scopes, credentials, allow):
        scopes = str(narrowed_to_role(request.user, Scopes.parse(scopes)))
        if self.launch_patient_id is not None:
            credentials["launch_patient_id"] = self.launch_patient_id
        return super().create_authorization_response(request, scopes, credentials, allow)


# --- Token, revocation, introspection ---------------------------------------------------------

_token_view = TokenView.as_view()
_revoke_view = RevokeTokenView.as_view()
_introspect_view = IntrospectTokenView.as_view()


def _client_id_of(request: HttpRequest) -> str:
    """Who the request says it is, before anything is verified: for the audit trail only."""
    if request.POST.get("client_id"):
        return request.POST["client_id"][:100]
    if request.POST.get("client_assertion"):
        try:
            return unverified_issuer(request.POST["client_assertion"])
        except AssertionRefused:
            return ""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(encoded).decode().partition(":")[0][:100]
        except ValueError:
            return ""
    return ""


@public
@csrf_exempt
@never_cache
def token(request: HttpRequest) -> HttpResponse:
    """The token endpoint (DOT's), with every refusal audited."""
    refusal_reason.set("")
    response = _token_view(request)
    if response.status_code >= 400:
        try:
            error = json.loads(response.content).get("error", "")
        except (ValueError, AttributeError):
            error = ""
        client_id = _client_id_of(request)
        record(
            actor=None,
            username=client_id,
            action="smart.token_refused",
            category="api",
            outcome=AuditEvent.Outcome.FAILURE,
            changes={
                "client_id": client_id,
                "grant_type": request.POST.get("grant_type", "")[:50],
                "error": error,
                "reason": refusal_reason.get(),
            },
        )
    return response


@public
@csrf_exempt
@never_cache
def revoke(request: HttpRequest) -> HttpResponse:
    """Token revocation (RFC 7009), audited."""
    response = _revoke_view(request)
    if response.status_code == 200 and request.method == "POST":
        client_id = _client_id_of(request)
        record(
            actor=None,
            username=client_id,
            action="smart.token_revoked",
            category="api",
            changes={
                "client_id": client_id,
                "token_type_hint": request.POST.get("token_type_hint", "")[:30],
            },
        )
    return response


@public
@csrf_exempt
@never_cache
def introspect(request: HttpRequest) -> HttpResponse:
    """Token introspection (RFC 7662) for clients that authenticate with their secret."""
    response = _introspect_view(request)
    if response.status_code == 403:
        response = JsonResponse({"error": "invalid_client"}, status=401)
        response["WWW-Authenticate"] = 'Basic realm="ambula"'
    return response


jwks = public(JwksInfoView.as_view())
openid_configuration = public(ConnectDiscoveryInfoView.as_view())
userinfo = bearer_token(UserInfoView.as_view())


# --- Registration (admins) --------------------------------------------------------------------


@requires(Capability.MANAGE_PRACTICE)
@require_GET
def api_clients(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "smart/api_clients.html",
        {"title": _("API clients"), "clients": api_client_list(actor=request.user)},
    )


@requires(Capability.MANAGE_PRACTICE)
@require_http_methods(["GET", "POST"])
@never_cache
def api_client_new(request: HttpRequest) -> HttpResponse:
    form = ApiClientForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            registration = api_client_register(actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            # Shown once, in this response: only the secret's hash is kept.
            return render(
                request,
                "smart/api_client_registered.html",
                {
                    "title": _("Client registered"),
                    "registration": registration,
                    "fhir_base": request.build_absolute_uri(reverse("fhir:system")).rstrip("/"),
                    "smart_configuration": request.build_absolute_uri(
                        reverse("smart:smart_configuration")
                    ),
                },
            )
    return render(
        request, "smart/api_client_new.html", {"title": _("Register a client"), "form": form}
    )


@requires(Capability.MANAGE_PRACTICE)
@require_POST
def api_client_revoke_view(request: HttpRequest) -> HttpResponse:
    form = RevokeForm(request.POST)
    client = api_client_get(actor=request.user, client_id=form.data.get("client_id", "")[:100])
    if not form.is_valid() or client is None:
        messages.error(request, _("There is no such client."))
    elif client.revoked_at is not None:
        messages.info(request, _("That client was already revoked."))
    else:
        api_client_revoke(actor=request.user, client=client)
        messages.success(request, _("%(name)s is revoked, with all its tokens.") % {"name": client})
    return redirect("smart:api_clients")
