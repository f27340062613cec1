import contextlib
import hashlib
import http.server
import logging
import socket
import threading
import time
from types import SimpleNamespace

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.password_validation import (
    get_default_password_validators,
    password_validators_help_texts,
    validate_password,
)
from django.core.exceptions import ImproperlyConfigured, ValidationError
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from ambula import config
from ambula.accounts.models import User
from ambula.accounts.passwords import (
    IdentityValidator,
    MaximumLengthValidator,
    PwnedPasswordsValidator,
    StrengthValidator,
)

STRONG_PASSPHRASE = "violet tractor mumbles quietly"
STRONG_TWELVE = "kx9#Lm2!qPz7"
# Both in Django's common-password list, yet zxcvbn alone would let the second one through.
COMMON_BUT_RANDOM_LOOKING = "pe#5gz29ptzmse"
BREACHED = "a breached passphrase from a leak"
PADDING_ONLY = "a passphrase listed only as padding"


def sha1(password: str) -> str:
    return hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest().upper()


def error_codes(password, user=None, validators=None):
    try:
        validate_password(password, user, validators)
    except ValidationError as error:
        return {item.code for item in error.error_list}
    return set()


def error_messages(password, user=None):
    try:
        validate_password(password, user)
    except ValidationError as error:
        return error.messages
    return []


@pytest.fixture
def user():
    # Unsaved: the validators read attributes only, as when setting a first password.
    return User(
        username="drjrivera",
        email="Jamie.Rivera@clinic.example",
        full_name="Dr. Jamie Quillfeather",
    )


# The configured chain, end to end.


def test_the_configured_chain_is_the_policy():
    validators = get_default_password_validators()
    assert [type(validator).__name__ for validator in validators] == [
        "MinimumLengthValidator",
        "MaximumLengthValidator",
        "CommonPasswordValidator",
        "IdentityValidator",
        "StrengthValidator",
        "PwnedPasswordsValidator",
    ]
    assert validators[0].min_length == 12
    assert validators[1].max_length == 128
    assert validators[4].min_score == 3
    assert validators[5].timeout == 3


def test_the_breach_check_is_off_by_default():
    assert django_settings.PWNED_PASSWORDS_CHECK is False
    assert django_settings.PWNED_PASSWORDS_URL == "https://api.pwnedpasswords.com/range/"


def test_eleven_characters_are_too_short(user):
    assert error_codes(STRONG_TWELVE[:11], user) == {"password_too_short"}


def test_twelve_good_characters_are_accepted(user):
    assert validate_password(STRONG_TWELVE, user) is None


def test_128_characters_are_accepted_and_129_are_not(user):
    longest = (STRONG_PASSPHRASE + " ") * 5
    longest = longest[:128]
    assert len(longest) == 128
    assert validate_password(longest, user) is None
    assert error_codes(longest + "x", user) == {"password_too_long"}
    assert "at most 128 characters" in error_messages(longest + "x", user)[0]


def test_a_common_password_is_refused_even_when_it_looks_random(user):
    assert error_codes(COMMON_BUT_RANDOM_LOOKING, user) == {"password_too_common"}


def test_password1234_is_refused(user):
    codes = error_codes("password1234", user)
    assert "password_too_common" in codes
    assert "password_too_weak" in codes


def test_a_long_but_guessable_password_is_refused_with_the_reason(user):
    assert error_codes("aaaaaaaaaaaaaaaa", user) == {"password_too_weak"}
    (message,) = error_messages("aaaaaaaaaaaaaaaa", user)
    assert message.startswith("This password is too easy to guess.")
    assert 'Repeats like "aaa" are easy to guess.' in message


@pytest.mark.parametrize(
    "password",
    ["DrJRivera-sunny-meadow", "sunny-meadow-DRJRIVERA", "jamie.RIVERA-sunny-meadow"],
)
def test_a_password_containing_the_username_or_email_local_part_is_refused(user, password):
    assert "password_contains_identity" in error_codes(password, user)


def test_a_password_built_on_the_users_name_is_too_weak(user):
    # Strong for a stranger, guessable for someone who knows the user's name.
    assert validate_password("quillfeather1987", None) is None
    assert error_codes("quillfeather1987", user) == {"password_too_weak"}


def test_a_strong_passphrase_is_accepted(user):
    assert validate_password(STRONG_PASSPHRASE, user) is None


def test_passwords_are_checked_before_the_user_exists():
    assert validate_password(STRONG_PASSPHRASE, None) is None
    assert error_codes("aaaaaaaaaaaaaaaa", None) == {"password_too_weak"}


def test_every_rule_explains_itself():
    texts = password_validators_help_texts()
    assert len(texts) == 6
    assert "Your password can contain at most 128 characters." in texts
    assert all(str(text).strip() for text in texts)


@hypothesis_settings(max_examples=60, deadline=None)
@given(
    password=st.text(max_size=200),
    username=st.none() | st.text(max_size=20),
    email=st.none() | st.text(max_size=30),
)
def test_any_text_is_either_accepted_or_refused_with_a_validation_error(password, username, email):
    user = SimpleNamespace(username=username, email=email, full_name=username)
    for candidate_user in (user, None):
        try:
            result = validate_password(password, candidate_user)
        except ValidationError as error:
            assert error.messages
        else:
            assert result is None


