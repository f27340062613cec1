"""Logging: one line per event on stdout, text or JSON lines, with the request id and no PHI.

Ambula logs ids, never names, dates of birth, contact details or note text. Code is written to
that rule; ``PHIRedactionFilter`` is the safety net for what slips through, such as a database
error quoting the row it rejected or a URL with a search term in its query string.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
user_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("user_id", default="-")
client_ip_var: contextvars.ContextVar[str] = contextvars.ContextVar("client_ip", default="")
user_agent_var: contextvars.ContextVar[str] = contextvars.ContextVar("user_agent", default="")
# (grant id, patient id) while a request works in a restricted record under emergency access:
# the audit trail marks every event it records on that patient. Set by ambula.patients.emergency.
emergency_access_var: contextvars.ContextVar[tuple | None] = contextvars.ContextVar(
    "emergency_access", default=None
)

REDACTED = "[redacted]"
PHI_PATTERNS = [
    # A database error quoting the rejected value: Key (email)=(jane@example.org) already exists.
    (re.compile(r"(Key \([^)]*\))=\(.*?\)(?= |$|\n)"), rf"\1=({REDACTED})"),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), REDACTED),  # email addresses
    (re.compile(r"\b\d{3}-\d{2}-\d{4}\b"), REDACTED),  # social security numbers
    (re.compile(r"(?<![\w-])\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b"), REDACTED),  # phone numbers
    # Dates without a time of day, e.g. a date of birth; timestamps stay readable.
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b(?![ T]\d{2}:\d{2})"), REDACTED),
    (re.compile(r"\b\d{1,2}/\d{1,2}/\d{2,4}\b"), REDACTED),  # US dates
    (re.compile(r"(\?)[^\s\"']+"), rf"\1{REDACTED}"),  # query strings may carry search terms
    # One-time links (set-password): whoever reads the log could use them.
    (re.compile(r"(/set-password/)[^\s\"']+"), rf"\1{REDACTED}/"),
]

# Only these extra fields reach a JSON line; anything else passed in `extra` is dropped.
SAFE_EXTRA_FIELDS = frozenset({"method", "path", "status", "duration_ms", "count", "task"})


CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def printable(text: str) -> str:
    """Text from a client without control characters (NUL breaks PostgreSQL text columns)."""
    return CONTROL_CHARACTERS.sub("", text)


def redact(text: str) -> str:
    for pattern, replacement in PHI_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RequestContextFilter(logging.Filter):
    """Stamp every record with the current request id and user id."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.user_id = user_id_var.get()
        return True


class PHIRedactionFilter(logging.Filter):
    """Rewrite the message and any traceback with PHI-looking values redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JSONLinesFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "user_id": getattr(record, "user_id", "-"),
        }
        entry |= {
            field: value
            for field, value in record.__dict__.items()
            if field in SAFE_EXTRA_FIELDS or field.endswith("_id")
            if field not in entry
        }
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


def logging_config(*, log_format: str, level: str) -> dict:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_context": {"()": RequestContextFilter},
            "phi_redaction": {"()": PHIRedactionFilter},
        },
        "formatters": {
            "text": {
                "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
            },
            "json": {"()": JSONLinesFormatter},
        },
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": log_format,
                "filters": ["request_context", "phi_redaction"],
            },
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            "django": {"level": "WARNING"},
            "django.server": {"level": "ERROR"},
            # Named with handlers so these libraries do not add their own beside ours.
            "gunicorn.error": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
            "huey": {"level": level, "handlers": ["stdout"], "propagate": False},
        },
    }
