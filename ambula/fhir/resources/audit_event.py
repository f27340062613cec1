"""AuditEvent: the audit trail, read-only, for those who watch access (`audit.view`).

Each row of `ambula.audit` as a FHIR AuditEvent: the DICOM event type of its kind, the
Ambula action as subtype, who (the practitioner, or the username), from where, and which
patient. The encrypted details stay encrypted; of them only the API client id is shown, for
events of the API, since "which app" is part of who acted. Newest first.
"""

from __future__ import annotations

import uuid

from django.db.models import Q

from ambula.accounts.policy import Capability
from ambula.audit.actions import ACTIONS
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.fhir.mapper import ResourceMapper, instant, reference
from ambula.fhir.registry import register
from ambula.fhir.search_params import (
    DateParam,
    FunctionParam,
    StringParam,
    TokenParam,
    as_uuid,
    reference_key,
)

DCM = "http://dicom.nema.org/resources/ontology/DCM"
ACTION_SYSTEM = "urn:ambula:audit-action"
CLIENT_SYSTEM = "urn:ambula:api-client"
EVENT_TYPES = {
    "login": ("110114", "User Authentication"),
    "login_failed": ("110114", "User Authentication"),
    "mfa_failed": ("110114", "User Authentication"),
    "logout": ("110114", "User Authentication"),
    "privilege_change": ("110136", "Security Roles Changed"),
    "configuration": ("110100", "Application Activity"),
    "access_denied": ("110113", "Security Alert"),
    "emergency_access": ("110113", "Security Alert"),
    "export": ("110106", "Export"),
}
PATIENT_RECORD = ("110110", "Patient Record")
APPLICATION = ("110100", "Application Activity")
# FHIR's AuditEvent.action: Create, Read, Update, Delete, Execute.
ACTION_OF_KIND = {"create": "C", "read": "R", "export": "R", "update": "U", "delete": "D"}
KINDS_OF_ACTION = {"C": ["create"], "R": ["read", "export"], "U": ["update"], "D": ["delete"]}
OUTCOME_CODES = {
    AuditEvent.Outcome.SUCCESS: "0",
    AuditEvent.Outcome.FAILURE: "4",
    AuditEvent.Outcome.DENIED: "4",
    AuditEvent.Outcome.ERROR: "8",
}
# Domain records an event may name, as the FHIR resources that show them.
TARGET_TYPES = {
    "patients.patient": "Patient",
    "scheduling.appointment": "Appointment",
    "scheduling.location": "Location",
    "scheduling.provider": "Practitioner",
}


def _action(name: str, modifier: str, value: str) -> Q:
    code = value.rpartition("|")[2]
    if code == "E":
        return ~Q(kind__in=[kind for kinds in KINDS_OF_ACTION.values() for kind in kinds])
    return Q(kind__in=KINDS_OF_ACTION.get(code, []))


def _outcome(name: str, modifier: str, value: str) -> Q:
    code = value.rpartition("|")[2]
    return Q(outcome__in=[outcome for outcome, fhir in OUTCOME_CODES.items() if fhir == code])


def _agent(name: str, modifier: str, value: str) -> Q:
    kind, key = reference_key(value, ("Practitioner",))
    try:
        key = uuid.UUID(key)
    except ValueError:
        return Q(pk__in=[])
    if kind == "Practitioner":
        return Q(actor__provider_profile__id=key)
    return Q(actor_id=key) | Q(actor__provider_profile__id=key)


def _patient(name: str, modifier: str, value: str) -> Q:
    _kind, key = reference_key(value, ("Patient",))
    try:
        return Q(patient_id=uuid.UUID(key))
    except ValueError:
        return Q(pk__in=[])


def _entity(name: str, modifier: str, value: str) -> Q:
    kind, key = reference_key(value, tuple(TARGET_TYPES.values()))
    labels = [label for label, target in TARGET_TYPES.items() if target == kind] if kind else []
    condition = Q(target_id=key)
    if labels:
        condition &= Q(target_type__in=labels)
    if kind in ("", "Patient") and as_uuid(key) is not None:
        condition |= Q(patient_id=uuid.UUID(key))
    return condition


