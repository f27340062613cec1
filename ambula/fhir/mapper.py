"""The base of every resource mapper: how one FHIR resource type maps onto the domain.

A mapper renders domain records as FHIR (`to_fhir`), finds them (`queryset`, `search_params`)
and, where the domain allows it, turns incoming resources into calls of the owning app's
services (`create`, `update`, `delete`). It never writes a model itself. The interaction
engine (interactions.py) does everything common: scopes and the permission policy, the
patient compartment and restricted records, versions, audit and errors.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.db import models

from ambula.accounts.policy import Capability
from ambula.fhir import versions
from ambula.fhir.errors import FhirError, from_validation, not_found
from ambula.fhir.search_params import SearchParam

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"


class ResourceMapper:
    resource_type: ClassVar[str]
    model: ClassVar[type[models.Model] | None] = None
    profiles: ClassVar[tuple[str, ...]] = ()
    # Reading needs read_capability; writing needs write_capability too (None: read-only).
    read_capability: ClassVar[Capability]
    write_capability: ClassVar[Capability | None] = None
    # The ORM path from a record to its patient: "" for Patient itself, "patient" for records
    # about one patient, None for resources outside the patient compartment.
    patient_path: ClassVar[str | None] = None
    search_params: ClassVar[dict[str, SearchParam]] = {}
    # _sort names (without "-") to ORM fields; _lastUpdated and _id are always there.
    sort_fields: ClassVar[dict[str, str]] = {}
    default_order: ClassVar[tuple[str, ...]] = ("pk",)
    # Reference search parameters of this type that _include may follow ("patient" lets a
    # search ask for _include=Appointment:patient), and the Type:param pairs of other types
    # that _revinclude may bring in.
    includes: ClassVar[tuple[str, ...]] = ()
    revincludes: ClassVar[tuple[str, ...]] = ()
    # Domain field names to FHIRPath, for the element paths of a 422.
    element_paths: ClassVar[dict[str, str]] = {}
    versioned: ClassVar[bool] = True
    # Whether a patient-scoped token may read this type although it is not in the patient
    # compartment: yes for directories (practitioners, locations), no for what spans patients.
    open_to_patient_scopes: ClassVar[bool] = True
    # The parameters every type has (search.COMMON_PARAMS) that this type supports.
    common_params: ClassVar[tuple[str, ...]] = ("_id", "_lastUpdated")
    # The field _lastUpdated searches and sorts on.
    last_updated_field: ClassVar[str] = "updated_at"

    # --- reading ---------------------------------------------------------------------------

    def queryset(self) -> models.QuerySet:
        """The records searches find, with what to_fhir needs joined in.

        Records the API shows as deleted (`is_deleted`) are left out here, and `get()` still
        finds them, so that a search never lists them and a read answers 410.
        """
        return self.model._default_manager.all()

    def visible(self, user: Any, queryset: models.QuerySet) -> models.QuerySet:
        """Narrow to what this user may see beyond role and compartment (e.g. by category).

        A record left out is a 404 to a read, as if it did not exist.
        """
        return queryset

    def get(self, resource_id: str) -> Any:
        try:
            return self.queryset().get(pk=resource_id)
        except (self.model.DoesNotExist, ValueError, ValidationError):
            raise not_found(self.resource_type, resource_id) from None

    def to_fhir(self, obj: Any) -> dict:
        """The resource's elements, without resourceType, id and meta (the engine adds those)."""
        raise NotImplementedError

    def resource_id(self, obj: Any) -> str:
        return str(obj.pk)

    def is_deleted(self, obj: Any) -> bool:
        """Records the domain keeps but the API shows as deleted (410), e.g. entered in error."""
        return False

    def last_updated(self, obj: Any) -> dt.datetime:
        return getattr(obj, self.last_updated_field)

    def patient_id_of(self, obj: Any):
        if self.patient_path is None:
            return None
        if self.patient_path == "":
            return obj.pk
        return getattr(obj, f"{self.patient_path}_id")

    def versioned_by(self) -> dict[type[models.Model], Any]:
        """The models whose saves change this resource, with how to find its record's key."""
        if self.model is None or not self.versioned:
            return {}
        return {self.model: lambda instance: instance.pk}

    # --- writing: override what the domain allows --------------------------------------------

    def create(self, actor: Any, resource: dict) -> Any:
        raise FhirError(405, "not-supported", f"{self.resource_type} cannot be created here.")

    def update(self, actor: Any, obj: Any, resource: dict) -> Any:
        raise FhirError(405, "not-supported", f"{self.resource_type} cannot be updated here.")

    def delete(self, actor: Any, obj: Any) -> None:
        raise FhirError(405, "not-supported", f"{self.resource_type} cannot be deleted here.")

    def invalid(self, error: ValidationError) -> FhirError:
        return from_validation(error, self.element_paths, self.resource_type)

    # --- what the engine derives -------------------------------------------------------------

    def interactions(self) -> list[str]:
        found = ["read", "search-type"]
        if self.versioned:
            found += ["vread", "history-instance"]
        for name in ("create", "update", "delete"):
            if getattr(type(self), name) is not getattr(ResourceMapper, name):
                found.append(name)
        return found

    @property
    def narrows_by_user(self) -> bool:
        return self.model is not None and type(self).visible is not ResourceMapper.visible

    def render(self, obj: Any) -> dict:
        """The whole resource, with meta.versionId and meta.lastUpdated of its version."""
        return self.render_many([obj])[0]

    def render_many(self, objs: list) -> list[dict]:
        """Several records, with one query for their latest versions (a search's page)."""
        resources = [self._bare(obj) for obj in objs]
        if not self.versioned:
            return [self._unversioned(resource) for resource in resources]
        known = versions.latest_of(self.resource_type, [resource["id"] for resource in resources])
        found = []
        for obj, resource in zip(objs, resources, strict=True):
            version = known.get(resource["id"])
            if version is None or version.deleted or version.digest != versions.digest_of(resource):
                version = self._stamped(obj, resource)
            found.append(with_meta(resource, version, self.profiles))
        return found

    def stamp(self, obj: Any) -> versions.ResourceVersion:
        """The version that holds the record as it is now (recorded if it is new)."""
        return self._stamped(obj, self._bare(obj))

    def _bare(self, obj: Any) -> dict:
        return {
            "resourceType": self.resource_type,
            "id": self.resource_id(obj),
            **self.to_fhir(obj),
        }

    def _stamped(self, obj: Any, resource: dict) -> versions.ResourceVersion:
        return versions.stamp(self.resource_type, resource["id"], resource, self.last_updated(obj))

    def _unversioned(self, resource: dict) -> dict:
        if self.profiles:
            resource["meta"] = {"profile": list(self.profiles)}
        return resource


def with_meta(resource: dict, version, profiles: tuple[str, ...]) -> dict:
    meta = {"versionId": str(version.version), "lastUpdated": instant(version.recorded_at)}
    if profiles:
        meta["profile"] = list(profiles)
    return {"resourceType": resource["resourceType"], "id": resource["id"], "meta": meta} | {
        key: value for key, value in resource.items() if key not in ("resourceType", "id")
    }


def instant(moment: dt.datetime) -> str:
    """A FHIR instant: UTC, seconds (and milliseconds when there are any), with Z."""
    moment = moment.astimezone(dt.UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def reference(resource_type: str, key: Any, display: str | None = None) -> dict:
    found = {"reference": f"{resource_type}/{key}"}
    if display:
        found["display"] = display
    return found


def reference_id(value: Any, resource_type: str, path: str) -> str:
    """The id a `{"reference": "Type/id"}` points to; 422 naming the element otherwise."""
    text = value.get("reference", "") if isinstance(value, dict) else ""
    kind, slash, key = text.rstrip("/").rpartition("/")
    if not slash or kind.rpartition("/")[2] != resource_type or not key:
        raise FhirError(
            422, "invalid", f"{path} must be a reference to a {resource_type}.", expression=[path]
        )
    return key
