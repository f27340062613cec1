"""Failed sign-ins slow down, then lock, further attempts — without handing attackers a way
to lock everyone out.

Three counters per attempt, each with its own thresholds (LOGIN_THROTTLE in settings.py):
- the username with this address: locks soon (10 failures), so one source cannot guess on;
- the username alone: only slows down, locking after 100 failures (NIST SP 800-63B's limit),
  so someone elsewhere cannot lock a colleague out with a few wrong passwords;
- the address (an IPv6 /64 counts as one): slows and locks late, since a clinic shares one.

An attempt is counted *before* its credential is checked (`sign_in_attempt_reserve`), under
the counters' row locks, so concurrent attempts cannot all slip in under the threshold; a
success takes the reservation back. Usernames are counted whether or not they exist, so the
answers never reveal an account.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.timezone import now as timezone_now
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ambula.accounts.emails import security_notice_send
from ambula.accounts.models import LoginThrottle, User, normalize_username
from ambula.accounts.policy import Capability, require
from ambula.audit.models import AuditEvent
from ambula.audit.services import record


def address_key(address: str) -> str:
    """IPv6 clients get a whole /64 each, so the /64 is what is counted."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return ""
    if parsed.version == 4:
        return str(parsed)
    if parsed.ipv4_mapped:
        return str(parsed.ipv4_mapped)
    return str(ipaddress.ip_network(f"{parsed}/64", strict=False))


def _pair_key(username: str, address: str) -> str:
    return f"{normalize_username(username)}|{address_key(address)}"


def _counters(username: str, address: str) -> list[tuple[str, str, int | None, int]]:
    """(scope, key, slow down after, lock after) for each counter an attempt touches."""
    limits = settings.LOGIN_THROTTLE
    counters = [
        (LoginThrottle.Scope.PAIR, _pair_key(username, address), None, limits["lock_after"]),
        (
            LoginThrottle.Scope.USERNAME,
            normalize_username(username),
            limits["slow_down_after"],
            limits["username_lock_after"],
        ),
    ]
    if address_key(address):
        counters.append(
            (
                LoginThrottle.Scope.ADDRESS,
                address_key(address),
                limits["address_slow_down_after"],
                limits["address_lock_after"],
            )
        )
    return counters


def _locked_rows(username: str, address: str) -> list[tuple[LoginThrottle, int | None, int]]:
    rows = []
    # Always in the same order, so two transactions never wait on each other's rows.
    for scope, key, slow_down_after, lock_after in sorted(_counters(username, address)):
        LoginThrottle.objects.get_or_create(scope=scope, key=key)
        throttle = LoginThrottle.objects.select_for_update().get(scope=scope, key=key)
        rows.append((throttle, slow_down_after, lock_after))
    return rows


def _wait_until(throttle: LoginThrottle, current: datetime) -> datetime | None:
    waits = [
        until
        for until in (throttle.blocked_until, throttle.locked_until)
        if until is not None and until > current
    ]
    return max(waits, default=None)


def _count_failure(throttle, slow_down_after, lock_after, current) -> bool:
    """Add one failure; return True when this one locked the counter."""
    limits = settings.LOGIN_THROTTLE
    forget = timedelta(minutes=limits["forget_after_minutes"])
    stale = throttle.last_failure_at is None or current - throttle.last_failure_at > forget
    throttle.failures = 1 if stale else throttle.failures + 1
    throttle.last_failure_at = current
    locked = throttle.failures >= lock_after
    if locked:
        throttle.locked_until = current + timedelta(minutes=limits["lock_minutes"])
    elif slow_down_after is not None and throttle.failures >= slow_down_after:
        # 1, 2, 4, 8 ... seconds between attempts, capped.
        delay = min(2 ** (throttle.failures - slow_down_after), limits["max_delay_seconds"])
        throttle.blocked_until = current + timedelta(seconds=delay)
    throttle.save()
    return locked


@transaction.atomic
def sign_in_attempt_reserve(*, username: str, address: str) -> datetime | None:
    """Count an attempt before its credential is checked; or say when to come back.

    Returns None when the attempt may go ahead (already counted as a failure, which
    `sign_in_attempt_succeeded` takes back), else the time the next attempt will be heard.
    """
    current = timezone_now()
    rows = _locked_rows(username, address)
    waits = [until for throttle, *_limits in rows if (until := _wait_until(throttle, current))]
    if waits:
        return max(waits)
    _count_failures(rows, username, current)
    return None