@register
class AuditEventMapper(ResourceMapper):
    resource_type = "AuditEvent"
    model = AuditEvent
    versioned = False  # the trail is append-only: an event never has a second version
    read_capability = Capability.VIEW_AUDIT
    patient_path = None
    search_params = {
        "date": DateParam(field="occurred_at", documentation="When it happened."),
        "agent": FunctionParam(
            function=_agent,
            param_type="reference",
            accepted_modifiers=("Practitioner",),
            documentation="Who acted: Practitioner/<provider id>, or a user's id.",
        ),
        "agent-name": StringParam(
            fields=("actor_username",), documentation="The username of who acted."
        ),
        "patient": FunctionParam(
            function=_patient,
            param_type="reference",
            accepted_modifiers=("Patient",),
            documentation="The patient whose record it concerns.",
        ),
        "entity": FunctionParam(
            function=_entity,
            param_type="reference",
            documentation="The record it concerns (Type/id).",
        ),
        "subtype": TokenParam(
            field="action",
            system=ACTION_SYSTEM,
            documentation=f"The Ambula action ({ACTION_SYSTEM}).",
        ),
        "action": FunctionParam(
            function=_action, param_type="token", documentation="C, R, U, D or E."
        ),
        "outcome": FunctionParam(
            function=_outcome,
            param_type="token",
            documentation="0 success, 4 failure or refusal, 8 error.",
        ),
    }
    sort_fields = {"date": "occurred_at"}
    default_order = ("-sequence",)
    last_updated_field = "occurred_at"
    open_to_patient_scopes = False

    def queryset(self):
        return AuditEvent.objects.select_related("actor__provider_profile")

    def to_fhir(self, event: AuditEvent) -> dict:
        code, display = self._type(event)
        resource: dict = {
            "type": {"system": DCM, "code": code, "display": display},
            "subtype": [self._subtype(event)],
            "action": ACTION_OF_KIND.get(event.kind, "E"),
            "recorded": instant(event.occurred_at),
            "outcome": OUTCOME_CODES.get(event.outcome, "8"),
            "outcomeDesc": event.outcome,
            "agent": self._agents(event),
            "source": {
                "observer": {"display": "Ambula"},
                "type": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                        "code": "4",
                        "display": "Application Server",
                    }
                ],
            },
        }
        entities = self._entities(event)
        if entities:
            resource["entity"] = entities
        return resource

    @staticmethod
    def _type(event: AuditEvent) -> tuple[str, str]:
        if event.kind in EVENT_TYPES:
            return EVENT_TYPES[event.kind]
        return PATIENT_RECORD if event.patient_id else APPLICATION

    @staticmethod
    def _subtype(event: AuditEvent) -> dict:
        coding = {"system": ACTION_SYSTEM, "code": event.action}
        known = ACTIONS.get(event.action)
        if known is not None:
            coding["display"] = known.description
        return coding

    def _agents(self, event: AuditEvent) -> list[dict]:
        user = event.actor
        provider = getattr(user, "provider_profile", None) if user is not None else None
        who = (
            reference("Practitioner", provider.pk, user.full_name)
            if provider is not None
            else {"display": event.actor_username or "Ambula (system)"}
        )
        agent: dict = {"who": who, "requestor": True}
        if event.actor_username:
            agent["altId"] = event.actor_username
        if event.actor_roles:
            agent["role"] = [{"text": role} for role in event.actor_roles.split(",")]
        if event.ip_address:
            agent["network"] = {"address": event.ip_address, "type": "2"}
        agents = [agent]
        client = self._client(event)
        if client:
            agents.append(
                {
                    "type": {
                        "coding": [
                            {
                                "system": "http://dicom.nema.org/resources/ontology/DCM",
                                "code": "110150",
                                "display": "Application",
                            }
                        ]
                    },
                    "who": {"identifier": {"system": CLIENT_SYSTEM, "value": client}},
                    "requestor": False,
                }
            )
        return agents

    @staticmethod
    def _client(event: AuditEvent) -> str:
        if event.category != "api" or "client" not in (event.changed_fields or []):
            return ""
        client = changes_of(event).get("client")
        return str(client) if client else ""

    @staticmethod
    def _entities(event: AuditEvent) -> list[dict]:
        found = []
        if event.patient_id:
            found.append(
                {
                    "what": reference("Patient", event.patient_id),
                    "type": {
                        "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                        "code": "1",
                        "display": "Person",
                    },
                    "role": {
                        "system": "http://terminology.hl7.org/CodeSystem/object-role",
                        "code": "1",
                        "display": "Patient",
                    },
                }
            )
        if event.target_type and event.target_id:
            kind = TARGET_TYPES.get(event.target_type)
            if kind == "Patient" and str(event.patient_id) == event.target_id:
                return found
            what = (
                reference(kind, event.target_id)
                if kind
                else {
                    "identifier": {
                        "system": f"urn:ambula:{event.target_type}",
                        "value": event.target_id,
                    }
                }
            )
            found.append(
                {
                    "what": what,
                    "type": {
                        "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                        "code": "2",
                        "display": "System Object",
                    },
                }
            )
        return found
