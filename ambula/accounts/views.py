"""Sign-in (password, then the second step), sign-out, the session clock, and one's account."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.encoding import force_str
from django.utils.http import url_has_allowed_host_and_scheme, urlsafe_base64_decode
from django.utils.timezone import now as timezone_now
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ambula.accounts import mfa, services, sessions
from ambula.accounts.forms import (
    CodeForm,
    ConfirmPasswordForm,
    PasswordChangeForm,
    PasswordFields,
    SignInForm,
)
from ambula.accounts.models import TOTPDevice, User
from ambula.accounts.policy import public, signed_in
from ambula.accounts.throttling import (
    check_throttled,
    sign_in_attempt_succeeded,
    sign_in_failure_audit,
)
from ambula.core.demo import DEMO_PASSWORD, DEMO_USERS
from ambula.core.selectors import practice_get

PENDING, ENROLLING_DEVICE = sessions.SIGN_IN_LEFTOVERS
PENDING_MINUTES = 10


def recent_authentication_required(view):
    """Ask a signed-in user for their password again before a sensitive change.

    A stolen session alone must not be enough to change how the account is protected.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.user.is_authenticated and not sessions.recently_authenticated(request):
            next_url = (
                request.get_full_path() if request.method == "GET" else reverse("accounts:account")
            )
            return redirect(
                f"{reverse('accounts:confirm_password')}?{urlencode({'next': next_url})}"
            )
        return view(request, *args, **kwargs)

    return wrapper


def safe_next(request: HttpRequest, candidate: str | None) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("core:home")


def mfa_required() -> bool:
    """Whether the practice requires two-step sign-in (it does until it says otherwise)."""
    practice = practice_get()
    return practice is None or practice.mfa_required


def continue_sign_in(request: HttpRequest, user: User, *, next_url: str) -> HttpResponse:
    """After the password: go to the second step, to enrolment, or straight in."""
    if mfa.mfa_is_enrolled(user=user):
        step = "verify"
    elif mfa_required():
        step = "enrol"
    else:
        sessions.session_begin(request=request, user=user, method="password")
        return redirect(next_url)
    request.session.cycle_key()
    request.session[PENDING] = {
        "user": str(user.pk),
        "step": step,
        "next": next_url,
        "since": timezone_now().timestamp(),
    }
    return redirect("accounts:mfa_verify" if step == "verify" else "accounts:mfa_enrol")


def pending_user(request: HttpRequest, step: str) -> User | None:
    """The user who passed the password step within the last few minutes, if any."""
    pending = request.session.get(PENDING)
    if not pending or pending["step"] != step:
        return None
    if timezone_now().timestamp() - pending["since"] > PENDING_MINUTES * 60:
        del request.session[PENDING]
        return None
    return User.objects.filter(pk=pending["user"], is_active=True).first()


