import unicodedata

from django.conf import settings
from django.core.files.storage import storages
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
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
        MERGED = "merged", _("Merged into another record")

    class MaritalStatus(models.TextChoices):
        # HL7 v3 MaritalStatus codes, as US Core uses them.
        UNKNOWN = "UNK", _("Unknown")
        SINGLE = "S", _("Never married")
        MARRIED = "M", _("Married")
        DOMESTIC_PARTNER = "T", _("Domestic partner")
        DIVORCED = "D", _("Divorced")
        SEPARATED = "L", _("Legally separated")
        WIDOWED = "W", _("Widowed")

    class Ethnicity(models.TextChoices):
        # OMB ethnicity categories (CDC race and ethnicity codes), as USCDI asks.
        UNKNOWN = "", _("Not asked")
        HISPANIC = "2135-2", _("Hispanic or Latino")
        NOT_HISPANIC = "2186-5", _("Not Hispanic or Latino")
        DECLINED = "ASKU", _("Declined to answer")

    class ReminderChannel(models.TextChoices):
        SMS = "sms", _("Text message")
        EMAIL = "email", _("Email")
        NONE = "none", _("No reminders")

    mrn = models.CharField(_("MRN"), max_length=8, unique=True, editable=False)
    given_name = models.CharField(_("first name"), max_length=100)
    middle_name = models.CharField(_("middle name"), max_length=100, blank=True)
    family_name = models.CharField(_("last name"), max_length=100)
    suffix = models.CharField(_("suffix"), max_length=20, blank=True)
    preferred_name = models.CharField(_("preferred name"), max_length=100, blank=True)
    date_of_birth = models.DateField(_("date of birth"))
    administrative_sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices)
    gender_identity = models.CharField(_("gender identity"), max_length=60, blank=True)
    pronouns = models.CharField(_("pronouns"), max_length=40, blank=True)
    mobile_phone = models.CharField(_("mobile phone"), max_length=20, blank=True)
    sms_consent = models.BooleanField(_("agrees to text messages"), default=False)
    home_phone = models.CharField(_("home phone"), max_length=20, blank=True)
    work_phone = models.CharField(_("work phone"), max_length=20, blank=True)
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
    preferred_language = models.CharField(
        _("preferred language"), max_length=40, blank=True, help_text=_("e.g. English, Spanish")
    )
    interpreter_needed = models.BooleanField(_("needs an interpreter"), default=False)
    # OMB race categories (CDC codes, see RACE_CATEGORIES); several may apply.
    race = models.JSONField(_("race"), default=list, blank=True)
    ethnicity = models.CharField(
        _("ethnicity"), max_length=6, choices=Ethnicity.choices, blank=True, default=""
    )
    marital_status = models.CharField(
        _("marital status"),
        max_length=3,
        choices=MaritalStatus.choices,
        default=MaritalStatus.UNKNOWN,
    )
    reminder_channel = models.CharField(
        _("reminders by"), max_length=5, choices=ReminderChannel.choices, default="sms"
    )
    marketing_opt_out = models.BooleanField(_("no newsletters or campaigns"), default=True)
    primary_care_provider = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("primary care provider"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="primary_care_patients",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    deceased_date = models.DateField(_("date of death"), null=True, blank=True)
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="merged_from",
        help_text=_("The surviving record, once this duplicate was merged into it."),
    )
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
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status="deceased") | models.Q(deceased_date__isnull=False),
                name="patients_patient_deceased_has_date",
                violation_error_code="deceased_date_required",
                violation_error_message=_("Enter the date of death."),
            ),
            models.CheckConstraint(
                condition=models.Q(status="merged", merged_into__isnull=False)
                | (~models.Q(status="merged") & models.Q(merged_into__isnull=True)),
                name="patients_patient_merged_points_to_survivor",
            ),
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


RACE_CATEGORIES = {
    # OMB minimum race categories with their CDC Race & Ethnicity codes (USCDI, US Core).
    "1002-5": _("American Indian or Alaska Native"),
    "2028-9": _("Asian"),
    "2054-5": _("Black or African American"),
    "2076-8": _("Native Hawaiian or Other Pacific Islander"),
    "2106-3": _("White"),
    "2131-1": _("Other race"),
    "ASKU": _("Declined to answer"),
}


