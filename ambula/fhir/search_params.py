"""Search parameter types: each turns `name[:modifier]=value` into a queryset filter.

Repeated parameters AND together; comma-separated values within one parameter OR together,
as the FHIR search specification says. A value that cannot be read is a 400 naming the
parameter, never a silently empty result.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from django.db.models import Q, QuerySet
from django.utils import timezone

from ambula.fhir.errors import bad_request

MAX_ALTERNATIVES = 100  # comma-separated values in one parameter
DATE_PREFIXES = ("eq", "ne", "lt", "gt", "le", "ge", "sa", "eb", "ap")
_DATE = re.compile(
    r"^(?P<year>\d{4})(-(?P<month>\d{2})(-(?P<day>\d{2})"
    r"(T(?P<time>\d{2}:\d{2}(:\d{2}(\.\d+)?)?)(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


@dataclass(frozen=True)
class SearchParam:
    """One search parameter. `type` is its FHIR type, as the CapabilityStatement lists it."""

    type: ClassVar[str] = "special"
    modifiers: ClassVar[tuple[str, ...]] = ()
    documentation: str = field(default="", kw_only=True)

    def apply(self, queryset: QuerySet, name: str, modifier: str, values: list[str]) -> QuerySet:
        if modifier and modifier not in self.modifiers:
            raise bad_request(f"Search parameter {name} does not support :{modifier}.", [name])
        for value in values:
            alternatives = [part for part in _split_commas(value) if part != ""]
            if not alternatives:
                raise bad_request(f"Search parameter {name} has an empty value.", [name])
            if len(alternatives) > MAX_ALTERNATIVES:
                raise bad_request(
                    f"Search parameter {name} has more than {MAX_ALTERNATIVES} values.", [name]
                )
            condition = Q()
            for alternative in alternatives:
                condition |= self.condition(name, modifier, alternative)
            queryset = queryset.filter(condition)
        return queryset

    def condition(self, name: str, modifier: str, value: str) -> Q:
        raise NotImplementedError


def as_uuid(text: str) -> uuid.UUID | None:
    """The UUID the text spells, or None."""
    try:
        return uuid.UUID(text)
    except (ValueError, AttributeError, TypeError):
        return None


def reference_key(value: str, targets: tuple[str, ...]) -> tuple[str, str]:
    """(type, id) of a reference search value: `Type/id`, a full URL or a bare id; ("", "")
    when it names a type other than the targets."""
    kind, slash, key = value.rstrip("/").rpartition("/")
    kind = kind.rpartition("/")[2] if slash else ""
    if kind and kind not in targets:
        return "", ""
    return kind, key


def _split_commas(value: str) -> list[str]:
    # "\," is a literal comma inside a value.
    parts = re.split(r"(?<!\\),", value)
    return [part.replace("\\,", ",") for part in parts]


@dataclass(frozen=True)
class StringParam(SearchParam):
    """Matches the start of any of the fields, ignoring case; :exact and :contains as FHIR says."""

    fields: tuple[str, ...] = ()
    normalize: Callable[[str], str] | None = None
    type = "string"
    modifiers = ("exact", "contains")

    def condition(self, name: str, modifier: str, value: str) -> Q:
        if self.normalize is not None and modifier != "exact":
            value = self.normalize(value)
        lookup = {"exact": "exact", "contains": "icontains"}.get(modifier, "istartswith")
        condition = Q()
        for name_of_field in self.fields:
            condition |= Q(**{f"{name_of_field}__{lookup}": value})
        return condition


@dataclass(frozen=True)
class TokenParam(SearchParam):
    """`[system|]code`. `codes` maps FHIR codes to stored values where they differ."""

    field: str = ""
    system: str | None = None
    codes: dict[str, str] | None = None
    type = "token"
    modifiers = ("not",)

    def condition(self, name: str, modifier: str, value: str) -> Q:
        system, bar, code = value.rpartition("|")
        if bar and self.system is not None and system not in ("", self.system):
            return Q(pk__in=[])
        if self.codes is not None:
            if code not in self.codes:
                return Q(pk__in=[]) if modifier != "not" else Q()
            code = self.codes[code]
        condition = Q(**{self.field: code})
        return ~condition if modifier == "not" else condition


@dataclass(frozen=True)
class ReferenceParam(SearchParam):
    """`Type/id` or a bare id, of the given target type(s)."""

    field: str = ""
    targets: tuple[str, ...] = ()
    type = "reference"

    def condition(self, name: str, modifier: str, value: str) -> Q:
        if modifier and modifier not in self.targets:
            raise bad_request(f"Search parameter {name} cannot point to {modifier}.", [name])
        target, identifier = reference_key(value, self.targets)
        key = as_uuid(identifier)
        if key is None or (modifier and target not in ("", modifier)):
            return Q(pk__in=[])
        return Q(**{self.field: key})

    def apply(self, queryset: QuerySet, name: str, modifier: str, values: list[str]) -> QuerySet:
        # The modifier of a reference names its target type (subject:Patient=...).
        for value in values:
            condition = Q()
            alternatives = _split_commas(value)
            if len(alternatives) > MAX_ALTERNATIVES:
                raise bad_request(
                    f"Search parameter {name} has more than {MAX_ALTERNATIVES} values.", [name]
                )
            for alternative in alternatives:
                condition |= self.condition(name, modifier, alternative)
            queryset = queryset.filter(condition)
        return queryset


@dataclass(frozen=True)
class IdParam(SearchParam):
    """`_id`: the resource's own id."""

    field: str = "pk"
    type = "token"

    def condition(self, name: str, modifier: str, value: str) -> Q:
        key = as_uuid(value)
        return Q(pk__in=[]) if key is None else Q(**{self.field: key})


