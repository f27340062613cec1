"""Schedule: one per scheduling provider, whose id is the provider's id.

Its actors are the practitioner and the locations where their weekly template has blocks;
its service types are the appointment types those blocks allow. Read-only: the template is
set up in the app. The free times themselves are Slot resources (slot.py). No
planningHorizon: it would move with the clock and make a new version of every Schedule daily.
"""

from __future__ import annotations

from django.db.models import Prefetch, Q

from ambula.accounts.policy import Capability
from ambula.fhir.mapper import ResourceMapper, reference
from ambula.fhir.registry import register
from ambula.fhir.search_params import FunctionParam, TokenParam, as_uuid, reference_key
from ambula.scheduling.models import AppointmentType, Provider, ScheduleBlock

APPOINTMENT_TYPE_SYSTEM = "urn:ambula:appointment-type"
TAXONOMY_SYSTEM = "http://nucc.org/provider-taxonomy"


def appointment_type_concept(appointment_type: AppointmentType) -> dict:
    return {
        "coding": [
            {
                "system": APPOINTMENT_TYPE_SYSTEM,
                "code": str(appointment_type.pk),
                "display": appointment_type.name,
            }
        ],
        "text": appointment_type.name,
    }


def _actor(name: str, modifier: str, value: str) -> Q:
    kind, key = reference_key(value, ("Practitioner", "Location"))
    kind = kind or modifier
    condition = Q(pk__in=[])
    if kind in ("", "Practitioner"):
        condition |= Q(pk=key) if as_uuid(key) is not None else Q(pk__in=[])
    if kind in ("", "Location") and as_uuid(key) is not None:
        condition |= Q(pk__in=ScheduleBlock.objects.filter(location_id=key).values("provider_id"))
    return condition


@register
class ScheduleMapper(ResourceMapper):
    resource_type = "Schedule"
    model = Provider
    read_capability = Capability.VIEW_SCHEDULE
    patient_path = None
    search_params = {
        "actor": FunctionParam(
            function=_actor,
            param_type="reference",
            accepted_modifiers=("Practitioner", "Location"),
            documentation="The practitioner (Practitioner/<provider id>) or a location where "
            "they have template blocks.",
        ),
        "active": TokenParam(
            field="is_active",
            codes={"true": True, "false": False},
            documentation="Whether the provider is taking appointments.",
        ),
    }
    default_order = ("pk",)

    def queryset(self):
        return Provider.objects.select_related("user").prefetch_related(
            Prefetch(
                "blocks",
                queryset=ScheduleBlock.objects.select_related("location")
                .prefetch_related("appointment_types")
                .order_by("location__name", "weekday", "starts_at"),
            )
        )

    def versioned_by(self):
        return {
            Provider: lambda provider: provider.pk,
            ScheduleBlock: lambda block: block.provider_id,
        }

    def to_fhir(self, provider: Provider) -> dict:
        blocks = list(provider.blocks.all())
        locations = {block.location_id: block.location for block in blocks}
        actors = [reference("Practitioner", provider.pk, provider.user.full_name)]
        actors += [
            reference("Location", location.pk, location.name)
            for location in sorted(locations.values(), key=lambda found: (found.name, found.pk))
        ]
        resource: dict = {
            "active": provider.is_active,
            "actor": actors,
            "specialty": [
                {
                    "coding": [{"system": TAXONOMY_SYSTEM, "code": provider.taxonomy_code}],
                    "text": provider.specialty,
                }
            ],
        }
        types = self._offered_types(blocks)
        if types:
            resource["serviceType"] = [appointment_type_concept(found) for found in types]
        resource["comment"] = f"{provider.user.full_name}, {provider.credentials}"
        return resource

    def _offered_types(self, blocks: list[ScheduleBlock]) -> list[AppointmentType]:
        if not blocks:
            return []
        # A block that lists no types allows every type.
        if any(not block.appointment_types.all() for block in blocks):
            return list(AppointmentType.objects.filter(is_active=True).order_by("name", "pk"))
        found = {
            kind.pk: kind
            for block in blocks
            for kind in block.appointment_types.all()
            if kind.is_active
        }
        return sorted(found.values(), key=lambda kind: (kind.name, kind.pk))
