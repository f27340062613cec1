"""AllergyIntolerance: the allergy list (US Core AllergyIntolerance).

The domain keeps the substance and the reaction as text, so `code` and the manifestation
are text-only concepts. Writes go through the allergy list's services: adding one, resolving
it, striking it out (entered in error, which reads as deleted).

The patient's "no known allergies" answer is not rendered as a resource: it is a flag on the
patient, not a row, so it would need an id, versions and a place in searches of its own.
"""

from __future__ import annotations

from typing import Any

from ambula.accounts.policy import Capability
from ambula.fhir.mapper import US_CORE, ResourceMapper, instant, reference
from ambula.fhir.registry import register
from ambula.fhir.resources.chart_common import (
    code_of,
    concept,
    including_deleted,
    invalid,
    same_patient,
    subject_patient,
    unchanged,
)
from ambula.fhir.search_params import ReferenceParam, TokenParam
from ambula.patients import allergies
from ambula.patients.models import Allergy

CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
SEVERITIES = ("mild", "moderate", "severe")

Status = Allergy.Status


@register
class AllergyIntoleranceMapper(ResourceMapper):
    resource_type = "AllergyIntolerance"
    model = Allergy
    profiles = (US_CORE + "us-core-allergyintolerance",)
    read_capability = Capability.VIEW_CLINICAL_CHART
    write_capability = Capability.EDIT_CLINICAL_CHART
    patient_path = "patient"
    search_params = {
        "patient": ReferenceParam(
            field="patient_id", targets=("Patient",), documentation="Whose allergy list."
        ),
        "clinical-status": TokenParam(
            field="status",
            system=CLINICAL,
            codes={"active": Status.ACTIVE, "resolved": Status.RESOLVED},
            documentation="active or resolved.",
        ),
    }
    sort_fields = {"date": "created_at"}
    element_paths = {
        "substance": "AllergyIntolerance.code",
        "reaction": "AllergyIntolerance.reaction[0].manifestation",
        "severity": "AllergyIntolerance.reaction[0].severity",
        "patient": "AllergyIntolerance.patient",
        # The one rule across fields: a substance is listed once while active.
        "__all__": "AllergyIntolerance.code",
    }

    def queryset(self):
        return Allergy.objects.exclude(status=Status.ENTERED_IN_ERROR).select_related("patient")

    def get(self, resource_id: str) -> Allergy:
        return including_deleted(Allergy.objects.select_related("patient"), self, resource_id)

    def is_deleted(self, obj: Allergy) -> bool:
        return obj.status == Status.ENTERED_IN_ERROR

    def to_fhir(self, allergy: Allergy) -> dict:
        struck = allergy.status == Status.ENTERED_IN_ERROR
        resource: dict[str, Any] = {}
        if not struck:
            resource["clinicalStatus"] = concept(CLINICAL, allergy.status)
        resource["verificationStatus"] = concept(
            VERIFICATION, "entered-in-error" if struck else "confirmed"
        )
        resource["code"] = {"text": allergy.substance}
        resource["patient"] = reference("Patient", allergy.patient_id)
        resource["recordedDate"] = instant(allergy.created_at)
        if allergy.reaction or allergy.severity in SEVERITIES:
            reaction: dict[str, Any] = {"manifestation": [_manifestation(allergy.reaction)]}
            if allergy.severity in SEVERITIES:
                reaction["severity"] = allergy.severity
            resource["reaction"] = [reaction]
        return resource

    # --- writing ---------------------------------------------------------------------------

    def create(self, actor: Any, resource: dict) -> Allergy:
        wanted = _incoming(resource)
        if wanted["status"] != Status.ACTIVE:
            raise invalid(
                "AllergyIntolerance.clinicalStatus", "A new allergy is recorded as active."
            )
        patient = subject_patient(resource.get("patient"), "AllergyIntolerance.patient")
        allergy = allergies.allergy_add(
            actor=actor,
            patient=patient,
            substance=wanted["substance"],
            reaction=wanted["reaction"],
            severity=wanted["severity"],
        )
        return self.get(str(allergy.pk))

    def update(self, actor: Any, obj: Allergy, resource: dict) -> Allergy:
        wanted = _incoming(resource)
        same_patient(resource.get("patient"), obj.patient_id, "AllergyIntolerance.patient")
        if wanted["status"] != Status.ENTERED_IN_ERROR:
            unchanged("AllergyIntolerance.code", wanted["substance"], obj.substance, "substance")
            unchanged(
                "AllergyIntolerance.reaction", wanted["reaction"], obj.reaction.strip(), "reaction"
            )
            unchanged("AllergyIntolerance.reaction", wanted["severity"], obj.severity, "severity")
        if wanted["status"] == obj.status:
            return obj
        if obj.status != Status.ACTIVE:
            raise invalid(
                "AllergyIntolerance.clinicalStatus",
                "A resolved allergy cannot become active again; add it anew.",
            )
        allergies.allergy_status_change(actor=actor, allergy=obj, status=wanted["status"])
        return self.get(str(obj.pk))

    def delete(self, actor: Any, obj: Allergy) -> None:
        allergies.allergy_status_change(actor=actor, allergy=obj, status=Status.ENTERED_IN_ERROR)


def _manifestation(text: str) -> dict:
    if text:
        return {"text": text}
    # Manifestation is required once there is a reaction; the severity alone was recorded.
    return {"extension": [{"url": DATA_ABSENT, "valueCode": "unknown"}]}


def _incoming(resource: dict) -> dict:
    """What an incoming AllergyIntolerance asks of the allergy list, each element checked."""
    code = resource.get("code") or {}
    substance = (code.get("text") or "").strip() or next(
        (c["display"].strip() for c in code.get("coding", []) if c.get("display")), ""
    )
    if not substance:
        raise invalid("AllergyIntolerance.code", "Name the substance in AllergyIntolerance.code.")
    clinical = code_of(
        resource.get("clinicalStatus"),
        CLINICAL,
        "AllergyIntolerance.clinicalStatus",
        ("active", "resolved"),
    )
    verification = code_of(
        resource.get("verificationStatus"),
        VERIFICATION,
        "AllergyIntolerance.verificationStatus",
        ("confirmed", "entered-in-error"),
    )
    reactions = resource.get("reaction") or []
    if len(reactions) > 1:
        raise invalid("AllergyIntolerance.reaction", "Record one reaction per allergy.")
    reaction = reactions[0] if reactions else {}
    manifestations = [
        item["text"].strip() for item in reaction.get("manifestation", []) if item.get("text")
    ]
    if verification == "entered-in-error":
        status = Status.ENTERED_IN_ERROR
    else:
        status = Status.RESOLVED if clinical == "resolved" else Status.ACTIVE
    return {
        "substance": substance,
        "reaction": ", ".join(manifestations),
        "severity": reaction.get("severity") or Allergy.Severity.UNKNOWN,
        "status": status,
    }
