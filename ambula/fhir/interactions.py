"""The FHIR interactions, independent of HTTP: the views and the Bundle processor call these.

Each takes an `Exchange` (who asks, the server's base URL, their Prefer choices) and returns a
`Reply`; a refusal is a FhirError. Every interaction is audited with the client and the user.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import QueryDict
from django.utils.timezone import now

from ambula.audit.services import record
from ambula.core.errors import ApplicationError
from ambula.fhir import paging, search, versions
from ambula.fhir.access import check_record, grant_for, narrowed
from ambula.fhir.errors import FhirError, not_found, unprocessable
from ambula.fhir.mapper import ResourceMapper, instant, with_meta
from ambula.fhir.registry import all_mappers, mapper_for
from ambula.fhir.validation import check
from ambula.smart.principal import Principal


@dataclass
class Exchange:
    principal: Principal
    base: str  # the absolute base URL, without a trailing slash
    strict: bool = False  # Prefer: handling=strict
    prefer_return: str = "representation"


@dataclass
class Reply:
    status: int
    body: dict | None
    headers: dict[str, str] = field(default_factory=dict)


def _audit(exchange: Exchange, action: str, *, patient_id=None, **details) -> None:
    record(
        actor=exchange.principal.user,
        action=action,
        category="api",
        patient_id=patient_id,
        changes={"client": exchange.principal.client_id, **details},
    )


def _version_headers(resource: dict) -> dict[str, str]:
    meta = resource.get("meta", {})
    if "versionId" not in meta:
        return {}
    return {"ETag": f'W/"{meta["versionId"]}"', "Last-Modified": _http_date(meta["lastUpdated"])}


def _http_date(fhir_instant: str) -> str:
    moment = dt.datetime.fromisoformat(fhir_instant.replace("Z", "+00:00"))
    return format_datetime(moment, usegmt=True)


def _gone_or_missing(mapper: ResourceMapper, resource_id: str) -> FhirError:
    last = versions.latest(mapper.resource_type, resource_id)
    if last is not None and last.deleted:
        return FhirError(410, "deleted", f"{mapper.resource_type}/{resource_id} was deleted.")
    return not_found(mapper.resource_type, resource_id)


def _open(exchange: Exchange, mapper: ResourceMapper, resource_id: str, letter: str):
    """The record behind Type/id that this exchange may see, or the right error."""
    grant = grant_for(exchange.principal, mapper, letter)
    try:
        obj = mapper.get(resource_id)
    except FhirError as error:
        if error.status == 404:
            raise _gone_or_missing(mapper, resource_id) from None
        raise
    check_record(exchange.principal, mapper, grant, obj)
    if mapper.is_deleted(obj):
        raise FhirError(410, "deleted", f"{mapper.resource_type}/{resource_id} was deleted.")
    return obj, grant


def read(exchange: Exchange, resource_type: str, resource_id: str) -> Reply:
    mapper = mapper_for(resource_type)
    obj, _grant = _open(exchange, mapper, resource_id, "r")
    resource = mapper.render(obj)
    _audit(
        exchange,
        "fhir.read",
        patient_id=mapper.patient_id_of(obj),
        resource=f"{resource_type}/{resource_id}",
    )
    return Reply(200, resource, _version_headers(resource))


def vread(exchange: Exchange, resource_type: str, resource_id: str, version_id: str) -> Reply:
    mapper = mapper_for(resource_type)
    if not mapper.versioned:
        raise FhirError(405, "not-supported", f"{resource_type} keeps no versions.")
    obj, _grant = _open(exchange, mapper, resource_id, "r")
    mapper.render(obj)  # a change that bypassed the signals becomes a version first
    stored = versions.history(resource_type, resource_id).filter(version=_number(version_id))
    version = stored.first()
    if version is None:
        raise FhirError(
            404, "not-found", f"{resource_type}/{resource_id} has no version {version_id}."
        )
    if version.deleted:
        raise FhirError(410, "deleted", f"Version {version_id} records the deletion.")
    resource = with_meta(version.content, version, mapper.profiles)
    _audit(
        exchange,
        "fhir.read",
        patient_id=mapper.patient_id_of(obj),
        resource=f"{resource_type}/{resource_id}/_history/{version_id}",
    )
    return Reply(200, resource, _version_headers(resource))


def _number(version_id: str) -> int:
    """The version number, or 0 (no such version) for anything that is not a plausible one."""
    return int(version_id) if version_id.isdigit() and len(version_id) <= 9 else 0


def history(exchange: Exchange, resource_type: str, resource_id: str, params) -> Reply:
    mapper = mapper_for(resource_type)
    if not mapper.versioned:
        raise FhirError(405, "not-supported", f"{resource_type} keeps no versions.")
    obj, _grant = _open(exchange, mapper, resource_id, "r")
    mapper.render(obj)
    count = search.parse(mapper, _only_count(params), strict=False).count
    found = list(versions.history(resource_type, resource_id)[:count])
    entries = []
    for version in found:
        full_url = f"{exchange.base}/{resource_type}/{resource_id}"
        entry: dict[str, Any] = {"fullUrl": full_url}
        if version.deleted:
            entry["request"] = {"method": "DELETE", "url": f"{resource_type}/{resource_id}"}
        else:
            entry["resource"] = with_meta(version.content, version, mapper.profiles)
            method = "POST" if version.version == 1 else "PUT"
            url = resource_type if method == "POST" else f"{resource_type}/{resource_id}"
            entry["request"] = {"method": method, "url": url}
        status = "204" if version.deleted else "201" if version.version == 1 else "200"
        entry["response"] = {
            "status": status,
            "lastModified": instant(version.recorded_at),
        }
        entries.append(entry)
    _audit(
        exchange,
        "fhir.history_read",
        patient_id=mapper.patient_id_of(obj),
        resource=f"{resource_type}/{resource_id}",
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "history",
        "total": versions.history(resource_type, resource_id).count(),
        "link": [
            {"relation": "self", "url": f"{exchange.base}/{resource_type}/{resource_id}/_history"}
        ],
        "entry": entries,
    }
    return Reply(200, bundle)


def _only_count(params) -> QueryDict:
    found = QueryDict(mutable=True)
    if "_count" in params:
        found["_count"] = params["_count"]
    return found


def search_type(exchange: Exchange, resource_type: str, params) -> Reply:
    mapper = mapper_for(resource_type)
    grant = grant_for(exchange.principal, mapper, "s")
    request = search.parse(mapper, params, strict=exchange.strict)
    link = f"{exchange.base}/{resource_type}"
    links = [{"relation": "self", "url": f"{link}?{request.query_string()}"}]
    if mapper.model is None:
        matches, total = mapper.find(exchange.principal, grant, request)
        links += _offset_links(link, request, len(matches), total)
    else:
        queryset = narrowed(exchange.principal, mapper, grant, mapper.queryset())
        queryset = search.filtered(mapper, queryset, request)
        total = queryset.count() if request.total else None
        matches, after, before = _page(queryset, search.order_fields(mapper, request), request)
        if after:
            links.append({"relation": "next", "url": f"{link}?{request.query_string(page=after)}"})
        if before:
            links.append(
                {"relation": "previous", "url": f"{link}?{request.query_string(page=before)}"}
            )
    resources = mapper.render_many(matches)
    included = _included(exchange, mapper, request, matches)
    entries = [_entry(exchange, resource, "match") for resource in resources]
    entries += [_entry(exchange, resource, "include") for resource in included]
    outcome = search.ignored_outcome(request)
    if outcome is not None:
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    patients = {str(mapper.patient_id_of(obj)) for obj in matches} - {"None"}
    patients |= {resource["id"] for resource in included if resource["resourceType"] == "Patient"}
    _audit(
        exchange,
        "fhir.searched",
        patient_id=next(iter(patients)) if len(patients) == 1 else None,
        resource_type=resource_type,
        query=request.query_string(),
        results=len(matches),
        # Which patients a page disclosed, for their accounting of disclosures.
        patients=sorted(patients),
    )
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    bundle["link"] = links
    bundle["entry"] = entries
    return Reply(200, bundle)


def _page(queryset, fields: list[str], request) -> tuple[list, str, str]:
    """One page, and the keyset links to the pages after and before it (empty: none)."""
    size = request.count
    if request.page:
        direction, values = paging.read_cursor(request.page, len(fields))
        backwards = direction == "before"
        window = queryset.filter(paging.beyond(fields, values, before=backwards))
        rows = list(paging.order_by(window, fields, reverse=backwards)[: size + 1])
        more, rows = len(rows) > size, rows[:size]
        if backwards:
            rows.reverse()
        has_next, has_previous = (True, more) if backwards else (more, True)
    else:
        start = request.offset
        rows = list(paging.order_by(queryset, fields)[start : start + size + 1])
        has_next, has_previous, rows = len(rows) > size, start > 0, rows[:size]
    if not rows:
        return rows, "", ""
    after = paging.cursor("after", paging.values_of(rows[-1], fields)) if has_next else ""
    before = paging.cursor("before", paging.values_of(rows[0], fields)) if has_previous else ""
    return rows, after, before


def _offset_links(link: str, request, shown: int, total: int | None) -> list[dict]:
    """Pages of a computed type (Slot, Organization), which have no rows to key on."""
    links = []
    if request.offset > 0 and request.count > 0:
        previous = max(request.offset - request.count, 0)
        links.append(
            {"relation": "previous", "url": f"{link}?{request.query_string(offset=previous)}"}
        )
    more = request.offset + shown < total if total is not None else shown == request.count
    if more and request.count > 0:
        following = request.query_string(offset=request.offset + request.count)
        links.append({"relation": "next", "url": f"{link}?{following}"})
    return links


def _entry(exchange: Exchange, resource: dict, mode: str) -> dict:
    return {
        "fullUrl": f"{exchange.base}/{resource['resourceType']}/{resource['id']}",
        "resource": resource,
        "search": {"mode": mode},
    }


def _included(exchange: Exchange, mapper: ResourceMapper, request, matches) -> list[dict]:
    found: dict[tuple[str, str], dict] = {}
    for value in request.include:
        _source, _, rest = value.partition(":")
        name, _, target_type = rest.partition(":")
        param = mapper.search_params[name]
        for target in param.targets:
            if target_type and target != target_type:
                continue
            keys = {getattr(obj, _key_attribute(param.field), None) for obj in matches} - {None}
            _add_readable(exchange, mapper_for(target), {"pk__in": keys}, found)
    for value in request.revinclude:
        source_type, _, name = value.partition(":")
        source = mapper_for(source_type)
        param = source.search_params[name]
        keys = [obj.pk for obj in matches]
        _add_readable(exchange, source, {f"{param.field}__in": keys}, found)
    return list(found.values())


def _key_attribute(field_name: str) -> str:
    # "patient" and "patient_id" both name the foreign key; the instance holds it as *_id.
    if field_name in ("pk", "id") or field_name.endswith("_id"):
        return field_name
    return f"{field_name}_id"


def _add_readable(exchange, mapper: ResourceMapper, condition: dict, found: dict) -> None:
    # Included resources obey the same scopes, role and compartment as a search of their own;
    # those the token may not read are left out rather than failing the search.
    grant = exchange.principal.grant(mapper.resource_type, "r")
    if grant is None:
        return
    try:
        grant = grant_for(exchange.principal, mapper, "r")
    except FhirError:
        return
    queryset = narrowed(exchange.principal, mapper, grant, mapper.queryset()).filter(**condition)
    for resource in mapper.render_many(list(queryset[: search.MAX_COUNT])):
        found.setdefault((resource["resourceType"], resource["id"]), resource)


def _body_reply(exchange: Exchange, status: int, resource: dict, headers: dict) -> Reply:
    if exchange.prefer_return == "minimal":
        return Reply(status, None, headers)
    if exchange.prefer_return == "OperationOutcome":
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "information",
                    "code": "informational",
                    "diagnostics": f"{resource['resourceType']}/{resource['id']} saved.",
                }
            ],
        }
        return Reply(status, outcome, headers)
    return Reply(status, resource, headers)


def create(exchange: Exchange, resource_type: str, body: dict, if_none_exist: str = "") -> Reply:
    mapper = mapper_for(resource_type)
    if "create" not in mapper.interactions():
        raise FhirError(405, "not-supported", f"{resource_type} cannot be created here.")
    check(body, resource_type)
    grant = grant_for(exchange.principal, mapper, "c")
    if if_none_exist:
        existing = _conditional_matches(exchange, mapper, if_none_exist)
        if len(existing) > 1:
            raise FhirError(412, "duplicate", "If-None-Exist matched more than one resource.")
        if existing:
            check_record(exchange.principal, mapper, grant, existing[0])
            resource = mapper.render(existing[0])
            _audit(
                exchange,
                "fhir.read",
                patient_id=mapper.patient_id_of(existing[0]),
                resource=f"{resource_type}/{resource['id']}",
                conditional_create=if_none_exist,
            )
            return _body_reply(exchange, 200, resource, _version_headers(resource))
    with transaction.atomic():
        obj = _call_service(mapper.create, exchange.principal.user, body)
        check_record(exchange.principal, mapper, grant, obj)
        resource = mapper.render(obj)
        _audit(
            exchange,
            "fhir.created",
            patient_id=mapper.patient_id_of(obj),
            resource=f"{resource_type}/{resource['id']}",
        )
    headers = _version_headers(resource)
    headers["Location"] = _location(exchange, resource)
    return _body_reply(exchange, 201, resource, headers)


def _location(exchange: Exchange, resource: dict) -> str:
    url = f"{exchange.base}/{resource['resourceType']}/{resource['id']}"
    version = resource.get("meta", {}).get("versionId")
    return f"{url}/_history/{version}" if version else url


def _conditional_matches(exchange: Exchange, mapper: ResourceMapper, query: str) -> list:
    params = QueryDict(query.lstrip("?"))
    grant = grant_for(exchange.principal, mapper, "s")
    request = search.parse(mapper, params, strict=True)
    queryset = narrowed(exchange.principal, mapper, grant, mapper.queryset())
    return list(search.filtered(mapper, queryset, request)[:2])


def _call_service(function, *args):
    """Domain errors become FHIR errors: a rule broken is 422, a conflict 409."""
    try:
        return function(*args)
    except ValidationError as error:
        mapper = getattr(function, "__self__", None)
        if mapper is not None:
            raise mapper.invalid(error) from None
        raise unprocessable(" ".join(error.messages)) from None
    except ApplicationError as error:
        status = {404: 404, 409: 409, 403: 403}.get(error.status, 422)
        code = {404: "not-found", 409: "conflict", 403: "forbidden"}.get(status, "processing")
        raise FhirError(status, code, error.message) from None


def update(
    exchange: Exchange, resource_type: str, resource_id: str, body: dict, if_match: str = ""
) -> Reply:
    mapper = mapper_for(resource_type)
    check(body, resource_type)
    if body.get("id") != resource_id:
        raise FhirError(
            400,
            "invalid",
            "The resource's id must match the id in the URL.",
            expression=[f"{resource_type}.id"],
        )
    if "update" not in mapper.interactions():
        raise FhirError(405, "not-supported", f"{resource_type} cannot be updated here.")
    with transaction.atomic():
        _lock(mapper, resource_id)
        obj, grant = _open(exchange, mapper, resource_id, "u")
        current = mapper.render(obj)
        if if_match and if_match.strip() != "*":
            wanted = if_match.strip().removeprefix("W/").strip('"')
            if wanted != current["meta"]["versionId"]:
                raise FhirError(
                    412,
                    "conflict",
                    f"{resource_type}/{resource_id} is at version "
                    f"{current['meta']['versionId']}, not {wanted}: read it again and retry.",
                )
        obj = _call_service(mapper.update, exchange.principal.user, obj, body)
        check_record(exchange.principal, mapper, grant, obj)
        resource = mapper.render(obj)
        # A change the domain makes as a new record (a rescheduled visit) answers 201 with
        # where the new one is; the old one stays, changed (cancelled), at its own URL.
        replaced = resource["id"] != resource_id
        _audit(
            exchange,
            "fhir.updated",
            patient_id=mapper.patient_id_of(obj),
            resource=f"{resource_type}/{resource_id}",
            **({"replaced_by": f"{resource_type}/{resource['id']}"} if replaced else {}),
        )
    headers = _version_headers(resource)
    if replaced:
        headers["Location"] = _location(exchange, resource)
    return _body_reply(exchange, 201 if replaced else 200, resource, headers)


def _lock(mapper: ResourceMapper, resource_id: str) -> None:
    # Holds the row until the transaction ends, so that two updates with the same If-Match
    # cannot both pass the check (SQLite transactions here already begin IMMEDIATE).
    with contextlib.suppress(ValueError, ValidationError):  # not an id: _open() answers 404
        list(
            mapper.model._default_manager.select_for_update()
            .filter(pk=resource_id)
            .values_list("pk")
        )


def delete(exchange: Exchange, resource_type: str, resource_id: str) -> Reply:
    mapper = mapper_for(resource_type)
    if "delete" not in mapper.interactions():
        raise FhirError(405, "not-supported", f"{resource_type} cannot be deleted here.")
    with transaction.atomic():
        try:
            obj, _grant = _open(exchange, mapper, resource_id, "d")
        except FhirError as error:
            if error.status == 410:
                return Reply(204, None)  # deleting twice is not an error
            raise
        _call_service(mapper.delete, exchange.principal.user, obj)
        versions.stamp(resource_type, resource_id, None, now(), deleted=True)
        _audit(
            exchange,
            "fhir.deleted",
            patient_id=mapper.patient_id_of(obj),
            resource=f"{resource_type}/{resource_id}",
        )
    return Reply(204, None)


def everything(exchange: Exchange, patient_id: str) -> Reply:
    """Patient/$everything: the patient and every compartment record the token may read."""
    patient_mapper = mapper_for("Patient")
    patient, _grant = _open(exchange, patient_mapper, patient_id, "r")
    resources = [patient_mapper.render(patient)]
    for mapper in all_mappers():
        if mapper.patient_path != "patient" or mapper.model is None:
            continue
        grant = exchange.principal.grant(mapper.resource_type, "r")
        if grant is None:
            continue
        try:
            grant = grant_for(exchange.principal, mapper, "r")
        except FhirError:
            continue
        queryset = narrowed(exchange.principal, mapper, grant, mapper.queryset())
        resources += mapper.render_many(list(queryset.filter(patient_id=patient.pk).order_by("pk")))
    _audit(exchange, "fhir.everything_read", patient_id=patient.pk, results=len(resources))
    return Reply(
        200,
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(resources),
            "link": [
                {"relation": "self", "url": f"{exchange.base}/Patient/{patient_id}/$everything"}
            ],
            "entry": [_entry(exchange, resource, "match") for resource in resources],
        },
    )
