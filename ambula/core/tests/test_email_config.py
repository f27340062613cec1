"""AMBULA_EMAIL_URL, AMBULA_EMAIL_FROM and AMBULA_BASE_URL: parsing, and reaching Django."""

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from hypothesis import given
from hypothesis import strategies as st

from ambula import config
from ambula.config import ConfigurationError, email_settings, parse_base_url
from ambula.testing.processes import free_port, run_ambula
from ambula.testing.pytest_plugin import RecordingSMTPHandler

CONSOLE = "django.core.mail.backends.console.EmailBackend"
SMTP = "django.core.mail.backends.smtp.EmailBackend"
DEFAULT_SENDER = "Ambula <no-reply@localhost>"


@pytest.fixture
def load(tmp_path):
    def load_with(**environ):
        return config.load({"AMBULA_DATA_DIR": str(tmp_path / "d"), **environ}, cwd=tmp_path)

    return load_with


# AMBULA_EMAIL_URL


@pytest.mark.parametrize("url", [None, "", "console:"])
def test_without_an_email_url_mail_goes_to_the_console(load, url):
    environ = {} if url is None else {"AMBULA_EMAIL_URL": url}
    expected = {"EMAIL_BACKEND": CONSOLE, "DEFAULT_FROM_EMAIL": DEFAULT_SENDER}
    assert load(**environ).email == expected


def test_plain_smtp_defaults_to_port_25_without_tls(load):
    assert load(AMBULA_EMAIL_URL="smtp://mail.local").email == {
        "DEFAULT_FROM_EMAIL": DEFAULT_SENDER,
        "EMAIL_BACKEND": SMTP,
        "EMAIL_HOST": "mail.local",
        "EMAIL_PORT": 25,
        "EMAIL_HOST_USER": "",
        "EMAIL_HOST_PASSWORD": "",
        "EMAIL_USE_TLS": False,
        "EMAIL_USE_SSL": False,
        "EMAIL_TIMEOUT": 20,
    }


def test_starttls_with_percent_encoded_credentials_and_a_port(load):
    email = load(AMBULA_EMAIL_URL="smtp+starttls://u%40x:p%3Ass@mail.local:2525").email
    assert email["EMAIL_BACKEND"] == SMTP
    assert email["EMAIL_HOST"] == "mail.local"
    assert email["EMAIL_PORT"] == 2525
    assert email["EMAIL_HOST_USER"] == "u@x"
    assert email["EMAIL_HOST_PASSWORD"] == "p:ss"
    assert email["EMAIL_USE_TLS"] is True
    assert email["EMAIL_USE_SSL"] is False


@pytest.mark.parametrize(
    ("url", "port", "use_tls", "use_ssl"),
    [
        ("smtp+starttls://mail.local", 587, True, False),
        ("smtps://user:secret@mail.local", 465, False, True),
        ("smtps://user:secret@mail.local:2465", 2465, False, True),
        ("smtp://mail.local:1025", 1025, False, False),
        ("smtp://[::1]:2525", 2525, False, False),
    ],
)
def test_each_scheme_picks_its_security_and_default_port(url, port, use_tls, use_ssl):
    email = email_settings(url, None)
    assert (email["EMAIL_PORT"], email["EMAIL_USE_TLS"], email["EMAIL_USE_SSL"]) == (
        port,
        use_tls,
        use_ssl,
    )


def test_smtps_keeps_user_and_password(load):
    email = load(AMBULA_EMAIL_URL="smtps://mailer:s3cr%2Ft@smtp.example.org").email
    assert email["EMAIL_HOST"] == "smtp.example.org"
    assert (email["EMAIL_HOST_USER"], email["EMAIL_HOST_PASSWORD"]) == ("mailer", "s3cr/t")


def test_host_names_are_lowercased_as_urls_treat_them():
    assert email_settings("smtp://Mail.Example.ORG", None)["EMAIL_HOST"] == "mail.example.org"


@pytest.mark.parametrize(
    "url",
    [
        "imap://mail.local",
        "http://mail.local",
        "SMTP+SSL://mail.local",
        "mail.local:25",
        "smtp:mail.local",
        "smtp://",
        "smtp://:25",
        "smtps://user:secret@",
        "smtp://mail.local:notaport",
        "smtp://mail.local:99999",
        "smtp+starttls://user:hunter2hunter2@mail.local:-1",
    ],
)
def test_unusable_email_urls_are_refused_naming_the_variable(load, url):
    with pytest.raises(ConfigurationError) as error:
        load(AMBULA_EMAIL_URL=url)
    message = str(error.value)
    assert "AMBULA_EMAIL_URL" in message
    assert "hunter2" not in message  # a password in the URL stays out of the message


