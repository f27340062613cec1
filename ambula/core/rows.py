"""Plain rows from a query, for the few hot paths that read thousands of them per request.

`QuerySet.values_list()` runs every value through the backend's converters: on SQLite a
regular-expression parse and a time-zone step per datetime and a `UUID()` per id, about
15 microseconds a row of three values. `plain_rows` asks the same query for the same values
and converts them itself with the standard library's ISO parsers, several times faster. On
PostgreSQL the driver already returns dates, times and UUIDs, which pass through untouched.

Only the field types below are supported, and no field that converts its own values
(`from_db_value`: the encrypted fields); any other raises, so a column cannot slip through
unconverted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time
from typing import Any

from django.db import connections
from django.db.models import QuerySet
from django.db.models.sql.constants import MULTI


def _instant(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(value)
    # SQLite keeps aware datetimes as naive UTC (its driver may have parsed them already).
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _uuid(value: Any) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(hex=value)


def _parser(kind: type) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if value is None or isinstance(value, kind):
            return value
        return kind.fromisoformat(value)

    return parse


def _identity(value: Any) -> Any:
    return value


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "DateTimeField": _instant,
    "UUIDField": _uuid,
    "DateField": _parser(date),
    "TimeField": _parser(time),
    "CharField": _identity,
    "TextField": _identity,
    "PositiveSmallIntegerField": _identity,
    "SmallIntegerField": _identity,
    "IntegerField": _identity,
}


def _converter(model, path: str) -> Callable[[Any], Any]:
    """The converter for a field named as in values_list (`provider_id`, `a__b`)."""
    *relations, name = path.split("__")
    for relation in relations:
        model = model._meta.get_field(relation).related_model
    field = model._meta.get_field(name)
    if field.is_relation:
        field = field.target_field
    kind = field.get_internal_type()
    if kind not in CONVERTERS or hasattr(field, "from_db_value"):
        raise TypeError(f"plain_rows cannot convert {path} ({type(field).__name__})")
    if kind == "UUIDField":
        return _remembered(_uuid)  # ids repeat down a column: parse each once
    return CONVERTERS[kind]


def _remembered(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    seen: dict = {}

    def remembered(value: Any) -> Any:
        try:
            return seen[value]
        except KeyError:
            seen[value] = converted = convert(value)
            return converted

    return remembered


def plain_rows(queryset: QuerySet, *fields: str) -> Iterator[tuple]:
    """The rows `queryset.values_list(*fields)` would give, converted faster (see above)."""
    converters = [_converter(queryset.model, path) for path in fields]
    query = queryset.values_list(*fields).query
    compiler = query.get_compiler(connection=connections[queryset.db])
    for chunk in compiler.execute_sql(MULTI):
        for row in chunk:
            yield tuple(convert(value) for convert, value in zip(converters, row, strict=True))
