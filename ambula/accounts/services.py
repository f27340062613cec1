from collections.abc import Iterable

from django.db import transaction

from ambula.accounts.models import RoleAssignment, User
from ambula.accounts.roles import Role


@transaction.atomic
def user_create(
    *,
    actor: User | None,
    username: str,
    email: str,
    full_name: str,
    roles: Iterable[Role],
    password: str | None = None,
) -> User:
    """Create a user holding the given roles; without a password they cannot sign in yet."""
    user = User(
        username=username.strip().lower(),
        email=User.objects.normalize_email(email.strip()).lower(),
        full_name=full_name.strip(),
    )
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    user.full_clean()
    user.save()
    for role in sorted(set(roles)):
        assignment = RoleAssignment(user=user, role=Role(role))
        assignment.full_clean()
        assignment.save()
    return user
