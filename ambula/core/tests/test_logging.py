import io
import json
import logging
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ambula.logging import (
    REDACTED,
    JSONLinesFormatter,
    PHIRedactionFilter,
    RequestContextFilter,
    redact,
    request_id_var,
)


@pytest.fixture
def log_to(request):
    """A logger writing through Ambula's filters and the chosen formatter to a buffer."""

    def make(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
        buffer = io.StringIO()
        handler = logging.StreamHandler(buffer)
        handler.setFormatter(formatter)
        handler.addFilter(RequestContextFilter())
        handler.addFilter(PHIRedactionFilter())
        logger = logging.getLogger(f"ambula.test.{request.node.name}")
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(logging.INFO)
        return logger, buffer

    return make


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ("patient jane.doe+portal@example.org signed in", "jane.doe+portal@example.org"),
        ("ssn 123-45-6789 on file", "123-45-6789"),
        ("call (217) 555-0199 today", "555-0199"),
        ("dob 1984-03-07 matched", "1984-03-07"),
        ("dob 3/7/1984 matched", "3/7/1984"),
        ("GET /patients/search?q=Jane+Doe", "Jane+Doe"),
        (
            'duplicate key value violates unique constraint "x"\n'
            "DETAIL:  Key (email)=(a@b.c) already exists.",
            "a@b.c",
        ),
        ("Key (last_name, birth_date)=(Doe, 1984-03-07) already exists.", "Doe"),
    ],
)
def test_redact_removes_phi_looking_values(text, leaked):
    assert leaked not in redact(text)
    assert REDACTED in redact(text)


def test_redact_keeps_ids_and_timestamps_readable():
    text = "appointment 01a220ca-4f13-7238-a558-44d7e20eacd4 moved at 2026-11-28 06:14:14"
    assert redact(text) == text


@given(
    st.from_regex(r"[a-z]{1,10}(\.[a-z]{1,5})?@[a-z]{1,10}\.(org|com|test)", fullmatch=True),
    st.text(alphabet=st.characters(whitelist_categories=["L", "Zs"]), max_size=30),
)
def test_an_email_never_survives_redaction(email, surrounding):
    assert email not in redact(f"{surrounding} {email} {surrounding}")


def test_log_arguments_are_redacted_after_formatting(log_to):
    logger, buffer = log_to(logging.Formatter("%(message)s"))
    logger.info("reminder sent to %s", "pat@example.org")
    assert buffer.getvalue().strip() == f"reminder sent to {REDACTED}"


def test_tracebacks_are_redacted(log_to):
    logger, buffer = log_to(logging.Formatter("%(message)s"))
    try:
        raise ValueError("could not parse 123-45-6789")
    except ValueError:
        logger.exception("import failed")
    assert "ValueError" in buffer.getvalue()
    assert "123-45-6789" not in buffer.getvalue()


def test_json_lines_carry_request_id_and_only_safe_extras(log_to):
    logger, buffer = log_to(JSONLinesFormatter())
    token = request_id_var.set("req-12345678")
    try:
        logger.info(
            "booked",
            extra={"appointment_id": "a1", "status": 201, "patient_name": "Jane Doe"},
        )
    finally:
        request_id_var.reset(token)
    entry = json.loads(buffer.getvalue())
    assert entry["message"] == "booked"
    assert entry["request_id"] == "req-12345678"
    assert entry["appointment_id"] == "a1"
    assert entry["status"] == 201
    assert entry["level"] == "INFO"
    assert "patient_name" not in entry
    assert "Jane Doe" not in buffer.getvalue()


def test_each_event_is_one_line(log_to):
    logger, buffer = log_to(JSONLinesFormatter())
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("multi\nline")
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 1
    assert "RuntimeError" in json.loads(lines[0])["exception"]


