"""The one entry point for recording what happened: `record(...)`."""

from __future__ import annotations

import contextvars
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from django.db import models, transaction
from django.utils.timezone import now as timezone_now

from ambula.audit.actions import ACTIONS
from ambula.audit.chain import mac_of
from ambula.audit.models import AuditChainHead, AuditEvent
from ambula.logging import (
    client_ip_var,
    emergency_access_var,
    printable,
    request_id_var,
    user_agent_var,
)


def _stored_address(address: str) -> str | None:
    # The MAC must cover the text the database gives back, so take the field's own form.
    if not address:
        return None
    return AuditEvent._meta.get_field("ip_address").get_prep_value(address)


def _uuid_or_none(value: UUID | str | None) -> UUID | None:
    # Normalised now: the MAC must cover exactly what the database will give back.
    return UUID(str(value)) if value else None


def _changes_aad(event_id: UUID) -> bytes:
    return f"audit_auditevent.changes.{event_id}".encode()


def record(
    *,
    actor: Any | None,
    action: str,
    category: str,
    outcome: str = AuditEvent.Outcome.SUCCESS,
    target: models.Model | None = None,
    patient: models.Model | None = None,
    patient_id: UUID | str | None = None,
    changes: dict | None = None,
    username: str = "",
) -> AuditEvent:
    """Append one audit event to the chain.

    Call it inside the service's transaction so that the change and its record commit
    together or not at all. `changes` maps field names to details such as old and new values;
    the names stay readable, the values are encrypted. `username` names who it was about when
    there is no signed-in actor (the username a failed sign-in tried).
    """
    if action not in ACTIONS:
        raise ValueError(f"Unknown audit action {action!r}: add it to ambula/audit/actions.py.")
    authenticated = actor is not None and getattr(actor, "is_authenticated", False)
    patient_id = patient.pk if patient is not None else _uuid_or_none(patient_id)
    grant = emergency_access_var.get()
    if grant is not None and patient_id == grant[1]:
        changes = {**(changes or {}), "emergency_access": str(grant[0])}
    event = AuditEvent(
        occurred_at=timezone_now(),
        actor=actor if authenticated else None,
        actor_username=actor.username if authenticated else printable(username)[:150],
        actor_roles=",".join(actor.roles) if authenticated else "",
        action=action,
        kind=ACTIONS[action].kind,
        category=category,
        outcome=outcome,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        patient_id=patient_id,
        ip_address=_stored_address(client_ip_var.get()),
        user_agent=user_agent_var.get()[:300],
        request_id=request_id_var.get() if request_id_var.get() != "-" else "",
        changed_fields=sorted(changes or {}),
    )
    if changes:
        from ambula.core.encryption import encrypt

        plaintext = json.dumps(changes, sort_keys=True, default=str).encode()
        event.changes = encrypt(plaintext, aad=_changes_aad(event.id))
    pending = _pending_var.get()
    if pending is not None:
        pending.append(event)  # written when the batch ends
    else:
        _append([event])
    return event


_pending_var: contextvars.ContextVar[list[AuditEvent] | None] = contextvars.ContextVar(
    "audit_pending", default=None
)


@contextmanager
def batched() -> Iterator[None]:
    """Record the block's events together: one turn at the chain head and one insert.

    For a page that reads several parts of a record at once. The events are written when the
    block ends; an error inside it records none of them (nothing was shown).
    """
    pending: list[AuditEvent] = []
    token = _pending_var.set(pending)
    try:
        yield
    finally:
        _pending_var.reset(token)
    _append(pending)


def _append(events: list[AuditEvent]) -> None:
    """Link the events onto the chain, in order, and store them."""
    if not events:
        return
    with transaction.atomic():
        # The head's row lock makes concurrent writers take turns: one link after another.
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1)
        for event in events:
            event.sequence = head.sequence + 1
            event.previous_mac = head.mac
            event.mac = mac_of({**event.__dict__, "actor_id": event.actor_id})
            head.sequence, head.mac = event.sequence, event.mac
        AuditEvent.objects.bulk_create(events)
        head.save(update_fields=["sequence", "mac"])


def changes_of(event: AuditEvent) -> dict:
    """The decrypted details of a change; readable only with the encryption keys."""
    from ambula.core.encryption import decrypt

    if not event.changes:
        return {}
    return json.loads(decrypt(event.changes, aad=_changes_aad(event.id)))