def _count_failures(rows, username: str, current: datetime) -> None:
    """Add a failure to each counter; record each lock this sets, and tell the account owner."""
    for throttle, slow_down_after, lock_after in rows:
        if not _count_failure(throttle, slow_down_after, lock_after, current):
            continue
        record(
            actor=None,
            action="auth.sign_in_locked",
            category="authentication",
            username=normalize_username(username),
            changes={"scope": throttle.scope},
        )
        account = User.objects.filter(username=normalize_username(username)).first()
        if account is not None and throttle.scope != LoginThrottle.Scope.ADDRESS:
            security_notice_send(user=account, notice="sign_in_locked")


def too_many_attempts(retry_at) -> ValidationError:
    seconds = max(1, int((retry_at - timezone_now()).total_seconds()))
    if seconds < 90:
        wait = ngettext("%(count)d second", "%(count)d seconds", seconds) % {"count": seconds}
    else:
        minutes = round(seconds / 60)
        wait = ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}
    return ValidationError(
        _("Too many attempts. Please wait %(wait)s and try again."),
        code="throttled",
        params={"wait": wait},
    )


def sign_in_failure_audit(
    *, username: str, reason: str, action: str = "auth.sign_in_failed", actor: User | None = None
) -> None:
    """Record a failed or refused attempt (the throttle counted it already)."""
    record(
        actor=actor,
        action=action,
        category="authentication",
        outcome=AuditEvent.Outcome.FAILURE,
        username=username,
        changes={"reason": reason},
    )


def check_throttled(request, *, username: str, action: str = "auth.sign_in_failed") -> None:
    """Count this attempt, or refuse it unchecked while the counters say wait."""
    retry_at = sign_in_attempt_reserve(username=username, address=request.client_ip)
    if retry_at is not None:
        actor = request.user if request.user.is_authenticated else None
        sign_in_failure_audit(username=username, reason="throttled", action=action, actor=actor)
        raise too_many_attempts(retry_at)


def sign_in_failure_record(*, username: str, address: str) -> None:
    """Count a failed attempt whatever the counters say (for callers that checked already)."""
    with transaction.atomic():
        _count_failures(_locked_rows(username, address), username, timezone_now())


@transaction.atomic
def sign_in_attempt_succeeded(*, username: str, address: str) -> None:
    """Take back this attempt's reservation: its credential was right.

    Only this attempt's count goes: wrong two-step codes entered after a right password
    keep counting, so knowing the password buys no fresh guesses at the code.
    """
    for throttle, _slow_down_after, _lock_after in _locked_rows(username, address):
        throttle.failures = max(0, throttle.failures - 1)
        throttle.save(update_fields=["failures", "updated_at"])


@transaction.atomic
def sign_in_completed(*, username: str, address: str) -> None:
    """The user is in: forget the failures of their username, here and from anywhere."""
    for throttle, _slow_down_after, _lock_after in _locked_rows(username, address):
        if throttle.scope != LoginThrottle.Scope.ADDRESS:
            throttle.delete()


def _user_counters(user: User):
    username = normalize_username(user.username)
    return LoginThrottle.objects.filter(
        scope=LoginThrottle.Scope.USERNAME, key=username
    ) | LoginThrottle.objects.filter(scope=LoginThrottle.Scope.PAIR, key__startswith=f"{username}|")


def user_is_locked(*, user: User) -> bool:
    return _user_counters(user).filter(locked_until__gt=timezone_now()).exists()


@transaction.atomic
def user_unlock(*, actor: User, user: User) -> None:
    """Lift every sign-in lock on the user's account."""
    require(actor, Capability.MANAGE_ACCOUNTS)
    _user_counters(user).delete()
    record(actor=actor, action="accounts.user_unlocked", category="accounts", target=user)


def throttles_purge(*, older_than: timedelta = timedelta(days=1)) -> int:
    """Forget counters nobody has tripped for a while, so the table does not grow forever."""
    deleted, _ = LoginThrottle.objects.filter(updated_at__lt=timezone_now() - older_than).delete()
    return deleted
