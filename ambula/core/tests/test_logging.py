import io
import json
import logging

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
