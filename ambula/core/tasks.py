"""Periodic housekeeping run by `ambula worker`."""

from django.core.management import call_command
from huey import crontab
from huey.contrib.djhuey import db_periodic_task


@db_periodic_task(crontab(minute="17", hour="3"))
def clear_expired_sessions() -> None:
    """Delete expired sessions nightly so the session table does not grow without end."""
    call_command("clearsessions")


@db_periodic_task(crontab(minute="23", hour="3"))
def purge_sign_in_throttles() -> None:
    """Forget sign-in counters nobody has tripped for a day."""
    from ambula.accounts.throttling import throttles_purge

    throttles_purge()
