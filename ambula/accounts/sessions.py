"""Signed-in sessions: how they begin, end, time out, and are ended for a user."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.http import HttpRequest
from django.utils.module_loading import import_string
from django.utils.timezone import now as timezone_now

from ambula.accounts.models import User, UserSession
from ambula.accounts.throttling import sign_in_completed
from ambula.audit.services import record

SIGNED_IN_AT = "ambula_signed_in_at"
REAUTHENTICATED_AT = "ambula_reauthenticated_at"
# Sign-in state that must not outlive the sign-in it belonged to.
SIGN_IN_LEFTOVERS = ("ambula_pending_sign_in", "ambula_enrolling_device")
RECENT_AUTHENTICATION_MINUTES = 10
LAST_ACTIVITY = "ambula_last_activity"
# Write the activity stamp at most this often: a page's burst of requests costs one write.
ACTIVITY_WRITE_INTERVAL_SECONDS = 15


def _session_store(session_key: str) -> SessionBase:
    return import_string(f"{settings.SESSION_ENGINE}.SessionStore")(session_key)


@transaction.atomic
def session_begin(*, request: HttpRequest, user: User, method: str) -> None:
    """Sign the user in on a fresh session id and remember the session against the user."""
    for leftover in SIGN_IN_LEFTOVERS:
        request.session.pop(leftover, None)
    login(request, user, backend="ambula.accounts.backends.RoleAwareBackend")
    stamp = timezone_now().timestamp()
    request.session[SIGNED_IN_AT] = stamp
    request.session[LAST_ACTIVITY] = stamp
    request.session.save()
    sign_in_completed(username=user.username, address=getattr(request, "client_ip", ""))
    UserSession.objects.create(
        user=user,
        session_key=request.session.session_key,
        ip_address=getattr(request, "client_ip", "") or None,
        user_agent=request.headers.get("User-Agent", "")[:300],
    )
    record(
        actor=user,
        action="auth.signed_in",
        category="authentication",
        target=user,
        changes={"method": method},
    )


@transaction.atomic
def session_end(*, request: HttpRequest, action: str = "auth.signed_out", **details) -> None:
    """Sign out of this session and record why."""
    user = request.user
    if user.is_authenticated:
        UserSession.objects.filter(session_key=request.session.session_key).update(
            ended_at=timezone_now()
        )
        record(actor=user, action=action, category="authentication", target=user, changes=details)
    logout(request)


def session_expired_reason(request: HttpRequest, *, idle_minutes: int) -> str | None:
    """Return "idle" or "absolute" when the session has run out, else None."""
    current = timezone_now().timestamp()
    signed_in_at = request.session.get(SIGNED_IN_AT)
    last_activity = request.session.get(LAST_ACTIVITY)
    if signed_in_at is None or last_activity is None:
        return "absolute"
    if current - signed_in_at > settings.SESSION_ABSOLUTE_TIMEOUT_SECONDS:
        return "absolute"
    if current - last_activity > idle_minutes * 60:
        return "idle"
    return None


def recently_authenticated(request: HttpRequest) -> bool:
    """Whether the user proved who they are within the last few minutes."""
    proved_at = max(
        request.session.get(SIGNED_IN_AT, 0), request.session.get(REAUTHENTICATED_AT, 0)
    )
    return timezone_now().timestamp() - proved_at < RECENT_AUTHENTICATION_MINUTES * 60


def session_reauthenticated(request: HttpRequest) -> None:
    request.session[REAUTHENTICATED_AT] = timezone_now().timestamp()


def session_touch(request: HttpRequest) -> None:
    current = timezone_now().timestamp()
    if current - request.session.get(LAST_ACTIVITY, 0) >= ACTIVITY_WRITE_INTERVAL_SECONDS:
        request.session[LAST_ACTIVITY] = current


def session_seconds_left(request: HttpRequest, *, idle_minutes: int) -> int:
    current = timezone_now().timestamp()
    idle_left = request.session.get(LAST_ACTIVITY, 0) + idle_minutes * 60 - current
    absolute_left = (
        request.session.get(SIGNED_IN_AT, 0) + settings.SESSION_ABSOLUTE_TIMEOUT_SECONDS - current
    )
    return max(0, int(min(idle_left, absolute_left)))


def session_rekey(*, old_key: str, new_key: str) -> None:
    """Follow a session whose key changed, so it can still be ended by its user's admin."""
    UserSession.objects.filter(session_key=old_key).update(session_key=new_key)


@transaction.atomic
def sessions_end_for_user(*, user: User, keep_session_key: str | None = None) -> int:
    """End every session of the user's (but the one kept); return how many ended."""
    open_sessions = UserSession.objects.select_for_update().filter(user=user, ended_at=None)
    if keep_session_key:
        open_sessions = open_sessions.exclude(session_key=keep_session_key)
    keys = list(open_sessions.values_list("session_key", flat=True))
    for session_key in keys:
        _session_store(session_key).delete()
    open_sessions.update(ended_at=timezone_now())
    return len(keys)