class Contact(BaseModel):
    """Someone to call in an emergency, or who pays the bills (the guarantor). PHI, in clear."""

    class Kind(models.TextChoices):
        EMERGENCY = "emergency", _("Emergency contact")
        GUARANTOR = "guarantor", _("Guarantor")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="contacts")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=200)
    relationship = models.CharField(_("relationship"), max_length=40)
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    email = models.EmailField(_("email"), blank=True)
    address = models.CharField(_("address"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("contact")
        ordering = ["kind", "created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.relationship})"


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


def member_id_form(value: str) -> str:
    """Member IDs compare without case, spaces or dashes: cards print them every which way."""
    return "".join(character for character in value.upper() if character.isalnum())


class Payer(BaseModel):
    """An insurer in the practice's payer directory. Not PHI."""

    name = models.CharField(_("name"), max_length=200)
    payer_id = models.CharField(
        _("payer ID"),
        max_length=20,
        unique=True,
        validators=[RegexValidator(r"^[A-Za-z0-9]{2,20}$", _("Letters and digits only."))],
        help_text=_("The electronic payer ID used on claims (e.g. 60054)."),
    )
    address_line = models.CharField(_("claims address"), max_length=200, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    state = models.CharField(_("state"), max_length=2, blank=True)
    postal_code = models.CharField(_("ZIP code"), max_length=10, blank=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("payer")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.payer_id})"


class Coverage(BaseModel):
    """A patient's insurance plan with one payer.

    PHI. Encrypted at rest: the member ID (with a blind index, so the front desk can find a
    patient by the number on the card). Plan, group number and subscriber details are in clear.
    """

    class Priority(models.IntegerChoices):
        PRIMARY = 1, _("Primary")
        SECONDARY = 2, _("Secondary")
        TERTIARY = 3, _("Tertiary")

    class Relationship(models.TextChoices):
        # X12 individual relationship codes (loop 2000B SBR02 / 2000C PAT01).
        SELF = "18", _("Self")
        SPOUSE = "01", _("Spouse")
        CHILD = "19", _("Child")
        OTHER = "G8", _("Other")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        ENDED = "ended", _("Ended")
        ENTERED_IN_ERROR = "entered_in_error", _("Entered in error")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="coverages")
    payer = models.ForeignKey(Payer, on_delete=models.PROTECT, related_name="coverages")
    plan_name = models.CharField(_("plan"), max_length=200, blank=True)
    member_id = EncryptedTextField(_("member ID"))
    member_id_index = BlindIndexField(
        source="member_id", purpose="patients.member_id", normalize=member_id_form
    )
    group_number = models.CharField(_("group number"), max_length=50, blank=True)
    priority = models.PositiveSmallIntegerField(
        _("priority"), choices=Priority.choices, default=Priority.PRIMARY
    )
    relationship = models.CharField(
        _("patient's relationship to subscriber"),
        max_length=2,
        choices=Relationship.choices,
        default=Relationship.SELF,
    )
    # The subscriber when it is someone else (a parent's or spouse's plan).
    subscriber_given_name = models.CharField(_("subscriber first name"), max_length=100, blank=True)
    subscriber_family_name = models.CharField(_("subscriber last name"), max_length=100, blank=True)
    subscriber_date_of_birth = models.DateField(
        _("subscriber date of birth"), null=True, blank=True
    )
    subscriber_sex = models.CharField(
        _("subscriber sex"), max_length=1, choices=Patient.Sex.choices, blank=True
    )
    effective_from = models.DateField(_("effective from"), null=True, blank=True)
    effective_to = models.DateField(_("effective to"), null=True, blank=True)
    copay = models.DecimalField(
        _("copay"),
        max_digits=8,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    card_front = models.ForeignKey(
        "Document", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    card_back = models.ForeignKey(
        "Document", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("coverage")
        verbose_name_plural = _("coverage")
        ordering = ["priority"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "priority"],
                condition=models.Q(status="active"),
                name="patients_coverage_one_active_per_priority",
                violation_error_code="priority_taken",
                violation_error_message=_(
                    "The patient already has an active plan at this priority."
                ),
            ),
            models.CheckConstraint(
                condition=models.Q(effective_to__isnull=True)
                | models.Q(effective_from__isnull=True)
                | models.Q(effective_to__gte=models.F("effective_from")),
                name="patients_coverage_dates_in_order",
                violation_error_code="dates_out_of_order",
                violation_error_message=_("The coverage ends before it starts."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.payer.name} ({self.get_priority_display()})"


class Problem(BaseModel):
    """An entry on the problem list, coded in ICD-10-CM. PHI, in clear for the chart.

    The code and its description are copied from the code table when recorded, so the entry
    keeps its meaning after the code set moves on.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        RESOLVED = "resolved", _("Resolved")
        ENTERED_IN_ERROR = "entered_in_error", _("Entered in error")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="problems")
    code = models.CharField(_("ICD-10-CM code"), max_length=8)
    description = models.CharField(_("description"), max_length=300)
    onset = models.DateField(_("onset"), null=True, blank=True)
    resolved_on = models.DateField(_("resolved on"), null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    note = models.TextField(_("note"), max_length=2000, blank=True)

    class Meta:
        verbose_name = _("problem")
        ordering = ["status", "-onset", "description"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "code"],
                condition=models.Q(status="active"),
                name="patients_problem_one_active_per_code",
                violation_error_code="problem_recorded",
                violation_error_message=_("This problem is already on the list."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.description}"


class Medication(BaseModel):
    """A medication the patient takes or took. PHI, in clear for the chart."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        STOPPED = "stopped", _("Stopped")
        ENTERED_IN_ERROR = "entered_in_error", _("Entered in error")

    class Route(models.TextChoices):
        ORAL = "oral", _("By mouth")
        TOPICAL = "topical", _("On the skin")
        INHALED = "inhaled", _("Inhaled")
        SUBCUTANEOUS = "subcutaneous", _("Under the skin (injection)")
        INTRAMUSCULAR = "intramuscular", _("Into a muscle (injection)")
        INTRAVENOUS = "intravenous", _("Intravenous")
        SUBLINGUAL = "sublingual", _("Under the tongue")
        NASAL = "nasal", _("In the nose")
        OPHTHALMIC = "ophthalmic", _("In the eye")
        OTIC = "otic", _("In the ear")
        RECTAL = "rectal", _("Rectal")
        VAGINAL = "vaginal", _("Vaginal")
        TRANSDERMAL = "transdermal", _("Patch")
        OTHER = "other", _("Other")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="medications")
    name = models.CharField(_("medication"), max_length=200)
    dose = models.CharField(_("dose"), max_length=100, blank=True, help_text=_("e.g. 500 mg"))
    route = models.CharField(_("route"), max_length=20, choices=Route.choices, default=Route.ORAL)
    frequency = models.CharField(
        _("how often"), max_length=100, blank=True, help_text=_("e.g. twice daily")
    )
    started_on = models.DateField(_("started"), null=True, blank=True)
    stopped_on = models.DateField(_("stopped"), null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    note = models.CharField(_("note"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("medication")
        ordering = ["status", "name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(stopped_on__isnull=True)
                | models.Q(started_on__isnull=True)
                | models.Q(stopped_on__gte=models.F("started_on")),
                name="patients_medication_dates_in_order",
                violation_error_code="dates_out_of_order",
                violation_error_message=_("The medication stops before it starts."),
            ),
        ]

    def __str__(self) -> str:
        return " ".join(part for part in (self.name, self.dose, self.frequency) if part)


class HistoryEntry(BaseModel):
    """One line of past medical, surgical or family history. PHI, in clear for the chart."""

    class Kind(models.TextChoices):
        MEDICAL = "medical", _("Past medical")
        SURGICAL = "surgical", _("Surgical")
        FAMILY = "family", _("Family")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="history")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    condition = models.CharField(_("condition or procedure"), max_length=200)
    relation = models.CharField(
        _("relation"), max_length=40, blank=True, help_text=_("For family history: e.g. mother")
    )
    year = models.PositiveSmallIntegerField(
        _("year"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1880), MaxValueValidator(2200)],
    )
    note = models.CharField(_("note"), max_length=500, blank=True)
    entered_in_error = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("history entry")
        verbose_name_plural = _("history")
        ordering = ["kind", "-year", "condition"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(kind="family") | ~models.Q(relation=""),
                name="patients_history_family_has_relation",
                violation_error_code="relation_required",
                violation_error_message=_("Say who in the family had it."),
            ),
        ]

    def __str__(self) -> str:
        return self.condition


class SocialHistory(BaseModel):
    """Tobacco, alcohol and occupation: one current record per patient. PHI, in clear."""

    class Tobacco(models.TextChoices):
        # The SNOMED CT smoking status values US Core uses.
        UNKNOWN = "266927001", _("Unknown if ever smoked")
        NEVER = "266919005", _("Never smoker")
        FORMER = "8517006", _("Former smoker")
        EVERY_DAY = "449868002", _("Smokes every day")
        SOME_DAYS = "428041000124106", _("Smokes some days")

    class Alcohol(models.TextChoices):
        UNKNOWN = "unknown", _("Not asked")
        NONE = "none", _("Does not drink")
        OCCASIONAL = "occasional", _("Occasionally")
        MODERATE = "moderate", _("Moderately")
        HEAVY = "heavy", _("Heavily")

    patient = models.OneToOneField(Patient, on_delete=models.PROTECT, related_name="social_history")
    tobacco = models.CharField(
        _("tobacco use"), max_length=20, choices=Tobacco.choices, default=Tobacco.UNKNOWN
    )
    alcohol = models.CharField(
        _("alcohol use"), max_length=10, choices=Alcohol.choices, default=Alcohol.UNKNOWN
    )
    occupation = models.CharField(_("occupation"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("social history")
        verbose_name_plural = _("social history")

    def __str__(self) -> str:
        return f"Social history of {self.patient_id}"


def documents_storage():
    # A callable keeps the storage out of migrations; Django calls it once, at class creation.
    return storages["documents"]


def document_path(document: "Document", filename: str) -> str:
    # Never the uploaded name: it may carry PHI and it is not ours to trust.
    return f"patients/{document.patient_id}/{document.pk}"


class Document(BaseModel):
    """A scanned or uploaded file in the patient's record.

    PHI. Encrypted at rest: the file itself (EncryptedFileSystemStorage). The title and the
    original file name are in clear so the chart can list them; the content type is the one
    sniffed from the bytes at upload, never the one the browser claimed.
    """

    class Category(models.TextChoices):
        INSURANCE_CARD = "insurance_card", _("Insurance card")
        IDENTIFICATION = "identification", _("Identification")
        REFERRAL = "referral", _("Referral")
        LAB_RESULT = "lab_result", _("Lab result")
        IMAGING = "imaging", _("Imaging report")
        OUTSIDE_RECORDS = "outside_records", _("Outside records")
        CONSENT = "consent", _("Consent form")
        OTHER = "other", _("Other")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="documents")
    category = models.CharField(_("category"), max_length=20, choices=Category.choices)
    title = models.CharField(_("title"), max_length=200)
    document_date = models.DateField(_("date"))
    file = models.FileField(upload_to=document_path, storage=documents_storage, max_length=200)
    original_name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=50)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    entered_in_error = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("document")
        ordering = ["-document_date", "-created_at"]

    def __str__(self) -> str:
        return self.title


class EmergencyAccess(BaseModel):
    """A break-glass grant: someone opened a restricted record they have no care relationship with.

    The reason is PHI-adjacent (it may name a condition): encrypted at rest. Every audit event
    the user records on this patient while the grant lasts carries the grant's id, and the
    privacy officer reviews each grant.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="emergency_accesses"
    )
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="emergency_accesses"
    )

    class Outcome(models.TextChoices):
        APPROPRIATE = "appropriate", _("Appropriate")
        INAPPROPRIATE = "inappropriate", _("Inappropriate: follow up")

    reason = EncryptedTextField(_("reason"))
    expires_at = models.DateTimeField()
    review_outcome = models.CharField(
        _("review outcome"), max_length=15, choices=Outcome.choices, blank=True
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    review_note = EncryptedTextField(_("review note"), blank=True, null=True)

    class Meta:
        verbose_name = _("emergency access")
        verbose_name_plural = _("emergency accesses")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "patient", "expires_at"])]

    def __str__(self) -> str:
        return f"Emergency access by {self.user_id} to {self.patient_id}"
