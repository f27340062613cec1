"""The password policy (NIST SP 800-63B rev 4, OWASP ASVS V6) as Django password validators.

Length, a blocklist, a strength estimate and an optional breach check; deliberately no
composition rules and no forced rotation, which push people to predictable passwords.
``AUTH_PASSWORD_VALIDATORS`` in ``ambula/settings.py`` puts them in order.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import re
import threading
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from zxcvbn import zxcvbn

logger = logging.getLogger("ambula.accounts")

DEFAULT_MAX_LENGTH = 128
# zxcvbn's running time grows steeply with length (seconds at 128 characters); scoring a
# prefix keeps a sign-up from tying up a worker, and can only make the check stricter.
STRENGTH_CHECK_LENGTH = 64
DEFAULT_MIN_SCORE = 3
MINIMUM_IDENTITY_PART_LENGTH = 4
PWNED_PASSWORDS_TIMEOUT = 3
# A padded range answer is about 40 KB; anything far larger is not the service we expect.
MAX_RANGE_RESPONSE_BYTES = 1_000_000
SHA1_PREFIX_LENGTH = 5
RANGE_LINE = re.compile(r"([0-9A-F]{35}):([0-9]+)")

# zxcvbn keeps the user inputs of the current call in a module-level dictionary, so two
# threads estimating at once could score one user's password against another's name.
zxcvbn_lock = threading.Lock()


class MaximumLengthValidator:
    """Refuse passwords longer than ``max_length`` characters, which only serve to slow hashing."""

    def __init__(self, max_length: int = DEFAULT_MAX_LENGTH) -> None:
        self.max_length = max_length

    def validate(self, password: str, user: Any = None) -> None:
        """Raise if the password is longer than the maximum."""
        if len(password) > self.max_length:
            raise ValidationError(
                ngettext_lazy(
                    "This password is too long. It must contain at most %(max_length)d character.",
                    "This password is too long. It must contain at most %(max_length)d characters.",
                    "max_length",
                ),
                code="password_too_long",
                params={"max_length": self.max_length},
            )

    def get_help_text(self) -> str:
        return ngettext_lazy(
            "Your password can contain at most %(max_length)d character.",
            "Your password can contain at most %(max_length)d characters.",
            "max_length",
        ) % {"max_length": self.max_length}


def identity_parts(user: Any) -> list[str]:
    """Return the username, email address and email local part of a user, skipping blanks."""
    if user is None:
        return []
    username = getattr(user, "username", None) or ""
    email = getattr(user, "email", None) or ""
    # rpartition: a quoted local part may itself contain "@".
    local_part = email.rpartition("@")[0]
    return [part.strip() for part in (username, email, local_part) if part and part.strip()]


def strength_user_inputs(user: Any) -> list[str]:
    """Return what zxcvbn should treat as guessable for this user: identity and name words."""
    if user is None:
        return []
    inputs = identity_parts(user)
    full_name = getattr(user, "full_name", None) or ""
    if full_name.strip():
        inputs.append(full_name.strip())
    # zxcvbn matches inputs as whole dictionary words; "rivera" in a password does not match
    # "Jamie Rivera" unless the words are offered separately too.
    for text in (full_name, *inputs):
        inputs.extend(word for word in re.split(r"\W+", text) if len(word) >= 3)
    return list(dict.fromkeys(inputs))


class IdentityValidator:
    """Refuse passwords containing the username, the email address or its local part."""

    def __init__(self, min_part_length: int = MINIMUM_IDENTITY_PART_LENGTH) -> None:
        # Shorter parts ("al", "bob") turn up inside unrelated words and would refuse too much.
        self.min_part_length = min_part_length

    def validate(self, password: str, user: Any = None) -> None:
        """Raise if the password contains one of the user's identifiers, ignoring case."""
        folded = password.casefold()
        for part in identity_parts(user):
            if len(part) >= self.min_part_length and part.casefold() in folded:
                raise ValidationError(
                    _("Your password must not contain your username or email address."),
                    code="password_contains_identity",
                )

    def get_help_text(self) -> str:
        return _("Your password cannot contain your username or email address.")


def estimate_strength(password: str, user_inputs: list[str]) -> dict:
    """Return zxcvbn's estimate for the first STRENGTH_CHECK_LENGTH characters."""
    if not password:
        # zxcvbn fails on the empty string; nothing is weaker.
        return {"score": 0, "feedback": {"warning": "", "suggestions": []}}
    with zxcvbn_lock:
        return zxcvbn(
            password[:STRENGTH_CHECK_LENGTH],
            user_inputs=[text for text in user_inputs if text],
            max_length=STRENGTH_CHECK_LENGTH,
        )