@given(
    st.sampled_from(["smtp://", "smtps://", "smtp+starttls://", "imap://", ""]),
    st.text(alphabet=st.characters(exclude_characters="[]"), max_size=40),
)
def test_any_email_url_gives_settings_or_a_configuration_error(scheme, rest):
    try:
        email = email_settings(scheme + rest, None)
    except ConfigurationError as error:
        assert "AMBULA_EMAIL_URL" in str(error)
    else:
        assert email["EMAIL_BACKEND"] in {CONSOLE, SMTP}
        if email["EMAIL_BACKEND"] == SMTP:
            assert email["EMAIL_HOST"]
            assert 0 <= email["EMAIL_PORT"] <= 65535


@pytest.mark.parametrize("url", ["smtp://[mail.local", "smtp://mail.local]:25"])
def test_a_malformed_ipv6_host_is_a_configuration_error(url):
    with pytest.raises(ConfigurationError, match="AMBULA_EMAIL_URL"):
        email_settings(url, None)


# AMBULA_EMAIL_FROM


def test_email_from_sets_the_sender_for_console_and_smtp(load):
    sender = "Lakeside Family Practice <no-reply@lakeside.example>"
    assert load(AMBULA_EMAIL_FROM=sender).email["DEFAULT_FROM_EMAIL"] == sender
    smtp = load(AMBULA_EMAIL_URL="smtp://mail.local", AMBULA_EMAIL_FROM=sender).email
    assert smtp["DEFAULT_FROM_EMAIL"] == sender


def test_an_empty_email_from_falls_back_to_the_default(load):
    assert load(AMBULA_EMAIL_FROM="").email["DEFAULT_FROM_EMAIL"] == DEFAULT_SENDER


# AMBULA_BASE_URL


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "http://127.0.0.1:8000"),
        ("", "http://127.0.0.1:8000"),
        ("https://clinic.example.org", "https://clinic.example.org"),
        ("https://clinic.example.org/", "https://clinic.example.org"),
        ("https://clinic.example.org///", "https://clinic.example.org"),
        ("http://localhost:8000/", "http://localhost:8000"),
        ("https://example.org/ambula/", "https://example.org/ambula"),
    ],
)
def test_base_url_is_kept_without_a_trailing_slash(load, value, expected):
    environ = {} if value is None else {"AMBULA_BASE_URL": value}
    assert load(**environ).base_url == expected
    assert parse_base_url(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "ftp://clinic.example.org",
        "https://clinic.example.org/?next=/",
        "https://clinic.example.org?x=1",
        "clinic.example.org",
        "https://",
        "https:///path",
        "javascript:alert(1)",
    ],
)
def test_unusable_base_urls_are_refused_naming_the_variable(load, value):
    with pytest.raises(ConfigurationError, match="AMBULA_BASE_URL must be like"):
        load(AMBULA_BASE_URL=value)


@pytest.mark.parametrize(
    "value",
    ["https://clinic.example.org#top", "https://clinic.example.org:notaport", "https://[clinic"],
)
def test_base_urls_that_make_broken_links_are_refused(value):
    with pytest.raises(ConfigurationError, match="AMBULA_BASE_URL"):
        parse_base_url(value)


# Through the real command: the settings reach Django's mail backend.


@pytest.fixture
def smtp_server():
    """A real SMTP server that accepts AUTH over plain text and remembers the logins."""
    handler = RecordingSMTPHandler()
    handler.logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        handler.logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=True)

    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    yield controller
    controller.stop()


def test_email_url_and_sender_reach_djangos_smtp_backend(tmp_path, smtp_server):
    result = run_ambula(
        tmp_path / "data",
        "manage",
        "sendtestemail",
        "someone@clinic.example",
        AMBULA_EMAIL_URL=f"smtp://u%40x:p%3Ass@127.0.0.1:{smtp_server.port}",
        AMBULA_EMAIL_FROM="Lakeside <no-reply@lakeside.example>",
    )

    assert result.returncode == 0, result.stderr
    handler = smtp_server.handler
    assert handler.logins == [("u@x", "p:ss")]
    [message] = handler.messages
    assert message["From"] == "Lakeside <no-reply@lakeside.example>"
    assert message["To"] == "someone@clinic.example"


def test_a_bad_email_url_stops_the_command_with_a_clear_message(tmp_path):
    result = run_ambula(
        tmp_path / "data", "migrate", AMBULA_EMAIL_URL="imap://user:hunter2hunter2@mail.local"
    )
    assert result.returncode == 2
    assert "AMBULA_EMAIL_URL must look like" in result.stderr
    assert "hunter2" not in result.stderr
    assert "Traceback" not in result.stderr