@public
@never_cache
@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponse:
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"))
    if request.user.is_authenticated:
        return redirect(next_url)
    form = SignInForm(request, data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        return continue_sign_in(request, form.get_user(), next_url=next_url)
    practice = practice_get()
    return render(
        request,
        "accounts/login.html",
        {
            "title": _("Sign in"),
            "form": form,
            "next": next_url,
            "demo_users": DEMO_USERS if practice and practice.is_demo else [],
            "demo_password": DEMO_PASSWORD,
        },
    )


@public
@never_cache
@require_http_methods(["GET", "POST"])
def mfa_verify(request: HttpRequest) -> HttpResponse:
    user = pending_user(request, "verify")
    if user is None:
        return redirect("accounts:login")
    form = CodeForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            check_throttled(request, username=user.username, action="auth.mfa_failed")
        except ValidationError as refused:
            form.add_error("code", refused)
        else:
            method = mfa.mfa_verify(user=user, code=form.cleaned_data["code"])
            if method is not None:
                sign_in_attempt_succeeded(username=user.username, address=request.client_ip)
                next_url = request.session.pop(PENDING)["next"]
                sessions.session_begin(request=request, user=user, method=f"password+{method}")
                return redirect(next_url)
            sign_in_failure_audit(
                username=user.username, reason="second_factor", action="auth.mfa_failed"
            )
            form.add_error(
                "code",
                _("That code did not work. Enter the newest code, or a recovery code."),
            )
    return render(
        request, "accounts/mfa_verify.html", {"title": _("Two-step sign-in"), "form": form}
    )


@public
@never_cache
@recent_authentication_required
@require_http_methods(["GET", "POST"])
def mfa_enrol(request: HttpRequest) -> HttpResponse:
    """Enrol an authenticator: during sign-in when required, or later from one's account."""
    user = request.user if request.user.is_authenticated else pending_user(request, "enrol")
    if user is None:
        return redirect("accounts:login")
    if mfa.mfa_is_enrolled(user=user):
        return redirect("accounts:account")
    device = TOTPDevice.objects.filter(
        pk=request.session.get(ENROLLING_DEVICE), user=user, confirmed=False
    ).first()
    if device is None:
        device = mfa.totp_enrolment_start(user=user)
        request.session[ENROLLING_DEVICE] = str(device.pk)
    form = CodeForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            codes = mfa.totp_enrolment_confirm(
                user=user, device=device, token=form.cleaned_data["code"]
            )
        except ValidationError as error:
            form.add_error("code", error)
        else:
            del request.session[ENROLLING_DEVICE]
            next_url = reverse("accounts:account")
            if not request.user.is_authenticated:
                next_url = request.session.pop(PENDING)["next"]
                sessions.session_begin(request=request, user=user, method="password+totp")
            return render(
                request,
                "accounts/recovery_codes.html",
                {"title": _("Save your recovery codes"), "codes": codes, "next": next_url},
            )
    issuer = str(practice_get() or "Ambula")
    return render(
        request,
        "accounts/mfa_enrol.html",
        {
            "title": _("Set up two-step sign-in"),
            "form": form,
            "qr_svg": mfa.totp_qr_svg(device=device, issuer=issuer),
            "secret": mfa.totp_secret_for_display(device=device),
        },
    )


@public
@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    sessions.session_end(request=request)
    messages.success(request, _("You have signed out."))
    return redirect("accounts:login")


@signed_in
@require_GET
def session_status(request: HttpRequest) -> JsonResponse:
    """Seconds left before the idle sign-out; asking does not count as activity."""
    seconds = sessions.session_seconds_left(request, idle_minutes=request.idle_timeout_minutes)
    return JsonResponse({"seconds_left": seconds})


session_status.passive_session = True


@signed_in
@require_POST
def session_keepalive(request: HttpRequest) -> JsonResponse:
    """ "Stay signed in": the request itself counts as activity."""
    seconds = sessions.session_seconds_left(request, idle_minutes=request.idle_timeout_minutes)
    return JsonResponse({"seconds_left": seconds})


@signed_in
@require_GET
def account(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "accounts/account.html",
        {
            "title": _("Your account"),
            "mfa_enrolled": mfa.mfa_is_enrolled(user=request.user),
            "recovery_codes_remaining": mfa.recovery_codes_remaining(user=request.user),
        },
    )


@signed_in
@recent_authentication_required
@require_POST
def recovery_codes_regenerate(request: HttpRequest) -> HttpResponse:
    if not mfa.mfa_is_enrolled(user=request.user):
        return redirect("accounts:account")
    codes = mfa.recovery_codes_regenerate(user=request.user)
    return render(
        request,
        "accounts/recovery_codes.html",
        {
            "title": _("Save your recovery codes"),
            "codes": codes,
            "next": reverse("accounts:account"),
        },
    )


@signed_in
@require_http_methods(["GET", "POST"])
def confirm_password(request: HttpRequest) -> HttpResponse:
    """Re-enter the password before a sensitive change (throttled like a sign-in)."""
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"))
    form = ConfirmPasswordForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            services.reauthenticate(
                request=request, user=request.user, password=form.cleaned_data["password"]
            )
        except ValidationError as error:
            form.add_error("password", error)
        else:
            sessions.session_reauthenticated(request)
            return redirect(next_url)
    return render(
        request,
        "accounts/confirm_password.html",
        {"title": _("Confirm it is you"), "form": form, "next": next_url},
    )


@signed_in
@require_http_methods(["GET", "POST"])
def password_change(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            ended = services.password_change(
                request=request,
                user=request.user,
                current_password=form.cleaned_data["current_password"],
                new_password=form.cleaned_data["new_password"],
            )
        except ValidationError as error:
            wrong = getattr(error, "code", None) in {"wrong_password", "throttled"}
            field = "current_password" if wrong else "new_password"
            form.add_error(field, error)
        else:
            messages.success(
                request,
                _("Your password was changed.")
                + (" " + _("You were signed out everywhere else.") if ended else ""),
            )
            return redirect("accounts:account")
    return render(
        request, "accounts/password_change.html", {"title": _("Change password"), "form": form}
    )


@public
@never_cache
@require_http_methods(["GET", "POST"])
def set_password(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """Choose a password from an invitation link, then go on to two-step enrolment."""
    try:
        user = User.objects.get(pk=force_str(urlsafe_base64_decode(uidb64)), is_active=True)
    except (ValueError, ValidationError, User.DoesNotExist):
        user = None
    if user is None or not default_token_generator.check_token(user, token):
        return render(
            request,
            "accounts/set_password_invalid.html",
            {"title": _("This link no longer works")},
            status=400,
        )
    form = PasswordFields(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            user = services.password_set(
                user=user, new_password=form.cleaned_data["new_password"], token=token
            )
        except ValidationError as error:
            form.add_error("new_password", error)
        else:
            if request.user.is_authenticated:
                sessions.session_end(request=request)
            return continue_sign_in(request, user, next_url=reverse("core:home"))
    return render(
        request,
        "accounts/set_password.html",
        {"title": _("Choose your password"), "form": form, "invited_user": user},
    )
