import ipaddress
import logging
import re
import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from ambula.core.errors import ApplicationError
from ambula.core.ids import uuid7
from ambula.logging import (
    client_ip_var,
    emergency_access_var,
    printable,
    redact,
    request_id_var,
    user_agent_var,
    user_id_var,
)

access_logger = logging.getLogger("ambula.request")
# A request id from a load balancer is kept only if it is short and plain; anything else could
# be used to inject text into the logs.
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def client_ip(request: HttpRequest) -> str:
    """The address the request came from.

    Behind our own proxies (AMBULA_BEHIND_PROXY, AMBULA_TRUSTED_PROXIES), X-Forwarded-For is
    read from the right, past the trusted proxies; a request that did not come through one
    cannot choose its address by sending the header.
    """
    remote = _parse_ip(request.META.get("REMOTE_ADDR", ""))
    config = settings.CONFIG
    if remote is None or not config.behind_proxy or not _trusted(remote, config):
        return str(remote) if remote else ""
    for hop in reversed(request.headers.get("X-Forwarded-For", "").split(",")):
        address = _parse_ip(hop.strip())
        if address is None:
            break
        if not _trusted(address, config):
            return str(address)
    return str(remote)


def _parse_ip(value: str):
    """The address in one plain form: IPv4-mapped IPv6 as IPv4, no IPv6 zone (%eth0)."""
    try:
        address = ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


def _trusted(address, config) -> bool:
    return any(address in network for network in config.trusted_proxies)


class RequestContextMiddleware:
    """Give each request an id, put it in every log line, and log the request once."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request.id = incoming if VALID_REQUEST_ID.match(incoming) else uuid7().hex
        request.client_ip = client_ip(request)
        request_token = request_id_var.set(request.id)
        user_token = user_id_var.set("-")
        ip_token = client_ip_var.set(request.client_ip)
        agent_token = user_agent_var.set(printable(request.headers.get("User-Agent", "")))
        emergency_token = emergency_access_var.set(None)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request.id
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            # Through the same redaction as every log line: one-time links are never logged.
            path = redact(request.path)
            # The path only: query strings can carry search terms, which can be PHI.
            access_logger.info(
                "%s %s %s %sms",
                request.method,
                path,
                response.status_code,
                duration_ms,
                extra={
                    "method": request.method,
                    "path": path,
                    "status": response.status_code,
                    "duration_ms": duration_ms,
                },
            )
            return response
        finally:
            request_id_var.reset(request_token)
            user_id_var.reset(user_token)
            client_ip_var.reset(ip_token)
            user_agent_var.reset(agent_token)
            emergency_access_var.reset(emergency_token)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            user_id_var.set(str(user.pk))


class SecurityHeadersMiddleware:
    """Add the headers Django's SecurityMiddleware leaves out.

    The Content-Security-Policy allows no inline script or style and nothing from another
    origin; pages shown to a signed-in user are never stored by the browser or a proxy.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            response["Cache-Control"] = "no-store"
        return response


class ApplicationErrorMiddleware:
    """Turn a domain error raised anywhere in a view into one consistent response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        if not isinstance(exception, ApplicationError):
            return None
        # Some errors say where to go instead (a record merged away, a reason to give first).
        location = getattr(exception, "location", None)
        if location and request.method in ("GET", "HEAD") and not getattr(request, "htmx", False):
            return redirect(location)
        return render(
            request,
            "core/error.html",
            {"title": exception.message, "code": exception.code},
            status=exception.status,
        )
