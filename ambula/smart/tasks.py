"""Nightly housekeeping for the authorization server, run by `ambula worker`."""

from huey import crontab
from huey.contrib.djhuey import db_periodic_task


@db_periodic_task(crontab(minute="41", hour="3"))
def clear_expired_tokens() -> None:
    """Delete expired tokens, codes and spent assertion ids so the tables do not grow forever."""
    from django.utils.timezone import now as timezone_now
    from oauth2_provider.models import clear_expired

    from ambula.smart.models import AssertionJti

    clear_expired()
    AssertionJti.objects.filter(expires_at__lt=timezone_now()).delete()