# Each validator on its own.


def test_maximum_length_is_configurable():
    validator = MaximumLengthValidator(max_length=20)
    validator.validate("x" * 20)
    with pytest.raises(ValidationError) as error:
        validator.validate("x" * 21)
    assert error.value.code == "password_too_long"
    assert error.value.messages == [
        "This password is too long. It must contain at most 20 characters."
    ]


def test_identity_ignores_case_and_finds_the_whole_email_address():
    validator = IdentityValidator()
    user = SimpleNamespace(username="nurse.kim", email="Kim.Lee@Clinic.Example", full_name="")
    for password in ("xx-NURSE.KIM-xx", "xx-kim.lee@clinic.example-xx", "xx-KIM.LEE-xx"):
        with pytest.raises(ValidationError) as error:
            validator.validate(password, user)
        assert error.value.code == "password_contains_identity"
    validator.validate("violet-tractor-kim-lee", user)


def test_identity_ignores_parts_shorter_than_four_characters():
    validator = IdentityValidator()
    user = SimpleNamespace(username="al", email="bob@x.io", full_name="Al Bo")
    validator.validate("al-bob-x.io-violet-tractor", user)
    with pytest.raises(ValidationError):
        validator.validate("xx-BOB@X.IO-xx", user)


def test_identity_skips_a_missing_user_or_missing_attributes():
    validator = IdentityValidator()
    validator.validate("drjrivera-sunny-meadow", None)
    validator.validate("none-sunny-meadow", SimpleNamespace(username=None, email=None))
    validator.validate("sunny-meadow", SimpleNamespace())


def test_strength_min_score_is_configurable():
    # zxcvbn scores this one exactly 3.
    StrengthValidator(min_score=3).validate("Tr0ub4dour&3xq")
    with pytest.raises(ValidationError) as error:
        StrengthValidator(min_score=4).validate("Tr0ub4dour&3xq")
    assert error.value.code == "password_too_weak"


@pytest.mark.parametrize("min_score", [-1, 5])
def test_strength_refuses_an_impossible_min_score(min_score):
    with pytest.raises(ImproperlyConfigured, match="min_score"):
        StrengthValidator(min_score=min_score)


def test_strength_refuses_the_empty_password():
    with pytest.raises(ValidationError) as error:
        StrengthValidator().validate("")
    assert error.value.code == "password_too_weak"


def test_strength_estimates_only_the_first_128_characters_of_a_long_password():
    # zxcvbn itself raises on input over its limit, and slows down steeply with length.
    started = time.monotonic()
    StrengthValidator().validate(STRONG_TWELVE * 1000)
    assert time.monotonic() - started < 10
    with pytest.raises(ValidationError):
        StrengthValidator().validate("a" * 128 + STRONG_PASSPHRASE)


def test_strength_ignores_empty_and_missing_user_details():
    validator = StrengthValidator()
    for user in (
        SimpleNamespace(username=None, email=None, full_name=None),
        SimpleNamespace(username="", email="", full_name=""),
        SimpleNamespace(),
    ):
        validator.validate(STRONG_PASSPHRASE, user)


# Pwned Passwords, against a real local range server.


class RangeHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.requests.append({"path": self.path, "headers": dict(self.headers)})
        if self.server.delay:
            time.sleep(self.server.delay)
        status, body = self.server.answer(self.path.rpartition("/")[2])
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # The client may have given up waiting, as the timeout test intends.
        with contextlib.suppress(ConnectionError):
            self.wfile.write(body)

    def log_message(self, format, *args):
        pass  # keep the test output clean


def range_answer(prefix):
    """Answer as the real service does: matching suffixes, then count-0 padding lines."""
    lines = [
        f"{digest[5:]}:{count}"
        for digest, count in ((sha1(BREACHED), 52), (sha1(PADDING_ONLY), 0))
        if digest.startswith(prefix)
    ]
    lines += [f"{sha1(str(n))[5:]}:0" for n in range(20)]
    lines += [f"{sha1(str(n))[5:]}:{n + 1}" for n in range(5)]
    return 200, "\r\n".join(lines).encode()


@pytest.fixture
def range_server(settings):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    server.requests = []
    server.answer = range_answer
    server.delay = 0
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    settings.PWNED_PASSWORDS_CHECK = True
    settings.PWNED_PASSWORDS_URL = f"http://127.0.0.1:{server.server_port}/range/"
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_breached_password_is_refused_and_only_the_hash_prefix_is_sent(range_server, user):
    assert error_codes(BREACHED, user) == {"password_breached"}
    (request,) = range_server.requests
    digest = sha1(BREACHED)
    assert request["path"] == f"/range/{digest[:5]}"
    assert digest[5:] not in request["path"].upper()
    assert BREACHED not in request["path"]
    assert request["headers"]["Add-Padding"] == "true"


