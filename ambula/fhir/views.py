"""HTTP for the FHIR API: content negotiation, the bearer token, and errors as outcomes.

Access is decided per interaction by the token and the user's role (access.py), so these
views declare `@bearer_token` to the access policy. Cookies never authenticate here: a
session cannot be ridden by another site, and CSRF does not apply.
"""

from __future__ import annotations

import json
from functools import partial

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.db.models import prefetch_related_objects
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from ambula.accounts.policy import bearer_token, public
from ambula.fhir import bundles, capability, interactions
from ambula.fhir.access import Refused
from ambula.fhir.errors import FhirError
from ambula.fhir.interactions import Exchange, Reply
from ambula.smart.principal import Unauthorized, authenticate

FHIR_JSON = "application/fhir+json"
JSON_TYPES = {FHIR_JSON, "application/json", "application/json+fhir"}
MAX_BODY = 5 * 1024 * 1024


def _response(reply: Reply) -> HttpResponse:
    content = b"" if reply.body is None else json.dumps(reply.body, separators=(",", ":")).encode()
    response = HttpResponse(
        content, status=reply.status, content_type=f"{FHIR_JSON}; charset=utf-8"
    )
    for name, value in reply.headers.items():
        response[name] = value
    return response


def _error(error: FhirError) -> HttpResponse:
    return _response(Reply(error.status, error.outcome(), error.headers))


def _accepts_json(request: HttpRequest) -> bool:
    wanted = request.GET.get("_format") or request.headers.get("Accept", "")
    if not wanted:
        return True
    kinds = {part.split(";")[0].strip().lower() for part in wanted.split(",")}
    short = {"json"}
    return bool(kinds & (JSON_TYPES | short | {"*/*", "application/*"}))


def _body(request: HttpRequest) -> dict:
    kind = request.content_type.lower()
    if kind not in JSON_TYPES:
        raise FhirError(415, "not-supported", f"Send {FHIR_JSON}, not {kind or 'no type'}.")
    if len(request.body) > MAX_BODY:
        raise FhirError(413, "too-costly", "The body is larger than 5 MB.")
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as error:
        raise FhirError(400, "structure", f"The body is not valid JSON: {error}.") from None
    except RecursionError:
        raise FhirError(400, "structure", "The body nests too deeply.") from None
    if not isinstance(body, dict):
        raise FhirError(400, "structure", "The body must be a JSON object.")
    return body


def preferences(header: str) -> dict[str, str]:
    """RFC 7240: preferences are comma-separated; a ";" starts a preference's parameters."""
    found = {}
    for preference in header.split(","):
        key, _, value = preference.split(";")[0].partition("=")
        if key.strip():
            found[key.strip().lower()] = value.strip().strip('"')
    return found


def _exchange(request: HttpRequest) -> Exchange:
    try:
        principal = authenticate(request)
    except Unauthorized as error:
        # RFC 6750: no error code when no token was sent at all.
        challenge = 'Bearer realm="ambula"'
        if request.headers.get("Authorization"):
            challenge += f', error="invalid_token", error_description="{error!s}"'
        raise FhirError(401, "login", str(error), headers={"WWW-Authenticate": challenge}) from None
    # One query for the roles that the policy and then the audit event both ask for.
    prefetch_related_objects([principal.user], "role_assignments")
    prefer = preferences(request.headers.get("Prefer", ""))
    return Exchange(
        principal=principal,
        base=request.build_absolute_uri("/fhir").rstrip("/"),
        strict=prefer.get("handling") == "strict",
        prefer_return=prefer.get("return", "representation"),
    )


def _api(handler, declare=bearer_token):
    """Negotiate, authenticate and turn every failure into an OperationOutcome."""

    @csrf_exempt
    @declare
    def view(request: HttpRequest, **kwargs) -> HttpResponse:
        try:
            if not _accepts_json(request):
                raise FhirError(
                    406 if "_format" not in request.GET else 415,
                    "not-supported",
                    f"This server answers {FHIR_JSON} only.",
                )
            return _response(handler(request, **kwargs))
        except Refused as refused:
            refused.record()
            return _error(refused)
        except FhirError as error:
            return _error(error)
        except (TooManyFieldsSent, RequestDataTooBig):
            return _error(
                FhirError(413, "too-costly", "The request is too large or has too many parameters.")
            )

    view.passive_session = True  # API calls do not keep a browser session alive
    view.__name__ = handler.__name__
    view.__doc__ = handler.__doc__
    return view


def _not_allowed(request: HttpRequest) -> FhirError:
    return FhirError(405, "not-supported", f"{request.method} is not supported here.")


@partial(_api, declare=public)
def metadata(request: HttpRequest) -> Reply:
    if request.method != "GET":
        raise _not_allowed(request)
    base = request.build_absolute_uri("/fhir").rstrip("/")
    return Reply(200, capability.statement(base))


@_api
def system(request: HttpRequest) -> Reply:
    """POST / takes a batch or transaction Bundle."""
    if request.method != "POST":
        raise _not_allowed(request)
    exchange = _exchange(request)
    return bundles.process(exchange, _body(request))


@_api
def type_level(request: HttpRequest, resource_type: str) -> Reply:
    exchange = _exchange(request)
    if request.method == "GET":
        return interactions.search_type(exchange, resource_type, request.GET)
    if request.method == "POST":
        return interactions.create(
            exchange, resource_type, _body(request), request.headers.get("If-None-Exist", "")
        )
    raise _not_allowed(request)


@_api
def type_search(request: HttpRequest, resource_type: str) -> Reply:
    """POST Type/_search with form-encoded parameters."""
    if request.method != "POST":
        raise _not_allowed(request)
    exchange = _exchange(request)
    params = request.POST.copy()
    params.update(request.GET)
    return interactions.search_type(exchange, resource_type, params)


@_api
def instance(request: HttpRequest, resource_type: str, resource_id: str) -> Reply:
    exchange = _exchange(request)
    if request.method == "GET":
        return interactions.read(exchange, resource_type, resource_id)
    if request.method == "PUT":
        return interactions.update(
            exchange,
            resource_type,
            resource_id,
            _body(request),
            request.headers.get("If-Match", ""),
        )
    if request.method == "DELETE":
        return interactions.delete(exchange, resource_type, resource_id)
    raise _not_allowed(request)


@_api
def instance_history(request: HttpRequest, resource_type: str, resource_id: str) -> Reply:
    if request.method != "GET":
        raise _not_allowed(request)
    return interactions.history(_exchange(request), resource_type, resource_id, request.GET)


@_api
def instance_version(
    request: HttpRequest, resource_type: str, resource_id: str, version_id: str
) -> Reply:
    if request.method != "GET":
        raise _not_allowed(request)
    return interactions.vread(_exchange(request), resource_type, resource_id, version_id)


@_api
def patient_everything(request: HttpRequest, resource_id: str) -> Reply:
    if request.method != "GET":
        raise _not_allowed(request)
    return interactions.everything(_exchange(request), resource_id)


@_api
def unknown(request: HttpRequest, rest: str) -> Reply:
    _exchange(request)  # like every API URL, nothing without a token
    raise FhirError(404, "not-found", f"Nothing is served at /fhir/{rest}.")
