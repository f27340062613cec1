from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from ambula.accounts.roles import Role
from ambula.core.fields import EncryptedTextField
from ambula.core.models import BaseModel


def normalize_username(username: str) -> str:
    """The one form a username is stored, looked up and counted in.

    Lower-cased in Python, then matched exactly: a database's own case-insensitive match can
    fold differently (PostgreSQL upper-cases a dotless i to I), which gives one account two names.
    """
    return username.strip().lower()


class UserManager(BaseUserManager):
    def get_by_natural_key(self, username: str) -> "User":
        return self.get(username=normalize_username(username))


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


class TOTPDevice(BaseModel):
    """An authenticator app enrolled for a user (RFC 6238, 30-second steps, 6 digits).

    `key` is a secret that signs anyone in as this user: it is encrypted at rest.
    """

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="totp_devices")
    key = EncryptedTextField(help_text="hex-encoded shared secret")
    confirmed = models.BooleanField(default=False)
    # The last time step accepted: a code is never accepted twice (replay protection).
    last_used_step = models.BigIntegerField(default=-1)

    class Meta:
        verbose_name = _("authenticator")
        constraints = [
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(confirmed=True),
                name="accounts_totpdevice_one_confirmed_per_user",
                violation_error_code="already_enrolled",
            ),
        ]


class RecoveryCode(BaseModel):
    """A one-time code for when the authenticator is lost. Only its keyed hash is stored."""

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="recovery_codes")
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("recovery code")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "code_hash"], name="accounts_recoverycode_unique"
            ),
        ]


class UserSession(BaseModel):
    """A signed-in session, so that deactivation or a password change can end it at once."""

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="sessions")
    session_key = models.CharField(max_length=40, unique=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)


class LoginThrottle(BaseModel):
    """Failed sign-ins counted per username and per source address."""

    class Scope(models.TextChoices):
        PAIR = "pair", _("username from one address")
        USERNAME = "username", _("username")
        ADDRESS = "address", _("address")

    scope = models.CharField(max_length=16, choices=Scope.choices)
    # A username (up to 150) with an address: "username|2001:db8:1:2::/64".
    key = models.CharField(max_length=200)
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    blocked_until = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("sign-in throttle")
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="accounts_loginthrottle_unique"),
        ]
