"""The resource types the API serves: one mapper each, registered by its module."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ambula.fhir.errors import FhirError

if TYPE_CHECKING:
    from ambula.fhir.mapper import ResourceMapper

_MAPPERS: dict[str, ResourceMapper] = {}


def register(mapper_class: type[ResourceMapper]) -> type[ResourceMapper]:
    _MAPPERS[mapper_class.resource_type] = mapper_class()
    return mapper_class


def mapper_for(resource_type: str) -> ResourceMapper:
    try:
        return _MAPPERS[resource_type]
    except KeyError:
        raise FhirError(
            404, "not-supported", f"This server does not serve {resource_type} resources."
        ) from None


def all_mappers() -> list[ResourceMapper]:
    return [_MAPPERS[name] for name in sorted(_MAPPERS)]
