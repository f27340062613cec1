"""The set-up pages' forms: they shape input; the set-up services validate again and decide.

`service_error_field` names the field a service's whole-record error (a duplicate name, a
block out of order) belongs next to; `None` shows it above the form.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from ambula.accounts.models import User
from ambula.scheduling.availability import wall_clock
from ambula.scheduling.forms import active_locations, active_providers
from ambula.scheduling.models import (
    AppointmentType,
    Location,
    Provider,
    Resource,
    ScheduleBlock,
    ScheduleException,
)

TIME_INPUT = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _in_use_or_chosen(queryset: QuerySet, chosen: QuerySet | None) -> QuerySet:
    """The active choices plus those already chosen: a choice retired since is kept on the
    form (and so on the record) rather than silently dropped when it is saved."""
    if chosen is None:
        return queryset.filter(is_active=True)
    return queryset.filter(Q(is_active=True) | Q(pk__in=chosen.values("pk")))


def _labelled_when_inactive(name_of, inactive_label):
    """A choice label: the object's name, and a word saying it is no longer in use."""

    def label(instance) -> str:
        name = name_of(instance)
        return name if instance.is_active else f"{name} ({inactive_label})"

    return label


class SetupForm(forms.Form):
    service_error_field: str | None = None

    def add_service_error(self, error: ValidationError) -> None:
        """Show a set-up service's refusal on the fields it names, or above the form."""
        if not hasattr(error, "error_dict"):
            self.add_error(self.service_error_field, error)
            return
        for name, errors in error.error_dict.items():
            field = name if name in self.fields else self.service_error_field
            self.add_error(field, errors)


# --- Locations ---------------------------------------------------------------------------------


class LocationForm(SetupForm):
    service_error_field = "name"  # the only whole-record rule: names are unique

    name = forms.CharField(label=_("Name"), max_length=120)
    phone = forms.CharField(label=_("Phone"), max_length=32, required=False)
    address_line = forms.CharField(label=_("Street address"), max_length=200)
    city = forms.CharField(label=_("City"), max_length=100)
    state = forms.CharField(
        label=_("State"), min_length=2, max_length=2, widget=forms.TextInput(attrs={"size": 2})
    )
    postal_code = forms.CharField(label=_("ZIP code"), max_length=10)
    is_active = forms.BooleanField(
        label=_("Open for booking"),
        required=False,
        initial=True,
        help_text=_("Untick when the location closes for good; its past visits stay."),
    )

    @classmethod
    def for_location(cls, location: Location, data=None) -> LocationForm:
        fields = ("name", "phone", "address_line", "city", "state", "postal_code", "is_active")
        return cls(data, initial={name: getattr(location, name) for name in fields})


class HoursForm(SetupForm):
    """A location's week: opening and closing time per day; both empty is a closed day."""

    def __init__(self, data=None, *, hours=()) -> None:
        initial = {}
        for row in hours:
            initial[f"opens_{row.weekday}"] = row.opens
            initial[f"closes_{row.weekday}"] = row.closes
        super().__init__(data, initial=initial)
        for weekday, label in ScheduleBlock.Weekday.choices:
            self.fields[f"opens_{weekday}"] = forms.TimeField(
                label=_("%(day)s opens") % {"day": label}, required=False, widget=TIME_INPUT
            )
            self.fields[f"closes_{weekday}"] = forms.TimeField(
                label=_("%(day)s closes") % {"day": label}, required=False, widget=TIME_INPUT
            )

    def days(self) -> list[tuple[str, forms.BoundField, forms.BoundField]]:
        return [
            (label, self[f"opens_{weekday}"], self[f"closes_{weekday}"])
            for weekday, label in ScheduleBlock.Weekday.choices
        ]

    def clean(self) -> dict:
        cleaned = super().clean()
        for weekday, _label in ScheduleBlock.Weekday.choices:
            opens, closes = cleaned.get(f"opens_{weekday}"), cleaned.get(f"closes_{weekday}")
            if (opens is None) != (closes is None):
                missing = f"opens_{weekday}" if opens is None else f"closes_{weekday}"
                if missing not in self.errors:
                    self.add_error(missing, _("Give both times, or neither for a closed day."))
            elif opens is not None and closes <= opens:
                self.add_error(f"closes_{weekday}", _("Closes before it opens."))
        return cleaned

    def hours(self) -> list[tuple[int, time, time]]:
        return [
            (weekday, self.cleaned_data[f"opens_{weekday}"], self.cleaned_data[f"closes_{weekday}"])
            for weekday, _label in ScheduleBlock.Weekday.choices
            if self.cleaned_data.get(f"opens_{weekday}") is not None
        ]


class ResourceForm(SetupForm):
    service_error_field = "name"  # names are unique per location

    name = forms.CharField(label=_("Name"), max_length=120)
    kind = forms.ChoiceField(
        label=_("Kind"), choices=Resource.Kind.choices, initial=Resource.Kind.ROOM
    )


class ResourceEditForm(SetupForm):
    service_error_field = "name"

    name = forms.CharField(label=_("Name"), max_length=120)
    is_active = forms.BooleanField(
        label=_("In use"),
        required=False,
        help_text=_("Untick to stop booking it; appointments already holding it keep it."),
    )


