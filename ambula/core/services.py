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


SECURITY_SETTINGS = (
    "mfa_required",
    "idle_timeout_minutes",
    "care_relationship",
    "emergency_access_minutes",
)


@transaction.atomic
def practice_security_update(*, actor: User, practice: Practice, **settings) -> Practice:
    """Change how staff sign in, how soon idle sessions end, and who opens restricted records."""
    require(actor, Capability.MANAGE_PRACTICE)
    unknown = set(settings) - set(SECURITY_SETTINGS)
    if unknown:
        raise TypeError(f"Unknown practice settings: {', '.join(sorted(unknown))}")
    practice = Practice.objects.select_for_update().get(pk=practice.pk)
    changed = {name for name, value in settings.items() if getattr(practice, name) != value}
    before = {name: getattr(practice, name) for name in changed}
    for name, value in settings.items():
        setattr(practice, name, value)
    practice.full_clean()
    if changed:
        practice.save()
        record(
            actor=actor,
            action="practice.settings_changed",
            category="practice",
            target=practice,
            changes={"before": before, "after": {name: settings[name] for name in changed}},
        )
    return practice
