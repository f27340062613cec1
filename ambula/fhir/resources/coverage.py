"""Coverage: a patient's insurance plans (US Core Coverage). Read-only.

The member ID is PHI, encrypted at rest and decrypted here: a payer or a clearinghouse needs
it. An ended plan is "cancelled" (its period says when it ended); one entered in error reads
as deleted. The payer is the Organization of the same UUID.
"""

from __future__ import annotations

from typing import Any

from ambula.accounts.policy import Capability
from ambula.fhir.mapper import US_CORE, ResourceMapper, reference
from ambula.fhir.registry import register
from ambula.fhir.resources.chart_common import concept, day_text, including_deleted
from ambula.fhir.search_params import ReferenceParam, TokenParam
from ambula.patients.models import Coverage

IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
COPAY = "http://terminology.hl7.org/CodeSystem/coverage-copay-type"

Status = Coverage.Status
Relationship = Coverage.Relationship

STATUSES = {Status.ACTIVE: "active", Status.ENDED: "cancelled"}
# X12 individual relationship codes to FHIR's subscriber relationships.
RELATIONSHIPS = {
    Relationship.SELF: ("self", "Self"),
    Relationship.SPOUSE: ("spouse", "Spouse"),
    Relationship.CHILD: ("child", "Child"),
    Relationship.OTHER: ("other", "Other"),
}


@register
class CoverageMapper(ResourceMapper):
    resource_type = "Coverage"
    model = Coverage
    profiles = (US_CORE + "us-core-coverage",)
    read_capability = Capability.VIEW_DEMOGRAPHICS
    patient_path = "patient"
    search_params = {
        "patient": ReferenceParam(
            field="patient_id", targets=("Patient",), documentation="The covered patient."
        ),
        "beneficiary": ReferenceParam(field="patient_id", targets=("Patient",)),
        "payor": ReferenceParam(
            field="payer_id", targets=("Organization",), documentation="The paying insurer."
        ),
        "status": TokenParam(
            field="status",
            codes={code: status for status, code in STATUSES.items()},
            documentation="active, or cancelled for an ended plan.",
        ),
    }
    sort_fields = {"order": "priority"}
    default_order = ("priority", "pk")

    def queryset(self):
        return Coverage.objects.exclude(status=Status.ENTERED_IN_ERROR).select_related(
            "patient", "payer"
        )

    def get(self, resource_id: str) -> Coverage:
        return including_deleted(
            Coverage.objects.select_related("patient", "payer"), self, resource_id
        )

    def is_deleted(self, obj: Coverage) -> bool:
        return obj.status == Status.ENTERED_IN_ERROR

    def to_fhir(self, coverage: Coverage) -> dict:
        member_id = coverage.member_id
        resource: dict[str, Any] = {
            "identifier": [
                {
                    "type": concept(IDENTIFIER_TYPE, "MB", "Member Number"),
                    "value": member_id,
                }
            ],
            "status": STATUSES.get(coverage.status, "entered-in-error"),
            "subscriberId": member_id,
            "beneficiary": reference("Patient", coverage.patient_id),
        }
        code, display = RELATIONSHIPS[coverage.relationship]
        resource["relationship"] = concept(RELATIONSHIP, code, display)
        period = {}
        if coverage.effective_from:
            period["start"] = day_text(coverage.effective_from)
        if coverage.effective_to:
            period["end"] = day_text(coverage.effective_to)
        if period:
            resource["period"] = period
        resource["payor"] = [reference("Organization", coverage.payer_id, coverage.payer.name)]
        classes = []
        if coverage.group_number:
            classes.append(
                {"type": concept(CLASS, "group", "Group"), "value": coverage.group_number}
            )
        if coverage.plan_name:
            classes.append(
                {
                    "type": concept(CLASS, "plan", "Plan"),
                    "value": coverage.plan_name,
                    "name": coverage.plan_name,
                }
            )
        if classes:
            resource["class"] = classes
        resource["order"] = coverage.priority
        if coverage.copay is not None:
            resource["costToBeneficiary"] = [
                {
                    "type": concept(COPAY, "copay", "Copay Amount"),
                    "valueMoney": {"value": float(coverage.copay), "currency": "USD"},
                }
            ]
        return resource