def test_a_suffix_listed_only_as_padding_is_accepted(range_server, user):
    assert validate_password(PADDING_ONLY, user) is None
    assert len(range_server.requests) == 1


def test_a_password_not_in_the_range_is_accepted(range_server, user):
    assert validate_password(STRONG_PASSPHRASE, user) is None
    assert range_server.requests[0]["path"] == f"/range/{sha1(STRONG_PASSPHRASE)[:5]}"


def test_no_request_is_made_when_the_check_is_off(range_server, settings, user):
    settings.PWNED_PASSWORDS_CHECK = False
    assert validate_password(BREACHED, user) is None
    assert range_server.requests == []


def assert_warned_without_secrets(caplog, password):
    records = [record for record in caplog.records if record.name == "ambula.accounts"]
    assert [record.levelno for record in records] == [logging.WARNING]
    logged = records[0].getMessage().upper()
    assert "PWNED PASSWORDS CHECK SKIPPED" in logged
    assert password.upper() not in logged
    assert sha1(password)[:5] not in logged


def test_an_unreachable_service_lets_the_password_through_with_a_warning(settings, caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings.PWNED_PASSWORDS_CHECK = True
    settings.PWNED_PASSWORDS_URL = f"http://127.0.0.1:{closed_port}/range/"
    with caplog.at_level(logging.WARNING, logger="ambula.accounts"):
        assert validate_password(BREACHED) is None
    assert_warned_without_secrets(caplog, BREACHED)


@pytest.mark.parametrize(
    "answer",
    [
        (200, b"<html><body>Please sign in to the hotel wifi</body></html>"),
        (200, b""),
        (200, b"\xff\xfe\x00garbage"),
        (200, sha1(BREACHED)[5:].encode() + b":many"),
        (500, b"Internal Server Error"),
        (429, b"Too many requests"),
    ],
    ids=["html", "empty", "binary", "bad-count", "server-error", "rate-limited"],
)
def test_a_garbled_answer_lets_the_password_through_with_a_warning(range_server, caplog, answer):
    range_server.answer = lambda prefix: answer
    with caplog.at_level(logging.WARNING, logger="ambula.accounts"):
        assert validate_password(BREACHED) is None
    assert len(range_server.requests) == 1
    assert_warned_without_secrets(caplog, BREACHED)


def test_a_slow_service_is_given_up_on_after_the_timeout(range_server, caplog):
    range_server.delay = 2
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="ambula.accounts"):
        PwnedPasswordsValidator(timeout=0.3).validate(BREACHED)
    assert time.monotonic() - started < 1.5
    assert_warned_without_secrets(caplog, BREACHED)


def test_a_breached_password_is_found_in_lowercase_answers_too(range_server):
    range_server.answer = lambda prefix: (200, f"{sha1(BREACHED)[5:].lower()}:3\n".encode())
    with pytest.raises(ValidationError) as error:
        PwnedPasswordsValidator().validate(BREACHED)
    assert error.value.code == "password_breached"


# Configuration.


@pytest.fixture
def load(tmp_path):
    def load_with(**environ):
        return config.load({"AMBULA_DATA_DIR": str(tmp_path / "data"), **environ}, cwd=tmp_path)

    return load_with


def test_breach_check_settings_default_to_off_and_the_public_service(load):
    loaded = load()
    assert loaded.pwned_passwords_check is False
    assert loaded.pwned_passwords_url == "https://api.pwnedpasswords.com/range/"


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("off", False)])
def test_breach_check_is_switched_by_environment(load, value, expected):
    assert load(AMBULA_PWNED_PASSWORDS_CHECK=value).pwned_passwords_check is expected


def test_breach_check_refuses_an_unclear_switch(load):
    with pytest.raises(config.ConfigurationError, match="AMBULA_PWNED_PASSWORDS_CHECK"):
        load(AMBULA_PWNED_PASSWORDS_CHECK="sometimes")


@pytest.mark.parametrize(
    "url",
    [
        "https://pwned.mirror.example/range/",
        "http://127.0.0.1:8080/range/",
        "http://localhost/range/",
    ],
)
def test_breach_check_url_accepts_https_or_this_machine(load, url):
    assert load(AMBULA_PWNED_PASSWORDS_URL=url).pwned_passwords_url == url


@pytest.mark.parametrize(
    "url",
    [
        "http://api.pwnedpasswords.com/range/",
        "http://localhost.attacker.example/range/",
        "http://127.0.0.1.attacker.example/range/",
        "ftp://mirror.example/range/",
        "file:///etc/passwd",
        "https://",
        "mirror.example/range/",
        "http://[::1/range/",
    ],
)
def test_breach_check_url_refuses_anything_else(load, url):
    with pytest.raises(config.ConfigurationError, match="AMBULA_PWNED_PASSWORDS_URL"):
        load(AMBULA_PWNED_PASSWORDS_URL=url)


def test_breach_check_url_error_does_not_repeat_credentials(load):
    with pytest.raises(config.ConfigurationError) as error:
        load(AMBULA_PWNED_PASSWORDS_URL="http://mirror:s3cret-token@mirror.example/range/")
    assert "s3cret-token" not in str(error.value)