# --- Providers and their weekly template ---------------------------------------------------------


class ProviderForm(SetupForm):
    credentials = forms.CharField(
        label=_("Credentials"), max_length=40, help_text=_("e.g. MD, DO, FNP")
    )
    specialty = forms.CharField(label=_("Specialty"), max_length=100)
    npi = forms.CharField(
        label=_("NPI"),
        min_length=10,
        max_length=10,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
        help_text=_("The 10-digit National Provider Identifier."),
    )
    taxonomy_code = forms.CharField(
        label=_("Taxonomy code"),
        max_length=10,
        help_text=_("The NUCC code of their specialty, e.g. 207Q00000X (family medicine)."),
    )

    @classmethod
    def for_provider(cls, provider: Provider, data=None) -> ProviderForm:
        fields = ("credentials", "specialty", "npi", "taxonomy_code")
        return cls(data, initial={name: getattr(provider, name) for name in fields})


class NewProviderForm(ProviderForm):
    user = forms.ModelChoiceField(
        label=_("Staff member"),
        queryset=User.objects.none(),
        empty_label=_("Choose a physician or nurse…"),
        help_text=_("Staff accounts with the physician or nurse role and no provider profile."),
    )
    field_order = ["user"]

    def __init__(self, data=None, *, candidates) -> None:
        super().__init__(data)
        self.fields["user"].queryset = candidates
        self.fields["user"].label_from_instance = lambda user: f"{user.full_name} ({user.username})"


class BlockForm(SetupForm):
    location = forms.ModelChoiceField(
        label=_("Location"), queryset=Location.objects.none(), empty_label=None
    )
    weekday = forms.TypedChoiceField(
        label=_("Day"), coerce=int, choices=ScheduleBlock.Weekday.choices
    )
    starts_at = forms.TimeField(label=_("From"), widget=TIME_INPUT)
    ends_at = forms.TimeField(label=_("Until"), widget=TIME_INPUT)
    appointment_types = forms.ModelMultipleChoiceField(
        label=_("Appointment types"),
        queryset=AppointmentType.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Leave every box empty to allow every type."),
    )
    valid_from = forms.DateField(label=_("Starting"), widget=DATE_INPUT)
    valid_until = forms.DateField(
        label=_("Ending"),
        required=False,
        widget=DATE_INPUT,
        help_text=_("Leave empty for an ongoing block."),
    )

    def __init__(self, data=None, *, block: ScheduleBlock | None = None, today=None) -> None:
        initial = {"valid_from": today, "starts_at": time(9), "ends_at": time(12)}
        if block is not None:
            initial = {
                "location": block.location_id,
                "weekday": block.weekday,
                "starts_at": block.starts_at,
                "ends_at": block.ends_at,
                "appointment_types": list(block.appointment_types.all()),
                "valid_from": block.valid_from,
                "valid_until": block.valid_until,
            }
        super().__init__(data, initial=initial)
        # A block at a closed location, or allowing a retired type, keeps them: the block can
        # still be end-dated, and its types are not widened to "any" by a save.
        self.fields["location"].queryset = _in_use_or_chosen(
            Location.objects.order_by("name"),
            Location.objects.filter(pk=block.location_id) if block is not None else None,
        )
        self.fields["location"].label_from_instance = _labelled_when_inactive(
            lambda location: location.name, _("closed")
        )
        self.fields["appointment_types"].queryset = _in_use_or_chosen(
            AppointmentType.objects.order_by("name"),
            block.appointment_types.all() if block is not None else None,
        )
        self.fields["appointment_types"].label_from_instance = _labelled_when_inactive(
            lambda appointment_type: appointment_type.name, _("retired")
        )

    def clean(self) -> dict:
        cleaned = super().clean()
        starts, ends = cleaned.get("starts_at"), cleaned.get("ends_at")
        if starts is not None and ends is not None and ends <= starts:
            self.add_error("ends_at", _("The block ends before it starts."))
        valid_from, valid_until = cleaned.get("valid_from"), cleaned.get("valid_until")
        if valid_from and valid_until and valid_until < valid_from:
            self.add_error("valid_until", _("The block would end before it starts."))
        return cleaned

    def apply_to(self, block: ScheduleBlock) -> ScheduleBlock:
        for name in ("location", "weekday", "starts_at", "ends_at", "valid_from", "valid_until"):
            setattr(block, name, self.cleaned_data[name])
        return block


# --- Appointment types ---------------------------------------------------------------------------


class EquipmentChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, resource: Resource) -> str:
        label = f"{resource.name} · {resource.location.name}"
        return label if resource.is_active else f"{label} ({_('not in use')})"


