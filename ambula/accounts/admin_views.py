"""User administration: invite, roles, deactivate and reactivate, reset MFA, unlock."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ambula.accounts import mfa, services, throttling
from ambula.accounts.forms import InviteForm, RolesForm
from ambula.accounts.policy import Capability, requires
from ambula.accounts.selectors import user_get, user_list


@requires(Capability.MANAGE_ACCOUNTS)
@require_GET
def users(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "accounts/users.html",
        {"title": _("Users"), "users": user_list(actor=request.user)},
    )


@requires(Capability.MANAGE_ACCOUNTS)
@require_http_methods(["GET", "POST"])
def user_invite(request: HttpRequest) -> HttpResponse:
    form = InviteForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            user = services.user_invite(actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("Invitation sent to %(email)s.") % {"email": user.email})
            return redirect("accounts:user_detail", user_id=user.pk)
    return render(request, "accounts/user_invite.html", {"title": _("Invite a user"), "form": form})


@requires(Capability.MANAGE_ACCOUNTS)
@require_http_methods(["GET", "POST"])
def user_detail(request: HttpRequest, user_id) -> HttpResponse:
    user = user_get(actor=request.user, user_id=user_id)
    form = RolesForm(
        request.POST if request.method == "POST" else None,
        initial={"roles": [role.value for role in user.roles]},
    )
    if form.is_valid():
        try:
            services.user_roles_change(
                actor=request.user, user=user, roles=form.cleaned_data["roles"]
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("Roles saved."))
            return redirect("accounts:user_detail", user_id=user.pk)
    return render(
        request,
        "accounts/user_detail.html",
        {
            "title": user.full_name,
            "subject": user,
            "form": form,
            "recovery_codes_remaining": mfa.recovery_codes_remaining(user=user),
        },
    )


USER_ACTIONS = {
    "deactivate": (
        lambda request, user: services.user_deactivate(actor=request.user, user=user),
        _("The user was deactivated and signed out everywhere."),
    ),
    "reactivate": (
        lambda request, user: services.user_reactivate(actor=request.user, user=user),
        _("The user can sign in again."),
    ),
    "reset-mfa": (
        lambda request, user: mfa.mfa_reset(actor=request.user, user=user),
        _("Two-step sign-in was reset; the user sets it up again at their next sign-in."),
    ),
    "unlock": (
        lambda request, user: throttling.user_unlock(actor=request.user, user=user),
        _("The sign-in lock was lifted."),
    ),
    "resend-invitation": (
        lambda request, user: services.user_invitation_resend(actor=request.user, user=user),
        _("A new invitation was sent."),
    ),
}


@requires(Capability.MANAGE_ACCOUNTS)
@require_POST
def user_action(request: HttpRequest, user_id, action: str) -> HttpResponse:
    user = user_get(actor=request.user, user_id=user_id)
    if action not in USER_ACTIONS:
        return redirect("accounts:user_detail", user_id=user.pk)
    perform, done = USER_ACTIONS[action]
    try:
        perform(request, user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, done)
    return redirect("accounts:user_detail", user_id=user.pk)
