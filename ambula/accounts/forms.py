from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from ambula.accounts.roles import STAFF_ROLES, Role
from ambula.accounts.throttling import (
    check_throttled,
    sign_in_attempt_succeeded,
    sign_in_failure_audit,
)

NOT_MATCHED = _("That username and password do not match. Check them and try again.")


class SignInForm(AuthenticationForm):
    """Sign-in: slowed and locked after failures; never says whether the username exists."""

    error_messages = {"invalid_login": NOT_MATCHED, "inactive": NOT_MATCHED}

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.fields["username"].widget.attrs.update(
            {"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"}
        )
        self.fields["password"].widget = forms.PasswordInput(
            attrs={"autocomplete": "current-password"}
        )

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if not username or not password:
            return self.cleaned_data
        # Refused attempts are not counted again, so retrying does not prolong a lock.
        check_throttled(self.request, username=username)
        self.user_cache = authenticate(self.request, username=username, password=password)
        if self.user_cache is None:
            sign_in_failure_audit(username=username, reason="password")
            raise self.get_invalid_login_error()
        sign_in_attempt_succeeded(username=username, address=self.request.client_ip)
        return self.cleaned_data


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code"),
        max_length=32,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "autocapitalize": "none",
                "spellcheck": "false",
                "autofocus": True,
            }
        ),
    )


class ConfirmPasswordForm(forms.Form):
    password = forms.CharField(
        label=_("Your password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )


class PasswordFields(forms.Form):
    new_password = forms.CharField(
        label=_("New password"),
        strip=False,
        max_length=256,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    new_password_again = forms.CharField(
        label=_("New password, again"),
        strip=False,
        max_length=256,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("new_password") != cleaned.get("new_password_again"):
            self.add_error("new_password_again", _("The two passwords differ."))
        return cleaned


class PasswordChangeForm(PasswordFields):
    current_password = forms.CharField(
        label=_("Current password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    field_order = ["current_password", "new_password", "new_password_again"]


class RolesField(forms.MultipleChoiceField):
    def __init__(self, **kwargs):
        super().__init__(
            label=_("Roles"),
            choices=[(role.value, role.label) for role in STAFF_ROLES],
            widget=forms.CheckboxSelectMultiple,
            error_messages={"required": _("Choose at least one role.")},
            **kwargs,
        )

    def clean(self, value):
        return [Role(role) for role in super().clean(value)]


class InviteForm(forms.Form):
    full_name = forms.CharField(label=_("Full name"), max_length=200)
    username = forms.RegexField(
        label=_("Username"),
        max_length=150,
        regex=r"^[A-Za-z0-9._-]+$",
        error_messages={"invalid": _("Use letters, digits, dots, dashes and underscores.")},
    )
    email = forms.EmailField(label=_("Email address"))
    roles = RolesField()


class RolesForm(forms.Form):
    roles = RolesField()
