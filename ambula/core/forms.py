from django import forms
from django.utils.translation import gettext_lazy as _

from ambula.core.models import Practice


class PracticeSecurityForm(forms.Form):
    mfa_required = forms.BooleanField(
        label=_("Require two-step sign-in for all staff"),
        required=False,
        help_text=_("Strongly recommended. Staff without an authenticator set one up at sign-in."),
    )
    idle_timeout_minutes = forms.IntegerField(
        label=_("Sign out idle sessions after (minutes)"),
        min_value=2,
        max_value=240,
        help_text=_("Between 2 and 240 minutes. Sessions also end 12 hours after sign-in."),
    )
    care_relationship = forms.ChoiceField(
        label=_("Who opens restricted records without giving a reason"),
        choices=Practice.CareRelationship.choices,
        help_text=_("Everyone else gives a reason; the privacy officer reviews each use."),
    )
    emergency_access_minutes = forms.IntegerField(
        label=_("Emergency access lasts (minutes)"),
        min_value=5,
        max_value=720,
    )
