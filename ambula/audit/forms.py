from django import forms
from django.utils.translation import gettext_lazy as _

from ambula.audit.actions import ACTIONS, KINDS
from ambula.audit.models import AuditEvent


class AuditFilterForm(forms.Form):
    date_from = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    username = forms.CharField(label=_("User"), required=False, max_length=150)
    patient_id = forms.UUIDField(label=_("Patient id"), required=False)
    action = forms.ChoiceField(
        label=_("Action"),
        required=False,
        choices=[("", _("Any action"))] + [(name, name) for name in sorted(ACTIONS)],
    )
    kind = forms.ChoiceField(
        label=_("Kind"), required=False, choices=[("", _("Any kind"))] + [(k, k) for k in KINDS]
    )
    outcome = forms.ChoiceField(
        label=_("Outcome"),
        required=False,
        choices=[("", _("Any outcome")), *AuditEvent.Outcome.choices],
    )

    def clean(self):
        cleaned = super().clean()
        if (
            cleaned.get("date_from")
            and cleaned.get("date_to")
            and cleaned["date_from"] > cleaned["date_to"]
        ):
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned

    def filters(self) -> dict:
        """The filters that were given, for the selector and for the audit event."""
        return {name: value for name, value in self.cleaned_data.items() if value}


class DisclosuresForm(forms.Form):
    patient_id = forms.UUIDField(label=_("Patient id"))
