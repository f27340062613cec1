from django import forms
from django.utils.translation import gettext_lazy as _
from oauth2_provider.forms import AllowForm

from ambula.accounts.roles import STAFF_ROLES
from ambula.smart.models import ApiClient


class ApiClientForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    kind = forms.ChoiceField(label=_("Kind"), choices=ApiClient.Kind.choices)
    scopes = forms.CharField(
        label=_("Allowed scopes"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "The most it may ever be granted, separated by spaces. Apps: e.g. "
            "openid fhirUser launch/patient offline_access patient/*.rs user/*.rs. "
            "Backend and internal: system/ scopes only, e.g. system/*.rs."
        ),
    )
    redirect_uris = forms.CharField(
        label=_("Redirect URIs"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Apps only: one per line; https, or http://localhost while developing."),
    )
    jwks = forms.CharField(
        label=_("Public keys (JWKS JSON)"),
        required=False,
        max_length=64 * 1024,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_('Backend services only: {"keys": [...]}, each key with a kid.'),
    )
    role = forms.ChoiceField(
        label=_("Acts with the role"),
        required=False,
        choices=[("", "—"), *[(role.value, role.label) for role in STAFF_ROLES]],
        help_text=_("Backend and internal only: what its system tokens may do at most."),
    )


class RevokeForm(forms.Form):
    client_id = forms.CharField(max_length=100)


class SmartAllowForm(AllowForm):
    patient = forms.UUIDField(required=False)
