from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from ambula.accounts.roles import Role
from ambula.core.models import BaseModel


class UserManager(BaseUserManager):
    def get_by_natural_key(self, username: str) -> "User":
        return self.get(username__iexact=username)


class User(BaseModel, AbstractBaseUser):
    """A person who signs in. Deactivated, never deleted, so the audit trail always resolves."""

    username = models.CharField(_("username"), max_length=150)
    email = models.EmailField(_("email address"))
    full_name = models.CharField(_("full name"), max_length=200)
    is_active = models.BooleanField(_("active"), default=True)

    objects = UserManager()

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["email", "full_name"]

    class Meta:
        verbose_name = _("user")
        constraints = [
            models.UniqueConstraint(
                Lower("username"),
                name="accounts_user_username_unique",
                violation_error_code="username_taken",
                violation_error_message=_("This username is already in use."),
            ),
            models.UniqueConstraint(
                Lower("email"),
                name="accounts_user_email_unique",
                violation_error_code="email_taken",
                violation_error_message=_("This email address is already in use."),
            ),
        ]

    def __str__(self) -> str:
        return self.full_name or self.username

    @property
    def initials(self) -> str:
        """Up to two initials for an avatar, skipping titles such as "Dr."."""
        words = [word for word in self.full_name.split() if not word.endswith(".")]
        if not words:
            return self.username[:1].upper()
        if len(words) == 1:
            return words[0][0].upper()
        return (words[0][0] + words[-1][0]).upper()

    @property
    def roles(self) -> list[Role]:
        return sorted(Role(assignment.role) for assignment in self.role_assignments.all())


class RoleAssignment(BaseModel):
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="role_assignments")
    role = models.CharField(_("role"), max_length=32, choices=Role.choices)

    class Meta:
        verbose_name = _("role assignment")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "role"],
                name="accounts_roleassignment_unique",
                violation_error_code="role_assigned",
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=Role.values),
                name="accounts_roleassignment_known_role",
                violation_error_code="unknown_role",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.role}"
