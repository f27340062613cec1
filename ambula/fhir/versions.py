"""Resource versions: the numbers behind meta.versionId, ETag, vread and _history."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from django.db.models.signals import post_save

from ambula.fhir.errors import FhirError
from ambula.fhir.models import ResourceVersion

if TYPE_CHECKING:
    from ambula.fhir.mapper import ResourceMapper


RACES = 50


def digest_of(resource: dict) -> str:
    return hashlib.sha256(json.dumps(resource, sort_keys=True).encode()).hexdigest()


def latest(resource_type: str, resource_id: str) -> ResourceVersion | None:
    return (
        ResourceVersion.objects.filter(resource_type=resource_type, resource_id=resource_id)
        .defer("content")
        .order_by("-version")
        .first()
    )


def latest_of(resource_type: str, resource_ids: list[str]) -> dict[str, ResourceVersion]:
    """The latest version of each of these resources, in one query."""
    if not resource_ids:
        return {}
    newest = (
        ResourceVersion.objects.filter(
            resource_type=resource_type, resource_id=OuterRef("resource_id")
        )
        .order_by("-version")
        .values("version")[:1]
    )
    rows = (
        ResourceVersion.objects.filter(resource_type=resource_type, resource_id__in=resource_ids)
        .filter(version=Subquery(newest))
        .defer("content")
    )
    return {row.resource_id: row for row in rows}


def stamp(
    resource_type: str,
    resource_id: str,
    resource: dict | None,
    recorded_at: dt.datetime,
    *,
    deleted: bool = False,
) -> ResourceVersion:
    """The version that holds this rendering: the latest if it matches, else a new one."""
    digest = digest_of(resource) if resource is not None else "deleted"
    # Each lost race means another writer recorded a version, so this ends.
    for _attempt in range(RACES):
        current = latest(resource_type, resource_id)
        if current is not None and current.digest == digest and current.deleted == deleted:
            return current
        try:
            with transaction.atomic():
                return ResourceVersion.objects.create(
                    resource_type=resource_type,
                    resource_id=resource_id,
                    version=(current.version + 1) if current else 1,
                    recorded_at=recorded_at,
                    deleted=deleted,
                    digest=digest,
                    content=resource,
                )
        except IntegrityError:
            continue  # another writer took that number at the same moment: look again
    raise RuntimeError(f"Could not record a version of {resource_type}/{resource_id}.")


def history(resource_type: str, resource_id: str):
    return ResourceVersion.objects.filter(
        resource_type=resource_type, resource_id=resource_id
    ).order_by("-version")


def _record_after_commit(mapper: ResourceMapper, pk) -> None:
    # After the commit, so that a record saved several times in one transaction gets one
    # version (stamp() finds the later renderings identical) and a rolled-back change none.
    def record() -> None:
        try:
            obj = mapper.get(str(pk))
        except FhirError:
            return  # gone already, or not shown through the API
        if mapper.is_deleted(obj):
            stamp(mapper.resource_type, str(pk), None, mapper.last_updated(obj), deleted=True)
        else:
            mapper.stamp(obj)

    # Robust: the change has committed; a failure here must not fail it (the next read
    # records the version instead).
    transaction.on_commit(record, robust=True)


def connect_signals() -> None:
    from ambula.fhir.registry import all_mappers

    for mapper in all_mappers():
        for model, owner in mapper.versioned_by().items():

            def changed(sender, instance, *, _mapper=mapper, _owner=owner, **kwargs):
                pk = _owner(instance)
                if pk is not None:
                    _record_after_commit(_mapper, pk)

            post_save.connect(changed, sender=model, weak=False, dispatch_uid=None)
