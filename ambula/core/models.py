from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from ambula.core.ids import uuid7


class BaseModel(models.Model):
    """Every domain table: a time-ordered UUID key and creation/update stamps."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Practice(BaseModel):
    """The organisation that runs this installation. One per install."""

    name = models.CharField(_("name"), max_length=200)
    is_demo = models.BooleanField(
        _("demo practice"),
        default=False,
        help_text=_("Holds synthetic data only; the sign-in page says so."),
    )
    mfa_required = models.BooleanField(
        _("require two-step sign-in for staff"),
        default=True,
        help_text=_("Staff must confirm each sign-in with an authenticator app."),
    )
    idle_timeout_minutes = models.PositiveSmallIntegerField(
        _("sign out after this many idle minutes"),
        default=15,
        validators=[MinValueValidator(2), MaxValueValidator(240)],
    )

    class CareRelationship(models.TextChoices):
        PRIMARY_CARE = "primary_care", _("Only the patient's primary care provider")
        NOBODY = "nobody", _("Nobody: everyone gives a reason")

    care_relationship = models.CharField(
        _("who opens restricted records without giving a reason"),
        max_length=20,
        choices=CareRelationship.choices,
        default=CareRelationship.PRIMARY_CARE,
    )
    emergency_access_minutes = models.PositiveSmallIntegerField(
        _("emergency access lasts (minutes)"),
        default=60,
        validators=[MinValueValidator(5), MaxValueValidator(720)],
    )
    singleton = models.BooleanField(default=True, editable=False)

    class Meta:
        verbose_name = _("practice")
        constraints = [
            models.UniqueConstraint(
                fields=["singleton"],
                name="core_practice_one_per_install",
                violation_error_code="practice_exists",
                violation_error_message=_("This installation already has a practice."),
            ),
            models.CheckConstraint(
                condition=models.Q(singleton=True),
                name="core_practice_singleton_true",
            ),
            models.CheckConstraint(
                condition=models.Q(idle_timeout_minutes__gte=2, idle_timeout_minutes__lte=240),
                name="core_practice_idle_timeout_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name
