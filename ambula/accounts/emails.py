"""Emails the accounts app sends. Subjects and bodies carry no PHI."""

import logging

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.timezone import now as timezone_now
from django.utils.translation import gettext_lazy as _

from ambula.accounts.models import User
from ambula.core.selectors import practice_get

logger = logging.getLogger("ambula.accounts")


def set_password_link(*, user: User) -> str:
    """A one-time link to set a password: it stops working once used, and after 72 hours."""
    path = reverse(
        "accounts:set_password",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    # The configured address, never a request's Host header, which a sender could choose.
    return settings.BASE_URL + path


def send_invitation(*, user: User) -> None:
    practice = practice_get()
    context = {
        "user": user,
        "practice_name": practice.name if practice else "Ambula",
        "link": set_password_link(user=user),
        "valid_hours": settings.PASSWORD_RESET_TIMEOUT // 3600,
    }
    send_mail(
        subject=_("You are invited to %(practice)s on Ambula")
        % {"practice": context["practice_name"]},
        message=render_to_string("accounts/email/invitation.txt", context),
        from_email=None,
        recipient_list=[user.email],
    )


# What a user is told when something about their sign-in changes (ASVS 2.2.3, 2.5.x).
SECURITY_NOTICES = {
    "password_changed": _("Your password was changed."),
    "mfa_enrolled": _("Two-step sign-in was turned on with a new authenticator app."),
    "recovery_codes_regenerated": _("New recovery codes were made; the old ones no longer work."),
    "recovery_code_used": _("One of your recovery codes was used to sign in."),
    "mfa_reset": _(
        "An administrator removed your authenticator; you will set up a new one at sign-in."
    ),
    "roles_changed": _("Your roles were changed, and with them what you can see and do."),
    "sign_in_locked": _("Sign-in to your account was paused after several failed attempts."),
}


def security_notice_send(*, user: User, notice: str) -> None:
    """Tell the user, after the change commits, that something about their sign-in changed."""
    message = SECURITY_NOTICES[notice]

    def send() -> None:
        practice = practice_get()
        context = {
            "user": user,
            "message": message,
            "practice_name": practice.name if practice else "Ambula",
            "when": timezone_now(),
        }
        try:
            send_mail(
                subject=_("Security notice for your %(practice)s account")
                % {"practice": context["practice_name"]},
                message=render_to_string("accounts/email/security_notice.txt", context),
                from_email=None,
                recipient_list=[user.email],
            )
        except OSError:
            # The change stands; a mail server that is down must not undo it.
            logger.exception("security notice %s for user %s not sent", notice, user.pk)

    transaction.on_commit(send)
