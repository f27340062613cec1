"""Structural validation of resources with the fhir.resources R4B models.

Everything the API takes in passes through `check()` before a mapper sees it, and the tests
pass everything the API emits through it too. Value sets the models do not know (gender,
statuses) are the mappers' to check, with their element paths.
"""

from __future__ import annotations

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from ambula.fhir.errors import FhirError, issue


def check(resource: dict, resource_type: str | None = None) -> None:
    """422 with one issue per fault, each naming its element, unless the resource is valid."""
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise FhirError(
            400,
            "structure",
            "The body must be a FHIR resource (a JSON object with a resourceType).",
        )
    kind = resource["resourceType"]
    if resource_type is not None and kind != resource_type:
        raise FhirError(
            400,
            "invalid",
            f"The body is a {kind}, but this URL takes a {resource_type}.",
            expression=["resourceType"],
        )
    nulls = list(_nulls(resource, kind))
    if nulls:
        raise FhirError(
            422,
            "structure",
            "",
            issues=[
                issue("structure", "FHIR JSON has no nulls: leave the element out.", [path])
                for path in nulls[:20]
            ],
        )
    try:
        model = get_fhir_model_class(kind)
    except (KeyError, ValueError):
        raise FhirError(400, "not-supported", f"{kind} is not a FHIR R4 resource type.") from None
    try:
        model.model_validate(resource)
    except ValidationError as error:
        raise FhirError(
            422,
            "structure",
            "",
            issues=[
                issue("structure", fault["msg"], [_path(kind, fault["loc"])])
                for fault in error.errors()
            ],
        ) from None


def _nulls(value, path: str):
    """Where the JSON holds a null (allowed only inside the `_element` arrays of primitives)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if item is None:
                yield f"{path}.{key}"
            elif not key.startswith("_"):
                yield from _nulls(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if item is None:
                yield f"{path}[{index}]"
            else:
                yield from _nulls(item, f"{path}[{index}]")


def _path(kind: str, location: tuple) -> str:
    path = kind
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path
