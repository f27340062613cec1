"""Who may do what through the API: the token's scopes AND the user's role, never more.

Scopes come from SMART (ambula.smart); the role comes from the one permission policy. A
patient-scoped grant narrows compartment resources to the launch patient; restricted
records need the same care relationship or emergency access as in the app.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.utils.timezone import now

from ambula.accounts.policy import can
from ambula.audit.models import AuditEvent
from ambula.audit.services import record
from ambula.core.models import Practice
from ambula.core.selectors import practice_get
from ambula.fhir.errors import FhirError, forbidden, not_found
from ambula.fhir.mapper import ResourceMapper
from ambula.patients.emergency import EmergencyAccessRequired, check_restricted_access
from ambula.patients.models import EmergencyAccess
from ambula.smart.principal import Grant, Principal

WORDS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}


def grant_for(principal: Principal, mapper: ResourceMapper, letter: str) -> Grant:
    """The grant for one interaction letter (c r u d s), or 403 (audited)."""
    grant = principal.grant(mapper.resource_type, letter)
    if grant is None:
        _refuse(principal, mapper, letter, "scope")
        raise forbidden(
            f"The token's scopes do not allow {WORDS[letter]} on {mapper.resource_type}."
        )
    needed = [mapper.read_capability]
    if letter in "cud":
        needed.append(mapper.write_capability)
    if not all(capability is not None and can(principal.user, capability) for capability in needed):
        _refuse(principal, mapper, letter, "role")
        raise forbidden(
            f"The user's role does not allow {WORDS[letter]} on {mapper.resource_type}."
        )
    if mapper.patient_path is None:
        if grant.patient_id is not None and not mapper.open_to_patient_scopes:
            _refuse(principal, mapper, letter, "scope")
            raise forbidden(
                f"{mapper.resource_type} spans every patient: a patient-scoped token cannot "
                "reach it."
            )
        return Grant(None)  # not one patient's data: a patient-scoped token reads it whole
    return grant


def _refuse(principal: Principal, mapper: ResourceMapper, letter: str, why: str) -> None:
    record(
        actor=principal.user,
        action="fhir.refused",
        category="api",
        outcome=AuditEvent.Outcome.DENIED,
        changes={
            "client": principal.client_id,
            "resource_type": mapper.resource_type,
            "interaction": WORDS[letter],
            "refused_by": why,
        },
    )


class Refused(FhirError):
    """A record this request may not touch. Recorded by the outermost layer (`record()`),
    after any rollback: inside a write's transaction the event would be rolled back too."""

    def __init__(self, error: FhirError, principal: Principal, mapper, patient_id, why: str):
        super().__init__(error.status, "", "", issues=error.issues)
        self.principal = principal
        self.resource_type = mapper.resource_type
        self.patient_id = patient_id
        self.why = why

    def record(self) -> None:
        record(
            actor=self.principal.user,
            action="fhir.refused",
            category="api",
            outcome=AuditEvent.Outcome.DENIED,
            patient_id=self.patient_id,
            changes={
                "client": self.principal.client_id,
                "resource_type": self.resource_type,
                "refused_by": self.why,
            },
        )


def check_record(principal: Principal, mapper: ResourceMapper, grant: Grant, obj: Any) -> None:
    """One record: visible to the user and inside the grant's compartment (else 404, as if it
    did not exist), and not restricted (else 403)."""
    patient_id = mapper.patient_id_of(obj)
    missing = not_found(mapper.resource_type, mapper.resource_id(obj))
    if mapper.narrows_by_user and not (
        mapper.visible(principal.user, mapper.model._default_manager.filter(pk=obj.pk)).exists()
    ):
        raise Refused(missing, principal, mapper, patient_id, "visibility")
    if patient_id is None:
        return
    if grant.patient_id is not None and str(patient_id) != str(grant.patient_id):
        raise Refused(missing, principal, mapper, patient_id, "compartment")
    patient = obj if mapper.patient_path == "" else getattr(obj, mapper.patient_path)
    if patient.restricted:
        try:
            check_restricted_access(actor=principal.user, patient=patient)
        except EmergencyAccessRequired:
            restricted = forbidden(
                "This patient's record is restricted. Open it in Ambula with emergency "
                "access first; the API then follows that access while it lasts."
            )
            raise Refused(restricted, principal, mapper, patient_id, "restricted record") from None


def narrowed(principal: Principal, mapper: ResourceMapper, grant: Grant, queryset: QuerySet):
    """A search's records: the grant's compartment, and restricted patients only where the
    user has a care relationship or current emergency access."""
    queryset = mapper.visible(principal.user, queryset)
    path = mapper.patient_path
    if path is None:
        return queryset
    prefix = f"{path}__" if path else ""
    key = f"{path}_id" if path else "pk"
    if grant.patient_id is not None:
        queryset = queryset.filter(**{key: grant.patient_id})
    opened = EmergencyAccess.objects.filter(user=principal.user, expires_at__gt=now())
    allowed = Q(**{f"{prefix}restricted": False}) | Q(**{f"{key}__in": opened.values("patient_id")})
    practice = practice_get()
    rule = practice.care_relationship if practice else Practice.CareRelationship.PRIMARY_CARE
    if rule == Practice.CareRelationship.PRIMARY_CARE:
        allowed |= Q(**{f"{prefix}primary_care_provider": principal.user})
    return queryset.filter(allowed)
