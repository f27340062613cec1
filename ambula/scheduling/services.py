from django.db import transaction

from ambula.accounts.models import User
from ambula.scheduling.models import Location


@transaction.atomic
def location_create(
    *,
    actor: User | None,
    name: str,
    address_line: str,
    city: str,
    state: str,
    postal_code: str,
    phone: str = "",
) -> Location:
    """Open a new location where the practice sees patients."""
    location = Location(
        name=name.strip(),
        address_line=address_line.strip(),
        city=city.strip(),
        state=state.strip().upper(),
        postal_code=postal_code.strip(),
        phone=phone.strip(),
    )
    location.full_clean()
    location.save()
    return location
