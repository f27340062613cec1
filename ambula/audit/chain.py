"""The hash chain: the audit key, each event's MAC, and verifying the whole chain.

MAC(event) = HMAC-SHA256(audit key, canonical(event) including the previous event's MAC).
The key lives outside the database (a 0600 file in the keys directory, or AMBULA_AUDIT_KEY),
so someone who can write to the database cannot forge a valid chain.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ambula.config import read_or_create_private_file

GENESIS_MAC = "0" * 64
AUDIT_KEY_FILE = "audit.key"
ANCHOR_FILE = "audit-anchors.txt"

# The columns a MAC covers, in order. Adding one is a format change: old events must still
# verify, so new columns go to a new format version, never into this list.
CHAINED_FIELDS = (
    "sequence",
    "occurred_at",
    "actor_id",
    "actor_username",
    "actor_roles",
    "action",
    "kind",
    "category",
    "outcome",
    "target_type",
    "target_id",
    "patient_id",
    "ip_address",
    "user_agent",
    "request_id",
    "changed_fields",
    "changes",
    "previous_mac",
)


@cache
def audit_key() -> bytes:
    """The chain's HMAC key: AMBULA_AUDIT_KEY (base64) or the key file, made on first use."""
    encoded = os.environ.get("AMBULA_AUDIT_KEY")
    if not encoded:
        path = Path(settings.KEYS_DIR) / AUDIT_KEY_FILE
        make = lambda: base64.b64encode(secrets.token_bytes(32)).decode() + "\n"  # noqa: E731
        encoded = read_or_create_private_file(path, make)
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ImproperlyConfigured("The audit key must be 32 bytes, base64-encoded.")
    return key


def canonical(values: dict) -> bytes:
    """The exact bytes a MAC covers: the chained columns, as text, in a fixed order."""
    return json.dumps(
        [_text(values[field]) for field in CHAINED_FIELDS],
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


def _text(value) -> str | list | None:
    if value is None or isinstance(value, list):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat(timespec="microseconds")
    return str(value)


def mac_of(values: dict) -> str:
    return hmac.new(audit_key(), canonical(values), hashlib.sha256).hexdigest()


# --- Verification --------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    sequence: int
    problem: str  # "changed", "deleted", "inserted", "reordered", "truncated"

    def __str__(self) -> str:
        descriptions = {
            "changed": f"event {self.sequence} was changed",
            "deleted": f"event {self.sequence} was deleted",
            "inserted": f"event {self.sequence} was inserted (forged)",
            "reordered": f"event {self.sequence} is out of order",
            "truncated": f"events from {self.sequence} on were deleted",
        }
        return descriptions[self.problem]


@dataclass(frozen=True)
class Verdict:
    count: int
    head_sequence: int
    head_mac: str
    finding: Finding | None

    @property
    def intact(self) -> bool:
        return self.finding is None


def _events(batch_size: int = 5000) -> Iterator[dict]:
    from ambula.audit.models import AuditEvent

    columns = [*CHAINED_FIELDS, "mac"]
    rows = AuditEvent.objects.order_by("sequence").values_list(*columns)
    for row in rows.iterator(chunk_size=batch_size):
        yield dict(zip(columns, row, strict=True))


def _classify(event: dict, previous_mac: str, following: dict | None, head_sequence: int) -> str:
    """Say what happened at the first event that does not verify."""
    from ambula.audit.models import AuditEvent

    if event["previous_mac"] == previous_mac:
        # Linked correctly, yet its own MAC is wrong: edited in place, or forged in.
        if following is not None and following["previous_mac"] == previous_mac:
            return "inserted"  # the next event still links past it
        if following is None and event["sequence"] > head_sequence:
            return "inserted"  # appended after the last event the chain head knows
        return "changed"
    if AuditEvent.objects.filter(mac=event["previous_mac"]).exists():
        return "reordered"  # it links to a real event that now stands elsewhere
    return "deleted"  # it links to an event that is no longer there


def verify(anchors: list[tuple[int, str]] | None = None) -> Verdict:
    """Recompute the chain from the first event; stop at the first problem."""
    from ambula.audit.models import AuditChainHead

    head = AuditChainHead.objects.filter(pk=1).first()
    head_sequence = head.sequence if head else 0
    count, expected_sequence, previous_mac = 0, 1, GENESIS_MAC

    def verdict(finding: Finding | None) -> Verdict:
        return Verdict(count, expected_sequence - 1, previous_mac, finding)

    events = _events()
    event = next(events, None)
    while event is not None:
        following = next(events, None)
        if event["sequence"] != expected_sequence:
            return verdict(Finding(expected_sequence, "deleted"))
        if event["previous_mac"] != previous_mac or not hmac.compare_digest(
            mac_of(event), event["mac"]
        ):
            problem = _classify(event, previous_mac, following, head_sequence)
            return verdict(Finding(event["sequence"], problem))
        count += 1
        expected_sequence += 1
        previous_mac = event["mac"]
        event = following

    known_heads = [*(anchors or []), (head_sequence, head.mac if head else GENESIS_MAC)]
    for anchor_sequence, anchor_mac in known_heads:
        if anchor_sequence > count:
            return verdict(Finding(count + 1, "truncated"))
        if anchor_sequence and not _mac_at(anchor_sequence, anchor_mac):
            return verdict(Finding(anchor_sequence, "changed"))
    return verdict(None)


def _mac_at(sequence: int, mac: str) -> bool:
    from ambula.audit.models import AuditEvent

    return AuditEvent.objects.filter(sequence=sequence, mac=mac).exists()


# --- Anchors: the head written somewhere the database cannot reach ----------------------------


def anchor_path() -> Path:
    return Path(settings.DATA_DIR) / ANCHOR_FILE


def read_anchors(path: Path) -> list[tuple[int, str]]:
    if not path.exists():
        return []
    anchors = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit() and len(parts[2]) == 64:
            anchors.append((int(parts[1]), parts[2]))
    return anchors
