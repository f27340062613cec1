"""Forms of the chart's medication and history sections: they shape input, services decide."""

from django import forms
from django.utils.timezone import localdate
from django.utils.translation import gettext_lazy as _

from ambula.patients.models import HistoryEntry, Medication, SocialHistory


class DateInput(forms.DateInput):
    """The browser's date picker; it sends ISO dates whatever the user's locale."""

    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%d")


class ChartSectionForm(forms.Form):
    """A form that shares the chart page with others: its ids carry the section's name."""

    section = ""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", f"{self.section}-%s")
        super().__init__(*args, **kwargs)


class MedicationForm(ChartSectionForm):
    section = "medication"
    name = forms.CharField(label=_("Medication"), max_length=200)
    dose = forms.CharField(
        label=_("Dose"),
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": _("e.g. 500 mg")}),
    )
    route = forms.ChoiceField(
        label=_("Route"), choices=Medication.Route.choices, initial=Medication.Route.ORAL
    )
    frequency = forms.CharField(
        label=_("How often"),
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": _("e.g. twice daily")}),
    )
    started_on = forms.DateField(label=_("Started"), required=False, widget=DateInput())
    note = forms.CharField(label=_("Note"), max_length=500, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A hint for the date picker; the service is what refuses a future date.
        self.fields["started_on"].widget.attrs["max"] = localdate().isoformat()


class MedicationStopForm(forms.Form):
    stopped_on = forms.DateField(label=_("Stopped on"), required=False, widget=DateInput())


class HistoryEntryForm(ChartSectionForm):
    section = "history"
    kind = forms.ChoiceField(label=_("Kind"), choices=HistoryEntry.Kind.choices)
    condition = forms.CharField(label=_("Condition or procedure"), max_length=200)
    relation = forms.CharField(
        label=_("Relation"),
        max_length=40,
        required=False,
        help_text=_("Family history only, e.g. mother"),
    )
    year = forms.IntegerField(
        label=_("Year"),
        required=False,
        min_value=1880,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "placeholder": _("e.g. 2015")}),
    )
    note = forms.CharField(label=_("Note"), max_length=500, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["year"].widget.attrs["max"] = localdate().year


class SocialHistoryForm(ChartSectionForm):
    section = "social-history"
    tobacco = forms.ChoiceField(
        label=_("Tobacco use"),
        choices=SocialHistory.Tobacco.choices,
        initial=SocialHistory.Tobacco.UNKNOWN,
    )
    alcohol = forms.ChoiceField(
        label=_("Alcohol use"),
        choices=SocialHistory.Alcohol.choices,
        initial=SocialHistory.Alcohol.UNKNOWN,
    )
    occupation = forms.CharField(label=_("Occupation"), max_length=100, required=False)

    @classmethod
    def for_record(cls, social: SocialHistory | None) -> "SocialHistoryForm":
        """A blank form showing what is recorded now, if anything."""
        if social is None:
            return cls()
        return cls(initial={field: getattr(social, field) for field in cls.base_fields})
