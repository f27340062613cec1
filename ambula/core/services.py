from django.db import transaction

from ambula.accounts.models import User
from ambula.accounts.policy import Capability, require
from ambula.audit.services import record
from ambula.core.models import Practice


@transaction.atomic
def practice_create(
    *, actor: User | None, name: str, is_demo: bool = False, mfa_required: bool = True
) -> Practice:
    """Set up this installation's practice; there is only ever one."""
    practice = Practice(name=name.strip(), is_demo=is_demo, mfa_required=mfa_required)
    practice.full_clean()
    practice.save()
    return practice


@transaction.atomic
def practice_security_update(
    *, actor: User, practice: Practice, mfa_required: bool, idle_timeout_minutes: int
) -> Practice:
    """Change whether staff need two-step sign-in and how soon idle sessions end."""
    require(actor, Capability.MANAGE_PRACTICE)
    practice = Practice.objects.select_for_update().get(pk=practice.pk)
    before = {
        "mfa_required": practice.mfa_required,
        "idle_timeout_minutes": practice.idle_timeout_minutes,
    }
    practice.mfa_required = mfa_required
    practice.idle_timeout_minutes = idle_timeout_minutes
    practice.full_clean()
    after = {"mfa_required": mfa_required, "idle_timeout_minutes": idle_timeout_minutes}
    if after != before:
        practice.save()
        record(
            actor=actor,
            action="practice.settings_changed",
            category="practice",
            target=practice,
            changes={"before": before, "after": after},
        )
    return practice
