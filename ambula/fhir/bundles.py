"""Batch and transaction Bundles.

A batch runs each entry on its own: one entry's failure is that entry's response. A
transaction is all or nothing: entries run in FHIR's order (DELETE, POST, PUT, GET) inside
one database transaction, `urn:uuid:` references to entries created in it are rewritten to
the new ids, and the first failure rolls everything back and is the answer.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from urllib.parse import urlsplit

from django.db import transaction
from django.http import QueryDict

from ambula.audit.models import AuditEvent
from ambula.audit.services import record
from ambula.fhir import interactions
from ambula.fhir.access import Refused
from ambula.fhir.errors import FhirError
from ambula.fhir.interactions import Exchange, Reply

ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "GET": 3, "HEAD": 3}
MAX_ENTRIES = 500


def process(exchange: Exchange, bundle: dict) -> Reply:
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") not in ("batch", "transaction"):
        raise FhirError(
            400,
            "invalid",
            "POST to the base takes a batch or transaction Bundle.",
            expression=["Bundle.type"],
        )
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise FhirError(
            400, "structure", "Bundle.entry must be a list.", expression=["Bundle.entry"]
        )
    if len(entries) > MAX_ENTRIES:
        raise FhirError(413, "too-costly", f"A Bundle may hold at most {MAX_ENTRIES} entries.")
    for index, entry in enumerate(entries):
        _check_entry(entry, index)
    kind = bundle["type"]
    if kind == "batch":
        responses = [_run_alone(exchange, entry) for entry in entries]
    else:
        try:
            responses = _run_transaction(exchange, entries)
        except FhirError:
            # Everything it did was rolled back, its audit events too: record the attempt.
            _audit(exchange, kind, len(entries), AuditEvent.Outcome.FAILURE)
            raise
    _audit(exchange, kind, len(entries), AuditEvent.Outcome.SUCCESS)
    return Reply(
        200,
        {
            "resourceType": "Bundle",
            "type": f"{kind}-response",
            "entry": responses,
        },
    )


def _audit(exchange: Exchange, kind: str, entries: int, outcome: str) -> None:
    record(
        actor=exchange.principal.user,
        action="fhir.bundle_processed",
        category="api",
        outcome=outcome,
        changes={"client": exchange.principal.client_id, "type": kind, "entries": entries},
    )


def _check_entry(entry, index: int) -> None:
    where = f"Bundle.entry[{index}]"
    request = entry.get("request") if isinstance(entry, dict) else None
    method = request.get("method") if isinstance(request, dict) else None
    if (
        not isinstance(method, str)
        or method not in ORDER
        or not isinstance(request.get("url"), str)
    ):
        raise FhirError(
            400,
            "structure",
            f"{where}.request needs a method (GET, POST, PUT, DELETE) and a url.",
            expression=[f"{where}.request"],
        )
    for name in ("ifNoneExist", "ifMatch"):
        if not isinstance(request.get(name, ""), str):
            raise FhirError(
                400,
                "structure",
                f"{where}.request.{name} must be a string.",
                expression=[f"{where}.request.{name}"],
            )
    if not isinstance(entry.get("fullUrl", ""), str):
        raise FhirError(
            400, "structure", f"{where}.fullUrl must be a string.", expression=[f"{where}.fullUrl"]
        )
    if method in ("POST", "PUT") and not isinstance(entry.get("resource"), dict):
        raise FhirError(
            400,
            "structure",
            f"{where} needs a resource to {method}.",
            expression=[f"{where}.resource"],
        )


def _run_alone(exchange: Exchange, entry: dict) -> dict:
    try:
        with transaction.atomic():
            return _response(_run(exchange, entry), exchange)
    except Refused as refused:
        refused.record()
        return {"response": {"status": str(refused.status), "outcome": refused.outcome()}}
    except FhirError as error:
        return {"response": {"status": str(error.status), "outcome": error.outcome()}}


def _run_transaction(exchange: Exchange, entries: list[dict]) -> list[dict]:
    ordered = _in_order(entries)
    replies: dict[int, dict] = {}
    new_ids: dict[str, str] = {}
    # The new ids come from the created resources, whatever the client prefers to get back.
    inner = replace(exchange, prefer_return="representation")
    with transaction.atomic():
        for index in ordered:
            entry = entries[index]
            if new_ids and "resource" in entry:
                entry = {**entry, "resource": _rewritten(entry["resource"], new_ids)}
            try:
                reply = _run(inner, entry)
            except FhirError as error:
                error.issues = [
                    {**issue, "diagnostics": f"Bundle.entry[{index}]: {issue['diagnostics']}"}
                    for issue in error.issues
                ]
                raise
            full_url = entry.get("fullUrl", "")
            if full_url.startswith("urn:uuid:") and reply.body and "id" in reply.body:
                new_ids[full_url] = f"{reply.body['resourceType']}/{reply.body['id']}"
            replies[index] = _response(reply, exchange)
    return [replies[index] for index in range(len(entries))]


def _in_order(entries: list[dict]) -> list[int]:
    """FHIR's order (DELETE, POST, PUT, GET), and among the POSTs each entry after the new
    resources it points to by `urn:uuid:`, whatever order the client listed them in."""
    by_method = sorted(range(len(entries)), key=lambda i: ORDER[entries[i]["request"]["method"]])
    posts = [i for i in by_method if entries[i]["request"]["method"] == "POST"]
    creator = {
        entries[i]["fullUrl"]: i
        for i in posts
        if str(entries[i].get("fullUrl", "")).startswith("urn:uuid:")
    }
    needs = {
        i: {creator[found] for found in _placeholders(entries[i].get("resource"))} - {i}
        for i in posts
    }
    needs = {i: {j for j in wanted if j in needs} for i, wanted in needs.items()}
    settled: list[int] = []
    done: set[int] = set()
    while len(settled) < len(posts):
        ready = [i for i in posts if i not in done and needs[i] <= done]
        if not ready:
            raise FhirError(400, "invalid", "The transaction's urn:uuid references form a cycle.")
        settled += ready
        done.update(ready)
    first_post = by_method.index(posts[0]) if posts else 0
    rest = [i for i in by_method if i not in posts]
    return rest[:first_post] + settled + rest[first_post:]


_PLACEHOLDER = re.compile(r'"(urn:uuid:[0-9A-Fa-f-]{36})"')


def _placeholders(resource) -> set[str]:
    return set(_PLACEHOLDER.findall(json.dumps(resource)))


def _rewritten(resource: dict, new_ids: dict[str, str]) -> dict:
    text = _PLACEHOLDER.sub(
        lambda match: json.dumps(new_ids.get(match.group(1), match.group(1))), json.dumps(resource)
    )
    return json.loads(text)


def _run(exchange: Exchange, entry: dict) -> Reply:
    request = entry["request"]
    method = request["method"]
    try:
        parts = urlsplit(request["url"])
    except ValueError:
        raise FhirError(400, "invalid", f"{request['url']!r} is not a URL.") from None
    path = [part for part in parts.path.strip("/").split("/") if part]
    if path and path[0] == "fhir":
        path = path[1:]  # an absolute URL of this server
    query = QueryDict(parts.query)
    if not path:
        raise FhirError(400, "invalid", "An entry's url must name a resource type.")
    resource_type = path[0]
    match (method, len(path)):
        case ("GET" | "HEAD", 1):
            return interactions.search_type(exchange, resource_type, query)
        case ("GET" | "HEAD", 2):
            return interactions.read(exchange, resource_type, path[1])
        case ("GET" | "HEAD", 4) if path[2] == "_history":
            return interactions.vread(exchange, resource_type, path[1], path[3])
        case ("POST", 1):
            return interactions.create(
                exchange, resource_type, entry["resource"], request.get("ifNoneExist", "")
            )
        case ("PUT", 2):
            return interactions.update(
                exchange, resource_type, path[1], entry["resource"], request.get("ifMatch", "")
            )
        case ("DELETE", 2):
            return interactions.delete(exchange, resource_type, path[1])
    raise FhirError(
        400, "not-supported", f"{method} {request['url']} is not supported in a Bundle."
    )


def _response(reply: Reply, exchange: Exchange) -> dict:
    response = {"status": str(reply.status)}
    if "Location" in reply.headers:
        response["location"] = reply.headers["Location"]
    if "ETag" in reply.headers:
        response["etag"] = reply.headers["ETag"]
    found = {"response": response}
    if reply.body is not None and exchange.prefer_return != "minimal":
        found["resource"] = reply.body
    return found
