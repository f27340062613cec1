import re

from django import forms
from django.utils.translation import gettext_lazy as _

from ambula.patients.models import REGISTERED_FIELDS, Allergy, Patient

US_PHONE = re.compile(r"^\D*1?\D*(\d{3})\D*(\d{3})\D*(\d{4})\D*$")


class RegistrationForm(forms.ModelForm):
    """Shapes and checks input; `patient_register` does the writing."""

    ssn = forms.RegexField(
        label=_("SSN"),
        required=False,
        regex=r"^\d{3}-?\d{2}-?\d{4}$",
        error_messages={"invalid": _("Enter 9 digits, like 123-45-6789.")},
    )
    allow_duplicate = forms.BooleanField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = Patient
        # The SSN is declared above: it is checked as text and encrypted by the model field.
        fields = [name for name in REGISTERED_FIELDS if name != "ssn"]
        widgets = {"date_of_birth": forms.DateInput(attrs={"type": "date"})}

    def clean_mobile_phone(self):
        phone = self.cleaned_data["mobile_phone"].strip()
        if not phone:
            return ""
        match = US_PHONE.match(phone)
        if not match:
            raise forms.ValidationError(_("Enter a 10-digit phone number, like (217) 555-0140."))
        return "({}) {}-{}".format(*match.groups())

    def clean_state(self):
        return self.cleaned_data["state"].strip().upper()

    def details(self) -> dict:
        """The cleaned fields the registration service takes."""
        return {
            name: value
            for name, value in self.cleaned_data.items()
            if name != "allow_duplicate" and not (name == "ssn" and not value)
        }


class AllergyForm(forms.Form):
    substance = forms.CharField(label=_("Substance"), max_length=200)
    reaction = forms.CharField(label=_("Reaction"), max_length=200, required=False)
    severity = forms.ChoiceField(
        label=_("Severity"),
        choices=Allergy.Severity.choices,
        initial=Allergy.Severity.UNKNOWN,  # never understate what nobody knows yet
    )
