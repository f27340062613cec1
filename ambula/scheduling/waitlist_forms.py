"""The waitlist pages' forms: they shape input; the waitlist service decides."""

from __future__ import annotations

from django import forms
from django.utils import timezone
from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext_lazy as _

from ambula.scheduling.forms import active_locations, active_providers
from ambula.scheduling.models import AppointmentType, Location, Provider, WaitlistEntry


def _types():
    return AppointmentType.objects.filter(is_active=True).order_by("name")


def weekday_choices() -> list[tuple[int, str]]:
    """Monday (0) to Sunday (6), named in the user's language."""
    return sorted(WEEKDAYS.items())


class WaitlistFilterForm(forms.Form):
    """Which entries to show: one kind of visit, one location, or everyone waiting."""

    appointment_type = forms.ModelChoiceField(
        label=_("Appointment type"), queryset=_types(), required=False, empty_label=_("All types")
    )
    location = forms.ModelChoiceField(
        label=_("Location"),
        queryset=active_locations(),
        required=False,
        empty_label=_("All locations"),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Fresh querysets per request, so a type or location added since start-up is offered.
        self.fields["appointment_type"].queryset = _types()
        self.fields["location"].queryset = active_locations()


class WaitlistForm(forms.Form):
    """What the patient is waiting for, and which times would suit them (empty means any)."""

    appointment_type = forms.ModelChoiceField(
        label=_("Appointment type"), queryset=_types(), empty_label=_("Choose a type…")
    )
    providers = forms.ModelMultipleChoiceField(
        label=_("Providers"),
        queryset=active_providers(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Leave all unticked for any provider."),
    )
    locations = forms.ModelMultipleChoiceField(
        label=_("Locations"),
        queryset=active_locations(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Leave all unticked for any location."),
    )
    weekdays = forms.TypedMultipleChoiceField(
        label=_("Days"),
        choices=weekday_choices,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Leave all unticked for any day."),
    )
    earliest_time = forms.TimeField(
        label=_("Not before"), required=False, widget=forms.TimeInput(attrs={"type": "time"})
    )
    latest_time = forms.TimeField(
        label=_("Not after"),
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}),
        help_text=_("The latest start time that suits."),
    )
    wanted_until = forms.DateField(
        label=_("Wanted until"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("After this date the entry no longer matches. Empty: until booked."),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["appointment_type"].queryset = _types()
        self.fields["providers"].queryset = active_providers()
        self.fields["locations"].queryset = active_locations()

    def clean_wanted_until(self):
        wanted_until = self.cleaned_data.get("wanted_until")
        if wanted_until and wanted_until < timezone.localdate():
            raise forms.ValidationError(_("That date has passed."), code="past")
        return wanted_until

    def clean(self):
        cleaned = super().clean()
        earliest, latest = cleaned.get("earliest_time"), cleaned.get("latest_time")
        if earliest and latest and latest <= earliest:
            self.add_error("latest_time", _("The latest time must be after the earliest."))
        return cleaned


class SlotForm(forms.Form):
    """A freed slot, named in the query string: who, where, when and what kind of visit."""

    provider = forms.ModelChoiceField(queryset=Provider.objects.none(), widget=forms.HiddenInput)
    location = forms.ModelChoiceField(queryset=Location.objects.none(), widget=forms.HiddenInput)
    start = forms.DateTimeField(widget=forms.HiddenInput)
    appointment_type = forms.ModelChoiceField(
        queryset=AppointmentType.objects.none(), widget=forms.HiddenInput
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["provider"].queryset = Provider.objects.select_related("user")
        self.fields["location"].queryset = Location.objects.all()
        self.fields["appointment_type"].queryset = AppointmentType.objects.all()


class ClaimForm(SlotForm):
    """The slot, and the entry it is to be booked for."""

    entry = forms.ModelChoiceField(
        queryset=WaitlistEntry.objects.select_related("patient", "current_appointment"),
        widget=forms.HiddenInput,
    )


class WithdrawForm(forms.Form):
    entry = forms.ModelChoiceField(
        queryset=WaitlistEntry.objects.select_related("patient"), widget=forms.HiddenInput
    )
