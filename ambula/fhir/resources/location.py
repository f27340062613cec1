"""Location (US Core Location): a site of the practice, with its opening hours. Read-only."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from ambula.accounts.policy import Capability
from ambula.fhir.mapper import US_CORE, ResourceMapper, reference
from ambula.fhir.registry import register
from ambula.fhir.resources.practitioner_role import practice_id_subquery
from ambula.fhir.search_params import FunctionParam, StringParam, TokenParam
from ambula.scheduling.models import Location, LocationHours

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # ScheduleBlock.Weekday: 0 = Monday


def _address(name: str, modifier: str, value: str) -> Q:
    lookup = {"exact": "exact", "contains": "icontains"}.get(modifier, "istartswith")
    condition = Q()
    for field in ("address_line", "city", "state", "postal_code"):
        condition |= Q(**{f"{field}__{lookup}": value})
    return condition


def _hours(location: Location) -> list[dict]:
    """Days with the same hours grouped together, as hoursOfOperation reads best."""
    grouped: dict[tuple, list[int]] = {}
    for row in location.hours.all():
        grouped.setdefault((row.opens, row.closes), []).append(row.weekday)
    return [
        {
            "daysOfWeek": [DAYS[day] for day in sorted(days)],
            "openingTime": opens.strftime("%H:%M:%S"),
            "closingTime": closes.strftime("%H:%M:%S"),
        }
        for (opens, closes), days in sorted(grouped.items(), key=lambda item: min(item[1]))
    ]


@register
class LocationMapper(ResourceMapper):
    resource_type = "Location"
    model = Location
    profiles = (US_CORE + "us-core-location",)
    read_capability = Capability.VIEW_SCHEDULE
    search_params = {
        "name": StringParam(fields=("name",), documentation="The start of the name."),
        "address": FunctionParam(
            function=_address,
            param_type="string",
            accepted_modifiers=("exact", "contains"),
            documentation="The start of the street, city, state or ZIP code.",
        ),
        "address-city": StringParam(fields=("city",), documentation="The city."),
        "address-state": StringParam(fields=("state",), documentation="The state (IL)."),
        "address-postalcode": StringParam(fields=("postal_code",), documentation="ZIP code."),
        "status": TokenParam(
            field="is_active",
            codes={"active": True, "inactive": False},
            documentation="active | inactive",
        ),
    }
    sort_fields = {"name": "name"}
    default_order = ("name",)

    def queryset(self):
        return Location.objects.annotate(practice_id=practice_id_subquery()).prefetch_related(
            "hours"
        )

    def versioned_by(self):
        return {
            Location: lambda location: location.pk,
            LocationHours: lambda hours: hours.location_id,
        }

    def to_fhir(self, obj: Location) -> dict:
        resource: dict[str, Any] = {
            "status": "active" if obj.is_active else "inactive",
            "name": obj.name,
            "address": {
                "use": "work",
                "line": [obj.address_line],
                "city": obj.city,
                "state": obj.state,
                "postalCode": obj.postal_code,
                "country": "US",
            },
        }
        if obj.phone:
            resource["telecom"] = [{"system": "phone", "value": obj.phone, "use": "work"}]
        if obj.practice_id:
            resource["managingOrganization"] = reference("Organization", obj.practice_id)
        if hours := _hours(obj):
            resource["hoursOfOperation"] = hours
        return resource
