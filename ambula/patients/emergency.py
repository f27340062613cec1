"""Emergency access ("break-glass") to restricted records.

A restricted record opens without a question only for users with a care relationship (the
practice setting decides what counts). Anyone else may still open it in an emergency: they
give a reason, get a grant for a limited time, every audit event they cause on that patient
while it lasts carries the grant's id, and the privacy officer reviews every grant.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from ambula.accounts.models import User
from ambula.accounts.policy import Capability, require
from ambula.audit.models import AuditEvent
from ambula.audit.services import record
from ambula.core.errors import AccessDenied
from ambula.core.models import Practice
from ambula.core.selectors import practice_get
from ambula.logging import emergency_access_var
from ambula.patients.models import EmergencyAccess, Patient

CATEGORY = "emergency access"
REASON_MIN_LENGTH = 10
REASON_MAX_LENGTH = 500


class EmergencyAccessRequired(AccessDenied):
    """The record is restricted and the user has no care relationship and no current grant."""

    default_message = _("This record is restricted. Give a reason to open it.")

    def __init__(self, patient: Patient, next_url: str = "") -> None:
        super().__init__(code="emergency_access_required")
        self.patient = patient
        query = f"?{urlencode({'next': next_url})}" if next_url else ""
        self.location = reverse("patients:emergency_access", args=[patient.pk]) + query


def has_care_relationship(user: User, patient: Patient) -> bool:
    """What the practice counts as a care relationship (Practice.care_relationship)."""
    practice = practice_get()
    rule = practice.care_relationship if practice else Practice.CareRelationship.PRIMARY_CARE
    if rule == Practice.CareRelationship.PRIMARY_CARE:
        return patient.primary_care_provider_id == user.pk
    return False


def current_grant(user: User, patient: Patient) -> EmergencyAccess | None:
    return (
        EmergencyAccess.objects.filter(user=user, patient=patient, expires_at__gt=now())
        .order_by("-expires_at")
        .first()
    )


def check_restricted_access(*, actor: User, patient: Patient, next_url: str = "") -> None:
    """Let the actor into a restricted record, or raise EmergencyAccessRequired.

    Under a grant, the rest of the request's audit events on this patient carry its id.
    """
    if not patient.restricted or has_care_relationship(actor, patient):
        return
    grant = current_grant(actor, patient)
    if grant is None:
        record(
            actor=actor,
            action="patients.restricted_record_refused",
            category=CATEGORY,
            outcome=AuditEvent.Outcome.DENIED,
            patient=patient,
        )
        raise EmergencyAccessRequired(patient, next_url)
    emergency_access_var.set((grant.pk, patient.pk))


@transaction.atomic
def emergency_access_grant(*, actor: User, patient: Patient, reason: str) -> EmergencyAccess:
    """Open a restricted record for a limited time, with a reason the privacy officer reviews."""
    require(actor, Capability.VIEW_DEMOGRAPHICS)
    reason = " ".join(reason.split())
    if len(reason) < REASON_MIN_LENGTH:
        raise ValidationError(
            {"reason": _("Say why you need this record (at least %(n)d characters).")},
            params={"n": REASON_MIN_LENGTH},
            code="reason_too_short",
        )
    if len(reason) > REASON_MAX_LENGTH:
        raise ValidationError(
            {"reason": _("Keep the reason under %(n)d characters.") % {"n": REASON_MAX_LENGTH}},
            code="reason_too_long",
        )
    practice = practice_get()
    minutes = practice.emergency_access_minutes if practice else 60
    grant = EmergencyAccess.objects.create(
        user=actor, patient=patient, reason=reason, expires_at=now() + timedelta(minutes=minutes)
    )
    record(
        actor=actor,
        action="patients.emergency_access_granted",
        category=CATEGORY,
        target=grant,
        patient=patient,
        changes={"reason": reason, "minutes": minutes, "emergency_access": str(grant.pk)},
    )
    return grant


@transaction.atomic
def emergency_access_review(
    *, actor: User, grant: EmergencyAccess, outcome: str, note: str = ""
) -> EmergencyAccess:
    """The privacy officer's verdict on one use of emergency access."""
    require(actor, Capability.REVIEW_EMERGENCY_ACCESS)
    grant = EmergencyAccess.objects.select_for_update().get(pk=grant.pk)
    if outcome not in EmergencyAccess.Outcome.values:
        raise ValidationError({"outcome": _("Choose an outcome.")}, code="bad_outcome")
    if grant.user_id == actor.pk:
        raise ValidationError(
            _("Someone else must review your own emergency access."), code="own_access"
        )
    note = note.strip()
    if outcome == EmergencyAccess.Outcome.INAPPROPRIATE and not note:
        raise ValidationError({"note": _("Say what follow-up is needed.")}, code="note_required")
    before = grant.review_outcome
    grant.review_outcome = outcome
    grant.review_note = note or None
    grant.reviewed_at = now()
    grant.reviewed_by = actor
    grant.save(update_fields=["review_outcome", "review_note", "reviewed_at", "reviewed_by"])
    record(
        actor=actor,
        action="patients.emergency_access_reviewed",
        category=CATEGORY,
        target=grant,
        patient_id=grant.patient_id,
        changes={"outcome": {"old": before, "new": outcome}, "note": note},
    )
    return grant


def emergency_access_grants(*, actor: User, pending_only: bool = False) -> QuerySet:
    """Grants for the review queue, newest first, each with how many events it covered."""
    require(actor, Capability.REVIEW_EMERGENCY_ACCESS)
    grants = EmergencyAccess.objects.select_related("user", "patient", "reviewed_by")
    if pending_only:
        grants = grants.filter(reviewed_at__isnull=True)
    return grants.order_by("-created_at")


def events_under(grant: EmergencyAccess) -> QuerySet[AuditEvent]:
    """What the user did on the patient while the grant lasted."""
    return AuditEvent.objects.filter(
        actor_id=grant.user_id,
        patient_id=grant.patient_id,
        occurred_at__gte=grant.created_at,
        occurred_at__lte=grant.expires_at,
    ).order_by("sequence")
