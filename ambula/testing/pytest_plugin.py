"""Test harness, loaded by pytest (`-p ambula.testing.pytest_plugin`) before Django starts.

Each test process gets its own throw-away data directory, so tests never touch ./var, and the
browser fixtures drive Debian's chromium through Playwright against a live server.
"""

import os
import tempfile
from pathlib import Path

import pytest

os.environ["AMBULA_DATA_DIR"] = tempfile.mkdtemp(prefix="ambula-test-")
# Installs ambula.testing as an app, for the models only tests use (see settings.py).
os.environ["AMBULA_TESTING"] = "1"
os.environ.setdefault("AMBULA_LOG_LEVEL", "WARNING")

CHROMIUM = os.environ.get("AMBULA_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("AMBULA_TEST_ARTIFACTS", "test-artifacts"))
# Flags for a machine with no network but loopback: nothing phones home at start-up.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashing():
    """Production's Argon2id at minimum cost; its real parameters are exercised by `ambula demo`."""
    from django.test import override_settings

    override = override_settings(
        PASSWORD_HASHERS=["ambula.testing.hashers.FastArgon2PasswordHasher"]
    )
    override.enable()
    yield
    override.disable()


@pytest.fixture(autouse=True)
def no_emergency_access_left_over():
    """An emergency access opened outside a request (in a test) must not mark the next test."""
    from ambula.logging import emergency_access_var

    token = emergency_access_var.set(None)
    yield
    emergency_access_var.reset(token)


@pytest.fixture(scope="session", autouse=True)
def static_files():
    """Collect static files once, as `ambula serve` does, so templates find the manifest."""
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"The browser tests need chromium at {CHROMIUM} (apt-get install chromium).")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django would refuse its ORM
    # from the test body. Our code has no async views, so the guard protects nothing here.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request):
    """A fresh browser page; on failure its screenshot goes to test-artifacts/."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.console_errors = []
    page.on(
        "console",
        lambda message: message.type == "error" and page.console_errors.append(message.text),
    )
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / f"{request.node.name}.png", full_page=True)
    context.close()


class RecordingSMTPHandler:
    """An aiosmtpd handler that keeps every message it is sent."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        from email import message_from_bytes, policy

        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


@pytest.fixture
def mail_server(settings):
    """A real SMTP server on loopback; Django sends to it over SMTP. `.messages` holds mail."""
    from aiosmtpd.controller import Controller

    from ambula.testing.processes import free_port

    handler = RecordingSMTPHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield handler
    controller.stop()
