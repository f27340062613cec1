from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet, Value
from django.db.models.functions import Concat
from django.utils.timezone import now as timezone_now

from ambula.accounts.models import LoginThrottle, RoleAssignment, TOTPDevice, User
from ambula.accounts.policy import Capability, visible
from ambula.core.errors import NotFound


def user_list(*, actor: User) -> QuerySet[User]:
    """Every account with its roles, MFA and lock status, for administrators."""
    return visible(
        actor,
        Capability.MANAGE_ACCOUNTS,
        User.objects.order_by("full_name", "username")
        .prefetch_related(Prefetch("role_assignments", queryset=RoleAssignment.objects.all()))
        .annotate(
            mfa_enrolled=Exists(TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)),
            locked=Exists(
                LoginThrottle.objects.filter(locked_until__gt=timezone_now()).filter(
                    Q(scope=LoginThrottle.Scope.USERNAME, key=OuterRef("username"))
                    | Q(
                        scope=LoginThrottle.Scope.PAIR,
                        key__startswith=Concat(OuterRef("username"), Value("|")),
                    )
                )
            ),
        ),
    )


def user_get(*, actor: User, user_id) -> User:
    """One account, or NotFound whether it is missing or not the actor's to see."""
    try:
        return user_list(actor=actor).get(pk=user_id)
    except (User.DoesNotExist, ValueError):
        raise NotFound from None