@dataclass(frozen=True)
class DateParam(SearchParam):
    """A date or date-time field, with FHIR's prefixes and the precision the value gives."""

    field: str = ""
    is_date: bool = False
    type = "date"

    def condition(self, name: str, modifier: str, value: str) -> Q:
        prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
        text = value[2:] if value[:2] in DATE_PREFIXES else value
        start, end = date_range(text, name)
        if self.is_date:
            start, end = start.date(), end.date()
            # end is exclusive; with dates it is the next day
        f = self.field
        match prefix:
            case "eq" | "ap":
                return Q(**{f"{f}__gte": start, f"{f}__lt": end})
            case "ne":
                return ~Q(**{f"{f}__gte": start, f"{f}__lt": end})
            case "lt" | "eb":
                return Q(**{f"{f}__lt": start})
            case "le":
                return Q(**{f"{f}__lt": end})
            case "gt" | "sa":
                return Q(**{f"{f}__gte": end})
            case _:  # ge
                return Q(**{f"{f}__gte": start})


def date_range(text: str, name: str) -> tuple[dt.datetime, dt.datetime]:
    """The half-open range of instants a FHIR date value of any precision covers."""
    match = _DATE.match(text)
    if match is None:
        raise bad_request(f"Search parameter {name}: {text!r} is not a FHIR date.", [name])
    parts = match.groupdict()
    zone = timezone.get_current_timezone()
    try:
        year = int(parts["year"])
        if not 1 < year < 9999:
            raise ValueError(year)  # the instants around it would not fit a datetime
        if parts["month"] is None:
            return _aware(dt.datetime(year, 1, 1), zone), _aware(dt.datetime(year + 1, 1, 1), zone)
        month = int(parts["month"])
        if parts["day"] is None:
            start = dt.datetime(year, month, 1)
            end = dt.datetime(year + (month == 12), month % 12 + 1, 1)
            return _aware(start, zone), _aware(end, zone)
        day = dt.datetime(year, month, int(parts["day"]))
        if parts["time"] is None:
            return _aware(day, zone), _aware(day + dt.timedelta(days=1), zone)
        instant = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(
            f"Search parameter {name}: {text!r} is not a real date.", [name]
        ) from None
    if instant.tzinfo is None:
        instant = _aware(instant, zone)
    step = dt.timedelta(seconds=1) if parts["time"].count(":") >= 2 else dt.timedelta(minutes=1)
    if "." in parts["time"]:
        step = dt.timedelta(microseconds=1)
    try:
        return instant.astimezone(dt.UTC), (instant + step).astimezone(dt.UTC)
    except OverflowError:
        raise bad_request(f"Search parameter {name}: {text!r} is out of range.", [name]) from None


def _aware(moment: dt.datetime, zone) -> dt.datetime:
    return timezone.make_aware(moment, zone)


@dataclass(frozen=True)
class FunctionParam(SearchParam):
    """A parameter whose meaning needs code: `function(name, modifier, value) -> Q`."""

    function: Callable[[str, str, str], Q] | None = None
    param_type: str = "special"
    accepted_modifiers: tuple[str, ...] = ()

    @property
    def type(self) -> str:  # type: ignore[override]
        return self.param_type

    @property
    def modifiers(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.accepted_modifiers

    def condition(self, name: str, modifier: str, value: str) -> Q:
        return self.function(name, modifier, value)
