"""Search: parameters to a filtered, ordered queryset, then one page of it as a Bundle."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.db.models import QuerySet

from ambula.fhir.errors import bad_request, issue
from ambula.fhir.mapper import ResourceMapper
from ambula.fhir.search_params import DateParam, IdParam, SearchParam

DEFAULT_COUNT = 20  # a screenful, as most FHIR servers give; _count asks for up to MAX_COUNT
MAX_COUNT = 200  # a bigger _count is capped, as the specification allows
MAX_OFFSET = 100_000  # deeper pages cost the database a long skip: narrow the search instead
# Result parameters and others this server reads itself, not as filters.
CONTROLS = {"_count", "_offset", "_page", "_sort", "_include", "_revinclude", "_total", "_format"}
COMMON_PARAMS: dict[str, SearchParam] = {
    "_id": IdParam(documentation="The resource's id."),
    "_lastUpdated": DateParam(documentation="When it last changed."),
}


def _param(mapper: ResourceMapper, name: str) -> SearchParam:
    if name == "_lastUpdated":
        return DateParam(field=mapper.last_updated_field)
    return COMMON_PARAMS.get(name) or mapper.search_params[name]


@dataclass
class SearchRequest:
    filters: list[tuple[str, str, list[str]]] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    offset: int = 0
    page: str = ""  # a keyset page link (paging.py); takes the place of _offset
    sort: list[str] = field(default_factory=list)
    include: list[str] = field(default_factory=list)
    revinclude: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    total: bool = True

    def query_string(self, *, offset: int | None = None, page: str | None = None) -> str:
        """The search as this server understood it, for the Bundle's links."""
        pairs = []
        for name, modifier, values in self.filters:
            key = f"{name}:{modifier}" if modifier else name
            pairs += [(key, value) for value in values]
        if self.sort:
            pairs.append(("_sort", ",".join(self.sort)))
        pairs += [("_include", value) for value in self.include]
        pairs += [("_revinclude", value) for value in self.revinclude]
        pairs.append(("_count", str(self.count)))
        page = self.page if page is None and offset is None else page
        if page:
            pairs.append(("_page", page))
        else:
            pairs.append(("_offset", str(self.offset if offset is None else offset)))
        return urlencode(pairs)


def parse(mapper: ResourceMapper, params, *, strict: bool) -> SearchRequest:
    """Read the query; unknown parameters fail (strict) or are listed as ignored (lenient)."""
    request = SearchRequest()
    for key in params:
        values = params.getlist(key)
        name, _, modifier = key.partition(":")
        if name in CONTROLS:
            _read_control(request, mapper, name, values)
            continue
        if name in mapper.common_params or name in mapper.search_params:
            request.filters.append((name, modifier, values))
        elif strict:
            raise bad_request(f"Unknown search parameter {name} for {mapper.resource_type}.")
        else:
            request.ignored.append(key)
    return request


def _read_control(request: SearchRequest, mapper, name: str, values: list[str]) -> None:
    value = values[-1]
    if name in ("_count", "_offset"):
        try:
            number = int(value)
        except ValueError:
            raise bad_request(f"{name} must be a whole number.", [name]) from None
        if number < 0:
            raise bad_request(f"{name} must not be negative.", [name])
        if name == "_count":
            request.count = min(number, MAX_COUNT)
        elif number > MAX_OFFSET:
            raise bad_request(f"_offset goes up to {MAX_OFFSET}: narrow the search.", [name])
        else:
            request.offset = number
    elif name == "_page":
        request.page = value
    elif name == "_sort":
        request.sort = [part for part in value.split(",") if part]
        for part in request.sort:
            if _sort_field(mapper, part) is None:
                raise bad_request(f"Cannot sort {mapper.resource_type} by {part}.", ["_sort"])
    elif name == "_include":
        for value_ in values:
            source, _, param = value_.partition(":")
            if source != mapper.resource_type or param.split(":")[0] not in mapper.includes:
                raise bad_request(f"_include={value_} is not supported here.", ["_include"])
        request.include = values
    elif name == "_revinclude":
        for value_ in values:
            if value_ not in mapper.revincludes:
                raise bad_request(f"_revinclude={value_} is not supported here.", ["_revinclude"])
        request.revinclude = values
    elif name == "_total":
        request.total = value != "none"
    elif name == "_format" and value not in ("json", "application/json", "application/fhir+json"):
        from ambula.fhir.errors import FhirError

        raise FhirError(415, "not-supported", "This server speaks JSON only.")


def _sort_field(mapper: ResourceMapper, part: str) -> str | None:
    name = part.removeprefix("-")
    fields = {"_lastUpdated": mapper.last_updated_field, "_id": "pk", **mapper.sort_fields}
    if name not in fields:
        return None
    return ("-" if part.startswith("-") else "") + fields[name]


def filtered(mapper: ResourceMapper, queryset: QuerySet, request: SearchRequest) -> QuerySet:
    for name, modifier, values in request.filters:
        queryset = _param(mapper, name).apply(queryset, name, modifier, values)
    return queryset


def order_fields(mapper: ResourceMapper, request: SearchRequest) -> list[str]:
    """A total order, so that every record has one place: the key breaks ties."""
    fields = [_sort_field(mapper, part) for part in request.sort] or list(mapper.default_order)
    if not any(name.lstrip("-") == "pk" for name in fields):
        fields.append("pk")
    return fields


def ignored_outcome(request: SearchRequest) -> dict | None:
    if not request.ignored:
        return None
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            issue(
                "not-supported",
                f"Search parameter {name} is not supported and was ignored.",
                severity="warning",
            )
            for name in request.ignored
        ],
    }
