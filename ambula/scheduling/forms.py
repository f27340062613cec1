"""The schedule pages' forms: they shape input; the booking service decides.

`active_providers` and `active_locations` are the choices every scheduling form offers.
"""

from datetime import datetime

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from ambula.scheduling.availability import does_not_exist, practice_zone, wall_clock
from ambula.scheduling.models import AppointmentType, Location, Provider


def active_providers() -> QuerySet[Provider]:
    """Providers who can be booked, by name."""
    return (
        Provider.objects.filter(is_active=True).select_related("user").order_by("user__full_name")
    )


def active_locations() -> QuerySet[Location]:
    """Locations open for booking, by name."""
    return Location.objects.filter(is_active=True).order_by("name")


class SlotSearchForm(forms.Form):
    """What visit, and optionally with whom and where: the slot picker's question."""

    appointment_type = forms.ModelChoiceField(
        label=_("Appointment type"),
        queryset=AppointmentType.objects.filter(is_active=True).order_by("name"),
        empty_label=_("Choose a type…"),
    )
    provider = forms.ModelChoiceField(
        label=_("Provider"),
        queryset=active_providers(),
        required=False,
        empty_label=_("Any provider"),
    )
    location = forms.ModelChoiceField(
        label=_("Location"),
        queryset=active_locations(),
        required=False,
        empty_label=_("Any location"),
    )

    def __init__(self, *args, fixed_type: AppointmentType | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["provider"].queryset = active_providers()
        self.fields["location"].queryset = active_locations()
        if fixed_type is not None:
            # Rescheduling keeps the visit's type.
            self.fields["appointment_type"].required = False
            self.fields["appointment_type"].widget = forms.HiddenInput()


class SlotChoiceForm(forms.Form):
    """The chosen slot: who, where and when."""

    provider = forms.ModelChoiceField(queryset=Provider.objects.none(), widget=forms.HiddenInput)
    location = forms.ModelChoiceField(queryset=Location.objects.none(), widget=forms.HiddenInput)
    start = forms.DateTimeField(widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["provider"].queryset = active_providers()
        self.fields["location"].queryset = active_locations()


class BookingForm(SlotChoiceForm):
    appointment_type = forms.ModelChoiceField(
        queryset=AppointmentType.objects.filter(is_active=True), widget=forms.HiddenInput
    )
    note = forms.CharField(
        label=_("Note (optional)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("The reason for the visit, if the patient gave one."),
    )


class CancelForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason for cancelling"),
        max_length=200,
        error_messages={"required": _("Say why the appointment is cancelled.")},
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


class OverbookForm(forms.Form):
    """A visit on top of the provider's others: any time inside their hours, with a reason."""

    appointment_type = forms.ModelChoiceField(
        label=_("Appointment type"),
        queryset=AppointmentType.objects.filter(is_active=True).order_by("name"),
        empty_label=_("Choose a type…"),
    )
    date = forms.DateField(label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}))
    time = forms.TimeField(label=_("Time"), widget=forms.TimeInput(attrs={"type": "time"}))
    provider = forms.ModelChoiceField(
        label=_("Provider"), queryset=active_providers(), empty_label=_("Choose a provider…")
    )
    location = forms.ModelChoiceField(
        label=_("Location"), queryset=active_locations(), empty_label=_("Choose a location…")
    )
    # The reason is shown on the board to everyone who sees the schedule and is not
    # encrypted, so it asks for who agreed and why it cannot wait, never the clinical story.
    overbook_reason = forms.CharField(
        label=_("Reason for overbooking"),
        max_length=200,
        error_messages={"required": _("Say why this appointment is overbooked.")},
        help_text=_(
            "Shown on the board: who agreed and why it cannot wait, e.g. “Dr. Quill agreed "
            "to fit in today”. No clinical details."
        ),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["appointment_type"].queryset = AppointmentType.objects.filter(
            is_active=True
        ).order_by("name")
        self.fields["provider"].queryset = active_providers()
        self.fields["location"].queryset = active_locations()

    def clean(self) -> dict:
        cleaned = super().clean()
        day, at = cleaned.get("date"), cleaned.get("time")
        # Converting would move a time the clocks skip (spring forward) on by the gap;
        # refuse it as the booking rules do rather than book an hour the user did not choose.
        if day is None or at is None:
            return cleaned
        if does_not_exist(datetime.combine(day, at, tzinfo=practice_zone())):
            self.add_error(
                "time",
                _("That time does not exist: the clocks go forward then. Choose another time."),
            )
        return cleaned

    def starts_at(self) -> datetime:
        """The chosen date and time on the practice's clocks, as an instant."""
        return wall_clock(self.cleaned_data["date"], self.cleaned_data["time"])
