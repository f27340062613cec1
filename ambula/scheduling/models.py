from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from ambula.core.fields import EncryptedTextField
from ambula.core.models import BaseModel


class Location(BaseModel):
    """A site where the practice sees patients. Holds no PHI."""

    name = models.CharField(_("name"), max_length=120)
    address_line = models.CharField(_("street address"), max_length=200)
    city = models.CharField(_("city"), max_length=100)
    state = models.CharField(_("state"), max_length=2)
    postal_code = models.CharField(_("ZIP code"), max_length=10)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("location")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                name="scheduling_location_name_unique",
                violation_error_code="location_exists",
                violation_error_message=_("A location with this name already exists."),
            ),
        ]

    def __str__(self) -> str:
        return self.name


def npi_is_valid(npi: str) -> bool:
    """An NPI: 10 digits whose last is the Luhn check digit over "80840" + the first nine."""
    if len(npi) != 10 or not npi.isdigit():
        return False
    total = 0
    for position, character in enumerate(reversed("80840" + npi)):
        digit = int(character)
        if position % 2 == 1:
            digit *= 2
            digit -= 9 if digit > 9 else 0
        total += digit
    return total % 10 == 0


def validate_npi(value: str) -> None:
    if not npi_is_valid(value):
        raise ValidationError(
            _("Enter the 10-digit NPI as issued; this one fails its check digit."), code="npi"
        )


