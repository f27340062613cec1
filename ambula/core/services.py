from django.db import transaction

from ambula.accounts.models import User
from ambula.core.models import Practice


@transaction.atomic
def practice_create(*, actor: User | None, name: str, is_demo: bool = False) -> Practice:
    """Set up this installation's practice; there is only ever one."""
    practice = Practice(name=name.strip(), is_demo=is_demo)
    practice.full_clean()
    practice.save()
    return practice
