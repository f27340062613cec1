from ambula.core.models import Practice


def practice_get() -> Practice | None:
    """Return this installation's practice, or None before setup."""
    return Practice.objects.first()