class Provider(BaseModel):
    """A practitioner who sees patients: the scheduling profile of a staff user. No PHI."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="provider_profile"
    )
    credentials = models.CharField(_("credentials"), max_length=40, help_text=_("e.g. MD, NP"))
    specialty = models.CharField(_("specialty"), max_length=100)
    npi = models.CharField(_("NPI"), max_length=10, unique=True, validators=[validate_npi])
    taxonomy_code = models.CharField(
        _("taxonomy code"),
        max_length=10,
        validators=[
            RegexValidator(r"^\d{3}[0-9A-Z]{6}X$", _("Enter a NUCC code like 207Q00000X."))
        ],
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("provider")

    def __str__(self) -> str:
        return f"{self.user.full_name}, {self.credentials}"


class Resource(BaseModel):
    """A room or a piece of equipment at a location that an appointment can need. No PHI."""

    class Kind(models.TextChoices):
        ROOM = "room", _("Exam room")
        EQUIPMENT = "equipment", _("Equipment")

    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="resources")
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("resource")
        ordering = ["location", "kind", "name"]
        constraints = [
            models.UniqueConstraint(
                "location",
                Lower("name"),
                name="scheduling_resource_name_unique",
                violation_error_message=_("This location already has a resource of that name."),
            ),
        ]

    def __str__(self) -> str:
        return self.name


# The longest a visit can hold its provider and rooms: the longest visit plus the longest
# buffer. Searches for held times that overlap a window need look back no further.
LONGEST_VISIT_MINUTES, LONGEST_BUFFER_MINUTES = 480, 120


class AppointmentType(BaseModel):
    """What kind of visit: how long, which resources it needs, who may book it. No PHI."""

    name = models.CharField(_("name"), max_length=80)
    duration_minutes = models.PositiveSmallIntegerField(
        _("length (minutes)"),
        validators=[MinValueValidator(5), MaxValueValidator(LONGEST_VISIT_MINUTES)],
    )
    buffer_minutes = models.PositiveSmallIntegerField(
        _("buffer after (minutes)"),
        default=0,
        validators=[MaxValueValidator(LONGEST_BUFFER_MINUTES)],
        help_text=_("Kept free after the visit: cleaning, notes."),
    )
    colour = models.CharField(
        _("colour"),
        max_length=7,
        default="#2e90fa",
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", _("A colour like #2e90fa."))],
    )
    needs_room = models.BooleanField(_("needs an exam room"), default=True)
    equipment = models.ManyToManyField(
        Resource,
        blank=True,
        related_name="+",
        verbose_name=_("equipment it needs"),
        limit_choices_to={"kind": "equipment"},
    )
    patient_bookable = models.BooleanField(_("patients may book it themselves"), default=False)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("appointment type")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                name="scheduling_appointment_type_name_unique",
                violation_error_code="appointment_type_exists",
                violation_error_message=_("An appointment type with this name already exists."),
            ),
            # The held-time searches rely on this bound (see LONGEST_VISIT_MINUTES).
            models.CheckConstraint(
                condition=models.Q(
                    duration_minutes__gte=5,
                    duration_minutes__lte=LONGEST_VISIT_MINUTES,
                    buffer_minutes__lte=LONGEST_BUFFER_MINUTES,
                ),
                name="scheduling_appointment_type_length_in_range",
                violation_error_message=_("A visit lasts 5 to 480 minutes, plus at most 120."),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ScheduleBlock(BaseModel):
    """A weekly recurring block of a provider's time at a location (the schedule template).

    Times are wall-clock times in the practice's time zone, so a block stays 09:00-12:00
    across daylight-saving changes.
    """

    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="blocks")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="blocks")
    weekday = models.PositiveSmallIntegerField(_("day"), choices=Weekday.choices)
    starts_at = models.TimeField(_("from"))
    ends_at = models.TimeField(_("until"))
    appointment_types = models.ManyToManyField(
        AppointmentType,
        blank=True,
        related_name="blocks",
        verbose_name=_("appointment types"),
        help_text=_("Leave empty to allow every type."),
    )
    valid_from = models.DateField(_("starting"))
    valid_until = models.DateField(_("ending"), null=True, blank=True)

    class Meta:
        verbose_name = _("schedule block")
        ordering = ["provider", "weekday", "starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="scheduling_block_ends_after_start",
                violation_error_code="block_order",
                violation_error_message=_("The block must end after it starts."),
            ),
            models.CheckConstraint(
                condition=models.Q(valid_until__isnull=True)
                | models.Q(valid_until__gte=models.F("valid_from")),
                name="scheduling_block_valid_in_order",
                violation_error_message=_("The block ends before it starts."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.get_weekday_display()} {self.starts_at}-{self.ends_at}"


class TemplateRevision(models.Model):
    """How many times the weekly templates have changed: one row, moved in the same transaction
    as every change, so a process holding blocks read at revision N knows they are current
    while the row still says N (slot search's cache, `availability.template_blocks`). No PHI.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    number = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"template revision {self.number}"

    @classmethod
    def advance(cls) -> None:
        """Move the revision on, inside the caller's transaction (the row lock serialises)."""
        if not cls.objects.filter(pk=1).update(number=models.F("number") + 1):
            cls.objects.get_or_create(pk=1, defaults={"number": 1})


class LocationHours(BaseModel):
    """When a location is open on one weekday; a day without a row is a closed day.

    Informational (the front desk, and FHIR Location.hoursOfOperation later): booking follows
    the providers' blocks, not these hours. Wall-clock times in the practice's time zone.
    """

    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="hours")
    weekday = models.PositiveSmallIntegerField(_("day"), choices=ScheduleBlock.Weekday.choices)
    opens = models.TimeField(_("opens"))
    closes = models.TimeField(_("closes"))

    class Meta:
        verbose_name = _("opening hours")
        verbose_name_plural = _("opening hours")
        ordering = ["location", "weekday"]
        constraints = [
            models.UniqueConstraint(
                fields=["location", "weekday"],
                name="scheduling_location_hours_one_per_day",
                violation_error_code="hours_day_listed",
                violation_error_message=_("This day already has opening hours."),
            ),
            models.CheckConstraint(
                condition=models.Q(closes__gt=models.F("opens")),
                name="scheduling_location_hours_in_order",
                violation_error_code="hours_order",
                violation_error_message=_("Closing time must be after opening time."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.location} {self.get_weekday_display()} {self.opens}-{self.closes}"


class ScheduleException(BaseModel):
    """Time that cannot be booked: a provider's time off, a holiday, a location closure."""

    class Kind(models.TextChoices):
        TIME_OFF = "time_off", _("Time off")
        HOLIDAY = "holiday", _("Holiday")
        CLOSURE = "closure", _("Location closed")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    # A provider's time off names the provider; a closure names the location; a holiday neither.
    provider = models.ForeignKey(
        Provider, on_delete=models.PROTECT, null=True, blank=True, related_name="exceptions"
    )
    location = models.ForeignKey(
        Location, on_delete=models.PROTECT, null=True, blank=True, related_name="exceptions"
    )
    starts_at = models.DateTimeField(_("from"))
    ends_at = models.DateTimeField(_("until"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("schedule exception")
        ordering = ["starts_at"]
        indexes = [models.Index(fields=["starts_at", "ends_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="scheduling_exception_ends_after_start",
                violation_error_message=_("The exception must end after it starts."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.starts_at:%Y-%m-%d}"


ACTIVE_STATUSES = ("scheduled", "arrived", "in_room", "completed")


class Appointment(BaseModel):
    """A patient's visit with a provider at a location.

    PHI: who comes when is itself health information. Encrypted at rest: the note (often the
    reason for the visit). `blocked_until` is the end plus the type's buffer: the time the
    provider (and each resource) is held, which the no-overlap rules compare. Active
    appointments of one provider never overlap: on PostgreSQL an exclusion constraint
    enforces it (migration 0003), on SQLite the booking service's serialised transaction.
    """

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        ARRIVED = "arrived", _("Arrived")
        IN_ROOM = "in_room", _("In room")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")
        NO_SHOW = "no_show", _("No-show")

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="appointments"
    )
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="appointments")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="appointments")
    appointment_type = models.ForeignKey(
        AppointmentType, on_delete=models.PROTECT, related_name="appointments"
    )
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    blocked_until = models.DateTimeField(editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    # Overbooking is deliberate, by someone allowed to, with a reason: it is exempt from the
    # no-overlap rule and marked on the board.
    overbooked = models.BooleanField(default=False)
    overbook_reason = models.CharField(max_length=200, blank=True)
    note = EncryptedTextField(_("note"), blank=True, null=True)
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    series = models.UUIDField(null=True, blank=True, db_index=True)
    arrived_at = models.DateTimeField(null=True, blank=True)
    roomed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    cancel_reason = models.CharField(_("reason"), max_length=200, blank=True)
    no_show_at = models.DateTimeField(null=True, blank=True)
    rescheduled_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("appointment")
        ordering = ["starts_at"]
        indexes = [
            models.Index(fields=["provider", "starts_at"]),
            models.Index(fields=["location", "starts_at"]),
            models.Index(fields=["patient", "starts_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at"))
                & models.Q(blocked_until__gte=models.F("ends_at")),
                name="scheduling_appointment_times_in_order",
                violation_error_message=_("The appointment must end after it starts."),
            ),
            models.CheckConstraint(
                condition=models.Q(overbooked=False) | ~models.Q(overbook_reason=""),
                name="scheduling_overbooking_has_reason",
                violation_error_message=_("Say why this appointment is overbooked."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.appointment_type} {self.starts_at:%Y-%m-%d %H:%M}"


class ResourceBooking(BaseModel):
    """A resource held by an appointment, with the appointment's times copied so that the
    database can refuse overlaps per resource (PostgreSQL exclusion constraint)."""

    appointment = models.ForeignKey(
        Appointment, on_delete=models.CASCADE, related_name="resource_bookings"
    )
    resource = models.ForeignKey(Resource, on_delete=models.PROTECT, related_name="bookings")
    starts_at = models.DateTimeField()
    blocked_until = models.DateTimeField()
    active = models.BooleanField(default=True)

    class Meta:
        indexes = [models.Index(fields=["resource", "starts_at"])]

    def __str__(self) -> str:
        return f"{self.resource} {self.starts_at:%Y-%m-%d %H:%M}"


class WaitlistEntry(BaseModel):
    """A patient who would take an earlier slot: which visit, with whom, where and when suits.

    PHI (that the patient is waiting for care), in clear for matching. Empty provider,
    location or weekday choices mean "any". Entries are matched oldest first.
    """

    class Status(models.TextChoices):
        WAITING = "waiting", _("Waiting")
        BOOKED = "booked", _("Booked")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="waitlist_entries"
    )
    appointment_type = models.ForeignKey(
        AppointmentType, on_delete=models.PROTECT, related_name="waitlist_entries"
    )
    providers = models.ManyToManyField(Provider, blank=True, related_name="+")
    locations = models.ManyToManyField(Location, blank=True, related_name="+")
    weekdays = models.JSONField(default=list, blank=True, help_text="0 = Monday; empty = any")
    earliest_time = models.TimeField(_("not before"), null=True, blank=True)
    latest_time = models.TimeField(_("not after"), null=True, blank=True)
    wanted_until = models.DateField(_("wanted until"), null=True, blank=True)
    current_appointment = models.ForeignKey(
        Appointment,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("The appointment the patient would move earlier, if any."),
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.WAITING)
    booked_appointment = models.ForeignKey(
        Appointment, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = _("waitlist entry")
        verbose_name_plural = _("waitlist")
        ordering = ["created_at"]
        indexes = [models.Index(fields=["status", "appointment_type", "created_at"])]

    def __str__(self) -> str:
        return f"Waitlist {self.appointment_type} ({self.get_status_display()})"