class AppointmentTypeForm(SetupForm):
    service_error_field = "name"

    name = forms.CharField(label=_("Name"), max_length=80)
    duration_minutes = forms.IntegerField(
        label=_("Length (minutes)"), min_value=5, max_value=480, initial=20
    )
    buffer_minutes = forms.IntegerField(
        label=_("Buffer after (minutes)"),
        min_value=0,
        max_value=120,
        initial=0,
        help_text=_("Kept free after the visit: cleaning, notes."),
    )
    colour = forms.RegexField(
        label=_("Colour"),
        regex=r"^#[0-9a-fA-F]{6}$",
        initial="#2e90fa",
        error_messages={"invalid": _("Choose a colour like #2e90fa.")},
        widget=forms.TextInput(attrs={"type": "color"}),
        help_text=_("How the visit shows on the day board."),
    )
    needs_room = forms.BooleanField(label=_("Needs an exam room"), required=False, initial=True)
    equipment = EquipmentChoiceField(
        label=_("Equipment it needs"),
        queryset=Resource.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    patient_bookable = forms.BooleanField(
        label=_("Patients may book it themselves"), required=False
    )
    is_active = forms.BooleanField(
        label=_("Active"),
        required=False,
        initial=True,
        help_text=_("Untick to stop new bookings of this type; booked visits stay."),
    )

    def __init__(self, data=None, *, appointment_type: AppointmentType | None = None) -> None:
        initial = None
        if appointment_type is not None:
            initial = {
                name: getattr(appointment_type, name)
                for name in (
                    "name",
                    "duration_minutes",
                    "buffer_minutes",
                    "colour",
                    "needs_room",
                    "patient_bookable",
                    "is_active",
                )
            }
            initial["equipment"] = list(appointment_type.equipment.all())
        super().__init__(data, initial=initial)
        # Equipment taken out of use since stays ticked, so a save does not drop the need.
        self.fields["equipment"].queryset = _in_use_or_chosen(
            Resource.objects.filter(kind=Resource.Kind.EQUIPMENT)
            .select_related("location")
            .order_by("location__name", "name"),
            appointment_type.equipment.all() if appointment_type is not None else None,
        )


# --- Time off, holidays, closures ----------------------------------------------------------------


class ExceptionForm(SetupForm):
    kind = forms.ChoiceField(
        label=_("What"),
        choices=ScheduleException.Kind.choices,
        initial=ScheduleException.Kind.TIME_OFF,
        widget=forms.RadioSelect,
    )
    provider = forms.ModelChoiceField(
        label=_("Provider"),
        queryset=Provider.objects.none(),
        required=False,
        empty_label=_("Choose the provider…"),
        help_text=_("For time off."),
    )
    location = forms.ModelChoiceField(
        label=_("Location"),
        queryset=Location.objects.none(),
        required=False,
        empty_label=_("Choose the location…"),
        help_text=_("For a closure."),
    )
    starts_on = forms.DateField(label=_("First day"), widget=DATE_INPUT)
    starts_time = forms.TimeField(
        label=_("From (time)"),
        required=False,
        widget=TIME_INPUT,
        help_text=_("Empty: from the start of the day."),
    )
    ends_on = forms.DateField(label=_("Last day"), widget=DATE_INPUT)
    ends_time = forms.TimeField(
        label=_("Until (time)"),
        required=False,
        widget=TIME_INPUT,
        help_text=_("Empty: to the end of the day."),
    )
    reason = forms.CharField(
        label=_("Reason (optional)"),
        max_length=200,
        required=False,
        help_text=_("Staff see it; patients do not."),
    )

    def __init__(self, data=None, **kwargs) -> None:
        super().__init__(data, **kwargs)
        self.fields["provider"].queryset = active_providers()
        self.fields["location"].queryset = active_locations()

    def clean(self) -> dict:
        cleaned = super().clean()
        kind = cleaned.get("kind")
        # Only the field the kind needs is kept, so a choice left over from another kind
        # does not narrow a holiday to one provider.
        if kind != ScheduleException.Kind.TIME_OFF:
            cleaned["provider"] = None
        if kind != ScheduleException.Kind.CLOSURE:
            cleaned["location"] = None
        if kind == ScheduleException.Kind.TIME_OFF and cleaned.get("provider") is None:
            self.add_error("provider", _("Time off is for a provider: choose one."))
        if kind == ScheduleException.Kind.CLOSURE and cleaned.get("location") is None:
            self.add_error("location", _("A closure is for a location: choose one."))
        if cleaned.get("starts_on") and cleaned.get("ends_on"):
            starts, ends = self.period()
            if ends <= starts:
                self.add_error("ends_on", _("It ends before it starts."))
        return cleaned

    def period(self) -> tuple[datetime, datetime]:
        """The instants it covers: whole days unless times are given."""
        cleaned = self.cleaned_data
        starts = wall_clock(cleaned["starts_on"], cleaned.get("starts_time") or time(0))
        if cleaned.get("ends_time") is not None:
            ends = wall_clock(cleaned["ends_on"], cleaned["ends_time"])
        else:
            ends = wall_clock(cleaned["ends_on"] + timedelta(days=1), time(0))
        return starts, ends

    def exception(self) -> ScheduleException:
        starts, ends = self.period()
        return ScheduleException(
            kind=self.cleaned_data["kind"],
            provider=self.cleaned_data["provider"],
            location=self.cleaned_data["location"],
            starts_at=starts,
            ends_at=ends,
            reason=self.cleaned_data["reason"].strip(),
        )
