"""Organization (US Core Organization): the practice itself and the payers it bills.

Two tables behind one type: the practice (one row, type "prov") and the payer directory
(type "pay"). Both have UUID keys, so an id names one row of one table. Read-only. A search
lists the practice first, then the payers.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from ambula.accounts.policy import Capability
from ambula.core.models import Practice
from ambula.fhir import paging, search
from ambula.fhir.errors import not_found
from ambula.fhir.mapper import US_CORE, ResourceMapper
from ambula.fhir.registry import register
from ambula.fhir.search_params import DateParam, FunctionParam, IdParam, StringParam, TokenParam
from ambula.patients.models import Payer

PAYER_ID_SYSTEM = "urn:ambula:payer-id"
TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/organization-type"
TYPES = {"prov": "Healthcare Provider", "pay": "Payer"}


def _type_of(model) -> str:
    return "pay" if model is Payer else "prov"


def _type(model):
    def condition(name: str, modifier: str, value: str) -> Q:
        system, bar, code = value.rpartition("|")
        if bar and system not in ("", TYPE_SYSTEM):
            return Q(pk__in=[])
        return Q() if code == _type_of(model) else Q(pk__in=[])

    return condition


def _payer_identifier(name: str, modifier: str, value: str) -> Q:
    system, bar, code = value.rpartition("|")
    if bar and system not in ("", PAYER_ID_SYSTEM):
        return Q(pk__in=[])
    return Q(payer_id__iexact=code.strip())


def _nothing(name: str, modifier: str, value: str) -> Q:
    return Q(pk__in=[])


_COMMON = {
    "_id": IdParam(),
    "_lastUpdated": DateParam(field="updated_at"),
    "name": StringParam(fields=("name",)),
}
# What each table answers for each parameter; the practice keeps no identifiers or address.
PARAMS = {
    Practice: _COMMON
    | {
        "identifier": FunctionParam(function=_nothing),
        "type": FunctionParam(function=_type(Practice)),
        "active": TokenParam(field="singleton", codes={"true": True, "false": False}),
        "address": FunctionParam(function=_nothing),
    },
    Payer: _COMMON
    | {
        "identifier": FunctionParam(function=_payer_identifier),
        "type": FunctionParam(function=_type(Payer)),
        "active": TokenParam(field="active", codes={"true": True, "false": False}),
        "address": FunctionParam(
            function=lambda name, modifier, value: (
                Q(address_line__istartswith=value)
                | Q(city__istartswith=value)
                | Q(state__iexact=value)
                | Q(postal_code__startswith=value)
            )
        ),
    },
}


def _practice(obj: Practice) -> dict:
    return {"active": True, "name": obj.name}


def _payer(obj: Payer) -> dict:
    resource: dict[str, Any] = {
        "identifier": [{"system": PAYER_ID_SYSTEM, "value": obj.payer_id}],
        "active": obj.active,
        "name": obj.name,
    }
    if obj.phone:
        resource["telecom"] = [{"system": "phone", "value": obj.phone, "use": "work"}]
    address = {
        "line": [obj.address_line] if obj.address_line else None,
        "city": obj.city,
        "state": obj.state,
        "postalCode": obj.postal_code,
    }
    address = {key: value for key, value in address.items() if value}
    if address:
        resource["address"] = [{"use": "work", **address, "country": "US"}]
    return resource


@register
class OrganizationMapper(ResourceMapper):
    resource_type = "Organization"
    model = None
    profiles = (US_CORE + "us-core-organization",)
    read_capability = Capability.VIEW_SCHEDULE
    search_params = {
        "name": StringParam(fields=("name",), documentation="The start of the name."),
        "identifier": TokenParam(documentation=f"The payer ID ({PAYER_ID_SYSTEM}|60054)."),
        "type": TokenParam(
            system=TYPE_SYSTEM, documentation="prov (the practice) | pay (a payer)."
        ),
        "active": TokenParam(documentation="true | false"),
        "address": StringParam(
            documentation="The start of the payer's street, city, state or ZIP code."
        ),
    }
    sort_fields = {"name": "name"}

    def get(self, resource_id: str) -> Any:
        for model in (Practice, Payer):
            try:
                return model.objects.get(pk=resource_id)
            except (model.DoesNotExist, ValueError, ValidationError):
                continue
        raise not_found(self.resource_type, resource_id)

    def to_fhir(self, obj: Any) -> dict:
        kind = _type_of(type(obj))
        resource = _payer(obj) if kind == "pay" else _practice(obj)
        resource["type"] = [
            {"coding": [{"system": TYPE_SYSTEM, "code": kind, "display": TYPES[kind]}]}
        ]
        return resource

    def versioned_by(self):
        return {Practice: lambda practice: practice.pk, Payer: lambda payer: payer.pk}

    def _matching(self, model, request) -> QuerySet:
        queryset = model.objects.all()
        for name, modifier, values in request.filters:
            queryset = PARAMS[model][name].apply(queryset, name, modifier, values)
        return paging.order_by(queryset, search.order_fields(self, request))

    def find(self, principal, grant, request) -> tuple[list, int | None]:
        practices = list(self._matching(Practice, request)[:1])
        payers = self._matching(Payer, request)
        start, end = request.offset, request.offset + request.count
        page = practices[start:end]
        page += list(payers[max(start - len(practices), 0) : max(end - len(practices), 0)])
        total = len(practices) + payers.count() if request.total else None
        return page, total
