import unicodedata

from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils.timezone import localdate
from django.utils.translation import gettext_lazy as _

from ambula.core.fields import BlindIndexField, EncryptedTextField
from ambula.core.models import BaseModel


def digits_only(value: str) -> str:
    return "".join(character for character in value if character in "0123456789")


def search_form(text: str) -> str:
    """Lower case without accents, so "José" and "jose" find each other."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


# What a clerk enters at registration (the rest is derived or set later).
REGISTERED_FIELDS = [
    "given_name",
    "middle_name",
    "family_name",
    "suffix",
    "preferred_name",
    "date_of_birth",
    "administrative_sex",
    "pronouns",
    "mobile_phone",
    "sms_consent",
    "email",
    "address_line",
    "city",
    "state",
    "postal_code",
    "ssn",
]


class Patient(BaseModel):
    """A person the practice cares for.

    PHI. Encrypted at rest: the SSN (with a keyed blind index for exact lookups). Names, date of
    birth and contact details are stored in clear so the front desk can search them by prefix
    in milliseconds; the database, its backups and its documents are protected as a whole
    (access control, encrypted backups), and every read is audited.
    """

    class Sex(models.TextChoices):
        FEMALE = "F", _("Female")
        MALE = "M", _("Male")
        UNKNOWN = "U", _("Unknown")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        INACTIVE = "inactive", _("Inactive")
        DECEASED = "deceased", _("Deceased")

    mrn = models.CharField(_("MRN"), max_length=8, unique=True, editable=False)
    given_name = models.CharField(_("first name"), max_length=100)
    middle_name = models.CharField(_("middle name"), max_length=100, blank=True)
    family_name = models.CharField(_("last name"), max_length=100)
    suffix = models.CharField(_("suffix"), max_length=20, blank=True)
    preferred_name = models.CharField(_("preferred name"), max_length=100, blank=True)
    date_of_birth = models.DateField(_("date of birth"))
    administrative_sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices)
    pronouns = models.CharField(_("pronouns"), max_length=40, blank=True)
    mobile_phone = models.CharField(_("mobile phone"), max_length=20, blank=True)
    sms_consent = models.BooleanField(_("agrees to text messages"), default=False)
    email = models.EmailField(_("email"), blank=True)
    address_line = models.CharField(_("street address"), max_length=200, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    state = models.CharField(_("state"), max_length=2, blank=True)
    postal_code = models.CharField(
        _("ZIP code"),
        max_length=10,
        blank=True,
        validators=[RegexValidator(r"^\d{5}(-\d{4})?$", _("Enter a ZIP code like 62701."))],
    )
    ssn = EncryptedTextField(_("SSN"), blank=True, null=True)
    ssn_index = BlindIndexField(source="ssn", purpose="patients.ssn", normalize=digits_only)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    no_known_allergies = models.BooleanField(
        _("no known allergies"),
        default=False,
        help_text=_("Asked and answered: the patient has no allergies (not just none recorded)."),
    )
    restricted = models.BooleanField(
        _("restricted record"), default=False, help_text=_("Sensitive: opening it needs a reason.")
    )
    # Derived on save for fast, accent- and case-insensitive prefix search.
    search_family_name = models.CharField(max_length=100, editable=False, db_index=True)
    search_given_name = models.CharField(max_length=100, editable=False, db_index=True)
    phone_digits = models.CharField(max_length=20, editable=False, blank=True, db_index=True)

    class Meta:
        verbose_name = _("patient")
        ordering = ["family_name", "given_name"]
        indexes = [
            models.Index(fields=["search_family_name", "search_given_name"]),
            models.Index(fields=["date_of_birth"]),
        ]

    def __str__(self) -> str:
        return f"{self.family_name}, {self.given_name} ({self.mrn})"

    @property
    def age(self) -> int:
        """Whole years today, in the practice's time zone."""
        today = localdate()
        born = self.date_of_birth
        return today.year - born.year - ((today.month, today.day) < (born.month, born.day))

    def save(self, *args, **kwargs):
        self.search_family_name = search_form(self.family_name)
        self.search_given_name = search_form(self.given_name)
        self.phone_digits = digits_only(self.mobile_phone)
        super().save(*args, **kwargs)


class MrnCounter(models.Model):
    """The last MRN number handed out. Its row lock makes two registrations never share one."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_number = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"MRN counter at {self.last_number}"


class Allergy(BaseModel):
    """A substance the patient reacts to. PHI: stored in clear for the chart's banner."""

    class Severity(models.TextChoices):
        MILD = "mild", _("Mild")
        MODERATE = "moderate", _("Moderate")
        SEVERE = "severe", _("Severe")
        UNKNOWN = "unknown", _("Unknown")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        RESOLVED = "resolved", _("Resolved")
        ENTERED_IN_ERROR = "entered_in_error", _("Entered in error")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="allergies")
    substance = models.CharField(_("substance"), max_length=200)
    reaction = models.CharField(_("reaction"), max_length=200, blank=True)
    severity = models.CharField(
        _("severity"), max_length=10, choices=Severity.choices, default=Severity.UNKNOWN
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)

    class Meta:
        verbose_name = _("allergy")
        verbose_name_plural = _("allergies")
        ordering = ["substance"]
        constraints = [
            models.UniqueConstraint(
                Lower("substance"),
                "patient",
                condition=models.Q(status="active"),
                name="patients_allergy_one_active_per_substance",
                violation_error_code="allergy_recorded",
                violation_error_message=_("This allergy is already on the list."),
            ),
        ]

    def __str__(self) -> str:
        return self.substance
