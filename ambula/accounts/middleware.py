import logging

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from ambula.accounts import sessions
from ambula.accounts.policy import BEARER_TOKEN, PUBLIC, SIGNED_IN, can, declared_access
from ambula.audit.models import AuditEvent
from ambula.audit.services import record
from ambula.core.selectors import practice_get

logger = logging.getLogger("ambula.accounts")
DEFAULT_IDLE_MINUTES = 15


class SessionTimeoutMiddleware:
    """End sessions that were idle too long or are older than the absolute limit.

    Enforced here, on the server, whatever the browser's timer does.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            practice = request.practice = practice_get()
            idle_minutes = practice.idle_timeout_minutes if practice else DEFAULT_IDLE_MINUTES
            request.idle_timeout_minutes = idle_minutes
            reason = sessions.session_expired_reason(request, idle_minutes=idle_minutes)
            if reason is not None:
                sessions.session_end(
                    request=request, action="auth.session_timed_out", reason=reason
                )
                if reason == "idle":
                    message = _(
                        "You were signed out after %(minutes)s minutes without activity."
                    ) % {"minutes": idle_minutes}
                else:
                    message = _("Your session reached its time limit. Please sign in again.")
                messages.info(request, message)
                return redirect_to_login(request.get_full_path())
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        # Checking the clock is not activity: the idle timer must not keep itself alive.
        passive = getattr(getattr(view_func, "view_class", view_func), "passive_session", False)
        if request.user.is_authenticated and not passive:
            sessions.session_touch(request)


class AccessPolicyMiddleware:
    """Enforce each view's access declaration; a view without one is refused (fail closed)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        access = declared_access(view_func)
        if access in (PUBLIC, BEARER_TOKEN):
            return None
        if access is None:
            logger.error("view %s declares no access; refused", request.resolver_match.view_name)
            raise PermissionDenied
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if access == SIGNED_IN or can(request.user, access):
            return None
        record(
            actor=request.user,
            action="auth.access_denied",
            category="authorization",
            outcome=AuditEvent.Outcome.DENIED,
            changes={"view": request.resolver_match.view_name, "capability": str(access)},
        )
        raise PermissionDenied