def test_requests_are_logged_once_with_id_and_without_query_string(client, db, caplog):
    caplog.set_level(logging.INFO, logger="ambula.request")
    response = client.get("/healthz?q=Jane+Doe", HTTP_X_REQUEST_ID="lb-request-0001")
    assert response["X-Request-ID"] == "lb-request-0001"
    records = [record for record in caplog.records if record.name == "ambula.request"]
    assert len(records) == 1
    assert records[0].getMessage().startswith("GET /healthz 200 ")
    assert "Jane" not in records[0].getMessage()
    assert records[0].path == "/healthz"


@pytest.mark.parametrize(
    "incoming", ["", "short", "x" * 65, "evil\nINFO forged line", "a b c d e f"]
)
def test_unusable_incoming_request_ids_are_replaced(client, db, incoming):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-ID"] != incoming
    assert len(response["X-Request-ID"]) == 32


# One-time links: whoever reads the log must not be able to use them


@pytest.fixture
def set_password_path(practice):
    from urllib.parse import urlsplit

    from ambula.accounts.emails import set_password_link
    from ambula.accounts.tests.factories import UserFactory

    user = UserFactory(username="newcomer", password=None)
    return urlsplit(set_password_link(user=user)).path


def secret_parts(path: str) -> list[str]:
    """The uid and token of a set-password path."""
    uidb64, token = path.rstrip("/").split("/")[-2:]
    return [uidb64, token]


def test_the_request_line_of_a_set_password_link_hides_its_uid_and_token(
    client, caplog, set_password_path
):
    caplog.set_level(logging.INFO, logger="ambula.request")

    assert client.get(set_password_path).status_code == 200

    [record] = [record for record in caplog.records if record.name == "ambula.request"]
    assert record.path == "/accounts/set-password/[redacted]/"
    # The redaction filter on the handler may fold the two into one; either hides both.
    assert re.match(
        r"GET /accounts/set-password/\[redacted\]/(\[redacted\]/)? 200 ", record.getMessage()
    )
    for secret in secret_parts(set_password_path):
        assert secret not in record.getMessage()
        assert secret not in record.path


def test_the_request_line_of_a_spoiled_link_hides_it_too(client, caplog, set_password_path):
    caplog.set_level(logging.INFO, logger="ambula.request")
    spoiled = set_password_path.replace("/set-password/", "/set-password/x")

    assert client.get(spoiled).status_code == 400

    [record] = [record for record in caplog.records if record.name == "ambula.request"]
    assert record.path == "/accounts/set-password/[redacted]/"


@pytest.mark.parametrize(
    "message",
    [
        "GET /accounts/set-password/MDFhMjIx/cx4k2a-5f0e9c1d2b3a4f5e6d7c/ 200 3.1ms",
        "Not Found: /accounts/set-password/MDFhMjIx/cx4k2a-5f0e9c1d2b3a4f5e6d7c",
        'link "http://clinic.example/accounts/set-password/MDFhMjIx/cx4k2a-5f0e9c1d2b3a/" failed',
    ],
)
def test_the_redaction_filter_hides_set_password_links_in_any_message(log_to, message):
    logger, buffer = log_to(logging.Formatter("%(message)s"))

    logger.warning(message)

    line = buffer.getvalue()
    assert "/set-password/[redacted]" in line
    assert "MDFhMjIx" not in line
    assert "cx4k2a" not in line


def test_a_json_request_line_never_carries_a_set_password_token(client, set_password_path, request):
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JSONLinesFormatter())
    handler.addFilter(RequestContextFilter())
    handler.addFilter(PHIRedactionFilter())
    access_logger = logging.getLogger("ambula.request")
    access_logger.addHandler(handler)
    request.addfinalizer(lambda: access_logger.removeHandler(handler))
    level = access_logger.level
    access_logger.setLevel(logging.INFO)
    request.addfinalizer(lambda: access_logger.setLevel(level))

    for path in (set_password_path, set_password_path.rstrip("/")):
        client.get(path)

    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert len(lines) == 2
    for secret in secret_parts(set_password_path):
        assert secret not in buffer.getvalue()
