from collections.abc import Iterable

from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from ambula.accounts import emails
from ambula.accounts.models import RoleAssignment, User, normalize_username
from ambula.accounts.policy import Capability, require
from ambula.accounts.roles import Role
from ambula.accounts.sessions import session_rekey, sessions_end_for_user
from ambula.accounts.throttling import (
    check_throttled,
    sign_in_attempt_succeeded,
    sign_in_failure_audit,
)
from ambula.audit.services import record


def _assign_roles(user: User, roles: Iterable[Role]) -> None:
    for role in sorted({Role(role) for role in roles}):
        assignment = RoleAssignment(user=user, role=role)
        assignment.full_clean()
        assignment.save()


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
    if actor is not None:
        require(actor, Capability.MANAGE_ACCOUNTS)
    roles = [Role(role) for role in roles]
    if not roles:
        raise ValidationError({"roles": _("Choose at least one role.")}, code="roles_required")
    user = User(
        username=normalize_username(username),
        email=User.objects.normalize_email(email.strip()).lower(),
        full_name=full_name.strip(),
    )
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    user.full_clean()
    user.save()
    _assign_roles(user, roles)
    record(
        actor=actor,
        action="accounts.user_created",
        category="accounts",
        target=user,
        changes={"roles": sorted(roles)},
    )
    return user


@transaction.atomic
def user_invite(
    *,
    actor: User,
    username: str,
    email: str,
    full_name: str,
    roles: Iterable[Role],
) -> User:
    """Create a user without a password and email them a one-time link to set one."""
    user = user_create(
        actor=actor, username=username, email=email, full_name=full_name, roles=roles
    )
    record(actor=actor, action="accounts.user_invited", category="accounts", target=user)
    transaction.on_commit(lambda: emails.send_invitation(user=user))
    return user


@transaction.atomic
def user_invitation_resend(*, actor: User, user: User) -> None:
    """Send a fresh invitation to a user who has not set a password yet."""
    require(actor, Capability.MANAGE_ACCOUNTS)
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.has_usable_password():
        raise ValidationError(_("This user has already set a password."), code="already_active")
    # A fresh unusable password changes the hash every link is signed with: older links die.
    user.set_unusable_password()
    user.save(update_fields=["password", "updated_at"])
    record(actor=actor, action="accounts.user_invited", category="accounts", target=user)
    transaction.on_commit(lambda: emails.send_invitation(user=user))


@transaction.atomic
def user_roles_change(*, actor: User, user: User, roles: Iterable[Role]) -> User:
    """Replace the user's roles; takes effect on their next request."""
    require(actor, Capability.MANAGE_ACCOUNTS)
    user = User.objects.select_for_update().get(pk=user.pk)
    new_roles = sorted({Role(role) for role in roles})
    if not new_roles:
        raise ValidationError({"roles": _("Choose at least one role.")}, code="roles_required")
    old_roles = user.roles
    if user == actor and Role.ADMIN in old_roles and Role.ADMIN not in new_roles:
        raise ValidationError(
            _("You cannot remove your own administrator role."), code="self_demotion"
        )
    if old_roles == new_roles:
        return user
    user.role_assignments.all().delete()
    _assign_roles(user, new_roles)
    emails.security_notice_send(user=user, notice="roles_changed")
    record(
        actor=actor,
        action="accounts.roles_changed",
        category="accounts",
        target=user,
        changes={"before": old_roles, "after": new_roles},
    )
    return user


@transaction.atomic
def user_deactivate(*, actor: User, user: User) -> User:
    """Deactivate the user and end all their sessions at once."""
    require(actor, Capability.MANAGE_ACCOUNTS)
    if user == actor:
        raise ValidationError(
            _("You cannot deactivate your own account."), code="self_deactivation"
        )
    user = User.objects.select_for_update().get(pk=user.pk)
    if not user.is_active:
        return user
    user.is_active = False
    user.save(update_fields=["is_active", "updated_at"])
    ended = sessions_end_for_user(user=user)
    record(
        actor=actor,
        action="accounts.user_deactivated",
        category="accounts",
        target=user,
        changes={"sessions_ended": ended},
    )
    return user


@transaction.atomic
def user_reactivate(*, actor: User, user: User) -> User:
    """Let a deactivated user sign in again."""
    require(actor, Capability.MANAGE_ACCOUNTS)
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.is_active:
        return user
    user.is_active = True
    user.save(update_fields=["is_active", "updated_at"])
    record(actor=actor, action="accounts.user_reactivated", category="accounts", target=user)
    return user


def password_change(
    *, request: HttpRequest, user: User, current_password: str, new_password: str
) -> int:
    """Change the password after re-checking the current one; end the user's other sessions."""
    reauthenticate(request=request, user=user, password=current_password)
    # Validated before the transaction: the strength and breach checks take time, and the
    # write lock should not wait on them.
    validate_password(new_password, user)
    with transaction.atomic():
        return _password_change_write(request=request, user=user, new_password=new_password)


def reauthenticate(*, request: HttpRequest, user: User, password: str) -> None:
    """Check a signed-in user's password again, throttled and audited like a sign-in."""
    check_throttled(request, username=user.username, action="auth.reauthentication_failed")
    if not user.check_password(password):
        sign_in_failure_audit(
            username=user.username,
            reason="password",
            action="auth.reauthentication_failed",
            actor=user,
        )
        raise ValidationError(_("That is not your current password."), code="wrong_password")
    sign_in_attempt_succeeded(username=user.username, address=request.client_ip)


def _password_change_write(*, request: HttpRequest, user: User, new_password: str) -> int:
    user.set_password(new_password)
    user.save(update_fields=["password", "updated_at"])
    old_session_key = request.session.session_key
    update_session_auth_hash(request, user)  # gives this session a new key
    session_rekey(old_key=old_session_key, new_key=request.session.session_key)
    ended = sessions_end_for_user(user=user, keep_session_key=request.session.session_key)
    emails.security_notice_send(user=user, notice="password_changed")
    record(
        actor=user,
        action="auth.password_changed",
        category="authentication",
        target=user,
        changes={"other_sessions_ended": ended},
    )
    return ended


def password_set(*, user: User, new_password: str, token: str) -> User:
    """Set the password from a one-time link; the link stops working as it is used."""
    validate_password(new_password, user)
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        # Checked again under the lock: two submissions of one link cannot both succeed.
        if not default_token_generator.check_token(user, token):
            raise ValidationError(_("This link was already used."), code="link_used")
        user.set_password(new_password)
        user.save(update_fields=["password", "updated_at"])
        record(actor=None, action="auth.password_set", category="authentication", target=user)
        return user
