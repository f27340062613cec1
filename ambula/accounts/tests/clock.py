"""A clock the tests move by hand, standing in for `timezone_now` where the code reads it."""

from datetime import UTC, datetime, timedelta

from django.utils.timezone import now as timezone_now

from ambula.accounts import mfa, sessions, throttling, views

# Every module on the sign-in path that reads the time.
SIGN_IN_PATH = (mfa, views, sessions, throttling)


class Clock:
    """Time moves only when a test says so."""

    def __init__(self, start: datetime | None = None):
        if start is None:
            # The first second of a 30-second TOTP step, so that "one step later" is unambiguous.
            seconds = int(timezone_now().timestamp()) // 30 * 30
            start = datetime.fromtimestamp(seconds, tz=UTC)
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, delta: timedelta | None = None, **parts) -> None:
        self.moment += delta if delta is not None else timedelta(**parts)


def frozen_clock(monkeypatch, *, modules=SIGN_IN_PATH, start: datetime | None = None) -> Clock:
    clock = Clock(start)
    for module in modules:
        monkeypatch.setattr(module, "timezone_now", clock)
    return clock
