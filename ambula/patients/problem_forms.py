"""Forms of the chart's problem list: they shape input, `ambula.patients.problems` decides."""

from django import forms
from django.urls import reverse_lazy
from django.utils.timezone import localdate
from django.utils.translation import gettext_lazy as _

from ambula.patients.clinical_forms import ChartSectionForm, DateInput
from ambula.patients.problems import NOTE_LENGTH


class ProblemForm(ChartSectionForm):
    section = "problem"
    code = forms.CharField(
        label=_("Diagnosis (ICD-10-CM)"),
        max_length=100,  # what people type to search; the service checks it is a real code
        widget=forms.TextInput(
            attrs={
                "placeholder": _("Type a code or words, e.g. E11.9 or type 2 diab"),
                "autocomplete": "off",
                "spellcheck": "false",
                "role": "combobox",
                "aria-autocomplete": "list",
                "aria-expanded": "false",
                "aria-controls": "problem-code-results",
                "hx-get": reverse_lazy("terminology:icd10_search"),
                "hx-trigger": "input changed delay:200ms",
                "hx-target": "#problem-code-results",
                "hx-sync": "this:replace",
            }
        ),
    )
    onset = forms.DateField(label=_("Onset"), required=False, widget=DateInput())
    note = forms.CharField(
        label=_("Note"),
        max_length=NOTE_LENGTH,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": _("e.g. diet-controlled")}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A hint for the date picker; the service is what refuses a future date.
        self.fields["onset"].widget.attrs["max"] = localdate().isoformat()


class ProblemResolveForm(forms.Form):
    resolved_on = forms.DateField(label=_("Resolved on"), required=False, widget=DateInput())


class ProblemNoteForm(forms.Form):
    note = forms.CharField(label=_("Note"), max_length=NOTE_LENGTH, required=False)
