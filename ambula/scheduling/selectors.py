from django.db.models import QuerySet

from ambula.accounts.models import User
from ambula.scheduling.models import Location


def location_list(*, actor: User) -> QuerySet[Location]:
    """Return the practice's active locations, by name."""
    return Location.objects.filter(is_active=True).order_by("name")
