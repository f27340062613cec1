"""Keyset paging: `next` and `previous` links name the last (or first) row they follow, not
an offset, so a record added or removed between two pages neither repeats nor hides one.

The order is a list of fields ("-field" descending) that always ends with the primary key,
so every row has exactly one place. Nulls sort last in both directions, on SQLite and
PostgreSQL alike, so that the comparisons below mean the same on both.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from typing import Any

from django.db.models import F, Q, QuerySet

from ambula.fhir.errors import bad_request


def order_by(queryset: QuerySet, fields: list[str], *, reverse: bool = False) -> QuerySet:
    expressions = []
    for name in fields:
        descending = name.startswith("-") != reverse
        column = F(name.lstrip("-"))
        # Nulls last; read backwards, first.
        nulls = {"nulls_first": True} if reverse else {"nulls_last": True}
        expressions.append(column.desc(**nulls) if descending else column.asc(**nulls))
    return queryset.order_by(*expressions)


def beyond(fields: list[str], values: list, *, before: bool = False) -> Q:
    """The rows after these values in this order (or before them)."""
    condition = Q(pk__in=[])
    equal_so_far = Q()
    for name, value in zip(fields, values, strict=True):
        field = name.lstrip("-")
        descending = name.startswith("-")
        condition |= equal_so_far & _strictly(field, value, descending != before, before)
        equal_so_far &= Q(**{f"{field}__isnull": True}) if value is None else Q(**{field: value})
    return condition


def _strictly(field: str, value, descending: bool, before: bool) -> Q:
    # Nulls come last: after a value lie the smaller (or greater) values and the nulls;
    # after a null, only further nulls (left to the next field). Before: the mirror image.
    if value is None:
        return Q(**{f"{field}__isnull": False}) if before else Q(pk__in=[])
    beyond_value = Q(**{f"{field}__{'lt' if descending else 'gt'}": value})
    return beyond_value if before else beyond_value | Q(**{f"{field}__isnull": True})


def values_of(obj: Any, fields: list[str]) -> list:
    found = []
    for name in fields:
        value = obj
        for part in name.lstrip("-").split("__"):
            value = getattr(value, part) if value is not None else None
        found.append(value)
    return found


def cursor(direction: str, values: list) -> str:
    text = json.dumps([direction, [_plain(value) for value in values]], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _plain(value):
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def read_cursor(token: str, width: int) -> tuple[str, list]:
    """The direction ("after" or "before") and the row values a page link carries."""
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        direction, values = json.loads(text)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        raise bad_request("_page is not a page link of this server.", ["_page"]) from None
    if direction not in ("after", "before") or not isinstance(values, list) or len(values) != width:
        raise bad_request("_page does not belong to this search.", ["_page"])
    return direction, values