class StrengthValidator:
    """Refuse passwords zxcvbn scores below ``min_score`` (0 to 4): guessable, if long enough."""

    def __init__(self, min_score: int = DEFAULT_MIN_SCORE) -> None:
        if not 0 <= min_score <= 4:
            raise ImproperlyConfigured(
                f"StrengthValidator min_score must be between 0 and 4, not {min_score!r}."
            )
        self.min_score = min_score

    def validate(self, password: str, user: Any = None) -> None:
        """Raise if the password is easy to guess, passing on zxcvbn's reason when it has one."""
        estimate = estimate_strength(password, strength_user_inputs(user))
        if estimate["score"] >= self.min_score:
            return
        # zxcvbn's own feedback is English only; the sentence around it is translated.
        warning = (estimate.get("feedback") or {}).get("warning") or ""
        if warning:
            raise ValidationError(
                _("This password is too easy to guess. %(warning)s"),
                code="password_too_weak",
                params={"warning": warning},
            )
        raise ValidationError(
            _("This password is too easy to guess. Add a few more uncommon words."),
            code="password_too_weak",
        )

    def get_help_text(self) -> str:
        return _("Your password must be hard to guess: a few uncommon words together work well.")


class PwnedPasswordsUnavailable(Exception):
    """The Pwned Passwords range service could not be asked or gave an unusable answer."""


def parse_range(body: bytes) -> dict[str, int]:
    """Parse a range answer ("SUFFIX:COUNT" lines) into breach counts by hash suffix."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise PwnedPasswordsUnavailable("the answer is not ASCII text") from None
    counts: dict[str, int] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        match = RANGE_LINE.fullmatch(line.upper())
        if match is None:
            raise PwnedPasswordsUnavailable("the answer holds a line that is not SUFFIX:COUNT")
        counts[match[1]] = max(counts.get(match[1], 0), int(match[2]))
    if not counts:
        raise PwnedPasswordsUnavailable("the answer is empty")
    return counts


def pwned_range(prefix: str, *, url: str, timeout: float) -> dict[str, int]:
    """Ask the range service about one 5-character SHA-1 prefix; return counts by suffix."""
    # The URL's scheme is checked in ambula/config.py: https, or http to this machine.
    request = urllib.request.Request(  # noqa: S310
        url + prefix,
        # Padding makes every answer about the same size, so its length reveals no prefix.
        headers={"Add-Padding": "true", "User-Agent": "Ambula password check"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body = response.read(MAX_RANGE_RESPONSE_BYTES + 1)
    except (OSError, http.client.HTTPException, ValueError) as error:
        # The exception's text may hold the URL and so the prefix: keep only its kind.
        raise PwnedPasswordsUnavailable(type(error).__name__) from None
    if len(body) > MAX_RANGE_RESPONSE_BYTES:
        raise PwnedPasswordsUnavailable("the answer is too large")
    return parse_range(body)


def service_host(url: str) -> str:
    """Name the range service for a log line: its host alone, as a URL may hold credentials."""
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


class PwnedPasswordsValidator:
    """Refuse passwords known from data breaches, when ``PWNED_PASSWORDS_CHECK`` is on.

    Only the first five hex characters of the password's SHA-1 leave the server (the
    k-anonymity range API). If the service cannot be reached the password is accepted and a
    warning logged: a practice server without internet access must still be able to work.
    """

    def __init__(self, timeout: float = PWNED_PASSWORDS_TIMEOUT) -> None:
        self.timeout = timeout

    def validate(self, password: str, user: Any = None) -> None:
        """Raise if the range service lists the password with a breach count above zero."""
        if not getattr(settings, "PWNED_PASSWORDS_CHECK", False):
            return
        url = settings.PWNED_PASSWORDS_URL
        # surrogatepass: a stray surrogate must not turn into a server error here.
        digest = hashlib.sha1(
            password.encode("utf-8", "surrogatepass"), usedforsecurity=False
        ).hexdigest()
        prefix, suffix = digest[:SHA1_PREFIX_LENGTH].upper(), digest[SHA1_PREFIX_LENGTH:].upper()
        try:
            counts = pwned_range(prefix, url=url, timeout=self.timeout)
        except PwnedPasswordsUnavailable as error:
            logger.warning(
                "Pwned Passwords check skipped, password accepted unchecked: %s (service at %s)",
                error,
                service_host(url),
            )
            return
        # Padding entries carry a count of 0: they are decoys, not breached passwords.
        if counts.get(suffix, 0) > 0:
            raise ValidationError(
                _(
                    "This password has appeared in a data breach, so attackers try it first. "
                    "Choose a different one."
                ),
                code="password_breached",
            )

    def get_help_text(self) -> str:
        return _("Your password cannot be one known from a data breach.")
