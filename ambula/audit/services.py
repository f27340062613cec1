"""The one entry point for recording what happened: `record(...)`."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.timezone import now as timezone_now

from ambula.audit.actions import ACTIONS
from ambula.audit.models import AuditEvent
from ambula.logging import client_ip_var, request_id_var


def record(
    *,
    actor: Any | None,
    action: str,
    category: str,
    outcome: str = AuditEvent.Outcome.SUCCESS,
    target: models.Model | None = None,
    patient: models.Model | None = None,
    changes: dict | None = None,
) -> AuditEvent:
    """Append one audit event. Call inside the service's transaction, so both commit or neither."""
    if action not in ACTIONS:
        raise ValueError(f"Unknown audit action {action!r}: add it to ambula/audit/actions.py.")
    authenticated = actor is not None and getattr(actor, "is_authenticated", False)
    request_id = request_id_var.get()
    return AuditEvent.objects.create(
        occurred_at=timezone_now(),
        actor=actor if authenticated else None,
        actor_roles=",".join(actor.roles) if authenticated else "",
        action=action,
        category=category,
        outcome=outcome,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        patient_id=patient.pk if patient is not None else None,
        ip_address=client_ip_var.get() or None,
        request_id=request_id if request_id != "-" else "",
        changes=changes or {},
    )
