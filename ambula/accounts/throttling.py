"""Failed sign-ins slow down, then lock, the username and the source address.

Counted for usernames whether or not they exist, so a lock never reveals an account.
Thresholds are settings (LOGIN_THROTTLE in settings.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils.timezone import now as timezone_now

from ambula.accounts.models import LoginThrottle, User
from ambula.accounts.policy import Capability, require
from ambula.audit.services import record


def _limits() -> dict:
    return settings.LOGIN_THROTTLE


def username_key(username: str) -> str:
    """The form a username is counted under, so "JLee " and "jlee" share one counter."""
    return username.strip().lower()[:150]


def _keys(username: str, address: str) -> list[tuple[str, str, int, int]]:
    """(scope, key, slow down after, lock after) for each counter an attempt touches."""
    limits = _limits()
    keys = [
        (
            LoginThrottle.Scope.USERNAME,
            username_key(username),
            limits["slow_down_after"],
            limits["lock_after"],
        )
    ]
    if address:
        # Higher thresholds for an address: a whole clinic may share one.
        keys.append(
            (
                LoginThrottle.Scope.ADDRESS,
                address,
                limits["address_slow_down_after"],
                limits["address_lock_after"],
            )
        )
    return keys


def sign_in_retry_at(*, username: str, address: str) -> datetime | None:
    """Return when the next attempt will be heard, or None if it may be made now."""
    current = timezone_now()
    matching = Q()
    for scope, key, _slow_down_after, _lock_after in _keys(username, address):
        matching |= Q(scope=scope, key=key)
    waits = [
        until
        for throttle in LoginThrottle.objects.filter(matching)
        for until in (throttle.blocked_until, throttle.locked_until)
        if until is not None and until > current
    ]
    return max(waits, default=None)


@transaction.atomic
def sign_in_failure_record(*, username: str, address: str) -> None:
    """Count a failed attempt; past the thresholds, slow down and then lock."""
    limits = _limits()
    current = timezone_now()
    for scope, key, slow_down_after, lock_after in _keys(username, address):
        throttle, _ = LoginThrottle.objects.get_or_create(scope=scope, key=key)
        throttle = LoginThrottle.objects.select_for_update().get(pk=throttle.pk)
        forgotten = throttle.last_failure_at is None or current - throttle.last_failure_at > (
            timedelta(minutes=limits["forget_after_minutes"])
        )
        throttle.failures = 1 if forgotten else throttle.failures + 1
        throttle.last_failure_at = current
        if throttle.failures >= lock_after:
            throttle.locked_until = current + timedelta(minutes=limits["lock_minutes"])
        elif throttle.failures >= slow_down_after:
            # 1, 2, 4, 8 ... seconds between attempts, capped.
            delay = 2 ** (throttle.failures - slow_down_after)
            throttle.blocked_until = current + timedelta(
                seconds=min(delay, limits["max_delay_seconds"])
            )
        throttle.save()


@transaction.atomic
def sign_in_success_record(*, username: str) -> None:
    """Forget a username's failures once its owner signs in."""
    LoginThrottle.objects.filter(
        scope=LoginThrottle.Scope.USERNAME, key=username_key(username)
    ).delete()


def user_is_locked(*, user: User) -> bool:
    return LoginThrottle.objects.filter(
        scope=LoginThrottle.Scope.USERNAME,
        key=username_key(user.username),
        locked_until__gt=timezone_now(),
    ).exists()


@transaction.atomic
def user_unlock(*, actor: User, user: User) -> None:
    """Lift a sign-in lock on the user's account."""
    require(actor, Capability.MANAGE_ACCOUNTS)
    LoginThrottle.objects.filter(
        scope=LoginThrottle.Scope.USERNAME, key=username_key(user.username)
    ).delete()
    record(actor=actor, action="accounts.user_unlocked", category="accounts", target=user)
