"""PractitionerRole (US Core PractitionerRole): one per Provider, at the practice.

Its id is the Provider's (a PractitionerRole and a Practitioner may share an id: the types
differ). Locations are where the provider has current schedule blocks. Read-only.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, Q, Subquery
from django.utils.timezone import localdate

from ambula.accounts.policy import Capability
from ambula.core.models import Practice
from ambula.fhir.mapper import US_CORE, ResourceMapper, reference
from ambula.fhir.registry import register
from ambula.fhir.search_params import ReferenceParam, TokenParam
from ambula.scheduling.models import Provider, ScheduleBlock

TAXONOMY_SYSTEM = "http://nucc.org/provider-taxonomy"
ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/practitioner-role"
# Credentials to FHIR's practitioner-role codes, where one clearly applies.
ROLES = {
    "MD": ("doctor", "Doctor"),
    "DO": ("doctor", "Doctor"),
    "NP": ("nurse", "Nurse"),
    "RN": ("nurse", "Nurse"),
    "CNM": ("nurse", "Nurse"),
    "PHARMD": ("pharmacist", "Pharmacist"),
}


def practice_id_subquery() -> Subquery:
    """The practice's id as an annotation: one row, read with the records that point to it."""
    return Subquery(Practice.objects.order_by().values("pk")[:1])


def _current_blocks() -> Prefetch:
    today = localdate()
    return Prefetch(
        "blocks",
        queryset=ScheduleBlock.objects.filter(
            Q(valid_until__isnull=True) | Q(valid_until__gte=today)
        ).only("pk", "provider_id", "location_id", "valid_from"),
        to_attr="current_blocks",
    )


@register
class PractitionerRoleMapper(ResourceMapper):
    resource_type = "PractitionerRole"
    model = Provider
    profiles = (US_CORE + "us-core-practitionerrole",)
    read_capability = Capability.VIEW_SCHEDULE
    search_params = {
        # A role and its practitioner are one Provider row under two resource types.
        "practitioner": ReferenceParam(
            field="pk",
            targets=("Practitioner",),
            documentation="The practitioner in this role.",
        ),
        "specialty": TokenParam(
            field="taxonomy_code",
            system=TAXONOMY_SYSTEM,
            documentation=f"NUCC taxonomy code ({TAXONOMY_SYSTEM}).",
        ),
        "active": TokenParam(
            field="is_active", codes={"true": True, "false": False}, documentation="true | false"
        ),
    }
    includes = ("practitioner",)

    def queryset(self):
        return (
            Provider.objects.select_related("user")
            .annotate(practice_id=practice_id_subquery())
            .prefetch_related(_current_blocks())
        )

    def versioned_by(self):
        return {
            Provider: lambda provider: provider.pk,
            ScheduleBlock: lambda block: block.provider_id,
        }

    def to_fhir(self, obj: Provider) -> dict:
        resource: dict[str, Any] = {
            "active": obj.is_active,
            "practitioner": reference("Practitioner", obj.pk, obj.user.full_name),
        }
        if obj.practice_id:
            resource["organization"] = reference("Organization", obj.practice_id)
        code: dict[str, Any] = {"text": obj.credentials}
        if role := ROLES.get(obj.credentials.replace(".", "").upper()):
            code["coding"] = [{"system": ROLE_SYSTEM, "code": role[0], "display": role[1]}]
        resource["code"] = [code]
        resource["specialty"] = [
            {
                "coding": [
                    {"system": TAXONOMY_SYSTEM, "code": obj.taxonomy_code, "display": obj.specialty}
                ],
                "text": obj.specialty,
            }
        ]
        blocks = getattr(obj, "current_blocks", None)
        if blocks is None:
            blocks = obj.blocks.filter(
                Q(valid_until__isnull=True) | Q(valid_until__gte=localdate())
            ).only("location_id")
        locations = sorted({str(block.location_id) for block in blocks})
        if locations:
            resource["location"] = [reference("Location", key) for key in locations]
        return resource
