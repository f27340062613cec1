"""Forms for a patient's details and contacts. They shape input; `demographics.py` decides."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from ambula.accounts.models import User
from ambula.patients.demographics import (
    EDITABLE_FIELDS,
    SETTABLE_STATUSES,
    active_physicians,
    may_change_restriction,
    normalize_phone,
    patient_changes_check,
)
from ambula.patients.models import RACE_CATEGORIES, Contact, Patient

# The order of the edit page; the SSN and the restriction flag are handled on their own.
DETAIL_FIELDS = [
    "given_name",
    "middle_name",
    "family_name",
    "suffix",
    "preferred_name",
    "date_of_birth",
    "administrative_sex",
    "gender_identity",
    "pronouns",
    "mobile_phone",
    "sms_consent",
    "home_phone",
    "work_phone",
    "email",
    "address_line",
    "city",
    "state",
    "postal_code",
    "preferred_language",
    "interpreter_needed",
    "race",
    "ethnicity",
    "marital_status",
    "reminder_channel",
    "marketing_opt_out",
    "primary_care_provider",
    "status",
    "deceased_date",
    "restricted",
]
assert set(DETAIL_FIELDS) | {"ssn"} == EDITABLE_FIELDS, "the form and the service disagree"

COMMON_RELATIONSHIPS = [
    _("Spouse"),
    _("Partner"),
    _("Parent"),
    _("Child"),
    _("Sibling"),
    _("Guardian"),
    _("Friend"),
    _("Caregiver"),
]


def _phone(value: str) -> str:
    try:
        return normalize_phone(value)
    except ValidationError as error:
        raise forms.ValidationError(error.messages[0], code="invalid_phone") from None


class PrimaryCareProviderField(forms.ModelChoiceField):
    def label_from_instance(self, user: User) -> str:
        if not user.is_active:
            return _("%(name)s (no longer active)") % {"name": user}
        return str(user)


class DemographicsForm(forms.ModelForm):
    """The patient's details, prefilled. Model rules are checked once, by `patient_update`."""

    ssn = forms.RegexField(
        label=_("SSN"),
        required=False,
        regex=r"^\s*\d{3}-?\d{2}-?\d{4}\s*$",
        error_messages={"invalid": _("Enter 9 digits, like 123-45-6789.")},
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric"}),
    )
    remove_ssn = forms.BooleanField(label=_("Remove the SSN on file"), required=False)
    race = forms.MultipleChoiceField(
        label=_("Race"),
        required=False,
        choices=list(RACE_CATEGORIES.items()),
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Choose all that apply, as the patient describes themself."),
    )
    status = forms.ChoiceField(
        label=_("Status"),
        choices=[(status.value, status.label) for status in SETTABLE_STATUSES],
    )
    # The record's `updated_at` when the page was opened, to catch a colleague's later save.
    opened_version = forms.CharField(widget=forms.HiddenInput)

    class Meta:
        model = Patient
        fields = DETAIL_FIELDS
        widgets = {
            "date_of_birth": forms.DateInput(attrs={"type": "date"}),
            "deceased_date": forms.DateInput(attrs={"type": "date"}),
            "mobile_phone": forms.TextInput(attrs={"type": "tel"}),
            "home_phone": forms.TextInput(attrs={"type": "tel"}),
            "work_phone": forms.TextInput(attrs={"type": "tel"}),
            "state": forms.TextInput(attrs={"maxlength": 2, "autocapitalize": "characters"}),
            "postal_code": forms.TextInput(attrs={"inputmode": "numeric"}),
        }
        field_classes = {"primary_care_provider": PrimaryCareProviderField}
        help_texts = {
            "preferred_language": _("e.g. English, Spanish, Vietnamese"),
            "marketing_opt_out": _("Appointment reminders are not affected."),
            "restricted": _(
                "Staff without a care relationship must give a reason to open it, and the "
                "privacy officer reviews each time."
            ),
        }

    def __init__(self, *args, actor: User, **kwargs):
        super().__init__(*args, **kwargs)
        patient = self.instance
        # A provider who left stays selectable until someone chooses another.
        self.fields["primary_care_provider"].queryset = User.objects.filter(
            Q(pk__in=active_physicians().values("pk")) | Q(pk=patient.primary_care_provider_id)
        ).order_by("full_name")
        self.fields["primary_care_provider"].empty_label = _("None chosen")
        self.fields["opened_version"].initial = patient.updated_at.isoformat()
        if patient.ssn:
            self.fields["ssn"].help_text = _(
                "On file, ending %(last_four)s. Type a new one only to replace it."
            ) % {"last_four": patient.ssn[-4:]}
        else:
            del self.fields["remove_ssn"]
        if not may_change_restriction(actor):
            del self.fields["restricted"]
        for name in ("email", "mobile_phone", "home_phone", "work_phone"):
            self.fields[name].widget.attrs.setdefault("autocomplete", "off")

    @property
    def shows_privacy(self) -> bool:
        return "restricted" in self.fields

    def clean_mobile_phone(self) -> str:
        return _phone(self.cleaned_data["mobile_phone"])

    def clean_home_phone(self) -> str:
        return _phone(self.cleaned_data["home_phone"])

    def clean_work_phone(self) -> str:
        return _phone(self.cleaned_data["work_phone"])

    def clean_state(self) -> str:
        state = self.cleaned_data["state"].strip().upper()
        if state and not (len(state) == 2 and state.isalpha()):
            raise forms.ValidationError(_("Enter the two-letter state code, like IL."))
        return state

    def clean_ssn(self) -> str:
        digits = "".join(character for character in self.cleaned_data["ssn"] if character.isdigit())
        return f"{digits[:3]}-{digits[3:5]}-{digits[5:]}" if digits else ""

    def clean_opened_version(self):
        opened = parse_datetime(self.cleaned_data["opened_version"])
        if opened is None:
            raise forms.ValidationError(_("Reload the page and try again."), code="bad_version")
        return opened

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("ssn") and cleaned.get("remove_ssn"):
            self.add_error("ssn", _("Type a new SSN, or remove the one on file: not both."))
        return cleaned

    def _post_clean(self):
        # Not ModelForm's instance validation, which would change the loaded patient in memory:
        # the service's own checks, on a copy, so every problem shows at the first try.
        try:
            patient_changes_check(patient=self.instance, changes=self.changes())
        except ValidationError as error:
            for field, messages in error.error_dict.items():
                if field not in self.errors:
                    self.add_error(field if field in self.fields else None, messages)

    def changes(self) -> dict:
        """The cleaned values, as `patient_update` takes them (those that passed the form)."""
        data = self.cleaned_data
        changes = {name: data[name] for name in DETAIL_FIELDS if name in data}
        if data.get("remove_ssn"):
            changes["ssn"] = None
        elif data.get("ssn"):
            changes["ssn"] = data["ssn"]
        return changes

    def add_service_error(self, error: ValidationError) -> None:
        """Put the service's errors beside their fields (the rest above the form)."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for field, messages in error.error_dict.items():
            self.add_error(field if field in self.fields else None, messages)

    def error_fields(self) -> list[forms.BoundField]:
        """The fields with errors, in page order, for the summary at the top."""
        return [self[name] for name in self.fields if name in self.errors]


class ContactForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Kind"), choices=Contact.Kind.choices, initial=Contact.Kind.EMERGENCY
    )
    name = forms.CharField(label=_("Name"), max_length=200)
    relationship = forms.CharField(
        label=_("Relationship"),
        max_length=40,
        widget=forms.TextInput(attrs={"list": "contact-relationships"}),
    )
    phone = forms.CharField(
        label=_("Phone"),
        max_length=30,
        required=False,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
    )
    email = forms.EmailField(
        label=_("Email"),
        required=False,
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    address = forms.CharField(label=_("Address"), max_length=300, required=False)

    relationships = COMMON_RELATIONSHIPS

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "contact")
        super().__init__(*args, **kwargs)

    def clean_phone(self) -> str:
        return _phone(self.cleaned_data["phone"])

    def add_service_error(self, error: ValidationError) -> None:
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for field, messages in error.error_dict.items():
            self.add_error(field if field in self.fields else None, messages)
