"""Emails the accounts app sends. Subjects and bodies carry no PHI."""

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _

from ambula.accounts.models import User
from ambula.core.selectors import practice_get


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
