"""Pieces the chart-list mappers share (Condition, AllergyIntolerance, MedicationStatement...).

Coded values in and out, days in and out, and the rule every list obeys: an incoming
resource may change only what the domain's services can change, and anything else is a 422
that names the element.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.timezone import localdate

from ambula.fhir.errors import FhirError, not_found
from ambula.fhir.mapper import reference_id
from ambula.patients.models import Patient


def concept(system: str, code: str, display: str | None = None) -> dict:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def codes_of(value: Any, system: str) -> list[str]:
    """The codes a CodeableConcept carries in this system."""
    if not isinstance(value, dict):
        return []
    return [
        coding["code"]
        for coding in value.get("coding", [])
        if coding.get("system") == system and coding.get("code")
    ]


def code_of(value: Any, system: str, path: str, allowed: tuple[str, ...]) -> str | None:
    """The one code of `system` in a CodeableConcept (None when absent), or a 422."""
    if value is None:
        return None
    found = codes_of(value, system)
    if len(set(found)) != 1 or found[0] not in allowed:
        raise invalid(path, f"{path} must carry one code of {system}: {', '.join(allowed)}.")
    return found[0]


def invalid(path: str, message: str, code: str = "invalid") -> FhirError:
    return FhirError(422, code, message, expression=[path])


def day_text(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def fhir_day(value: Any, path: str) -> dt.date | None:
    """A FHIR date or dateTime as the practice's day; the domain keeps whole days only."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) < 10:
        raise invalid(path, f"{path} must be a whole day (YYYY-MM-DD) or a date and time.")
    try:
        if len(value) == 10:
            return dt.date.fromisoformat(value)
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(path, f"{path} is not a real date.") from None
    return moment.date() if moment.tzinfo is None else localdate(moment)


def notes_text(value: Any) -> str:
    """The annotations' texts as the one note the domain keeps."""
    if not value:
        return ""
    return "\n\n".join(note.get("text", "").strip() for note in value if note.get("text"))


def subject_patient(value: Any, path: str) -> Patient:
    """The patient a reference points to, or a 422 naming the element."""
    key = reference_id(value, "Patient", path)
    try:
        patient = Patient.objects.filter(pk=key).first()
    except (ValueError, ValidationError):
        patient = None
    if patient is None:
        raise invalid(path, f"{path} points to no patient of this practice.", "not-found")
    return patient


def same_patient(value: Any, current_patient_id, path: str) -> None:
    key = reference_id(value, "Patient", path)
    if key != str(current_patient_id):
        raise invalid(path, f"{path} cannot move the record to another patient.")


def unchanged(path: str, new: Any, old: Any, what: str) -> None:
    """A 422 when an element differs from the record and no service can change it."""
    if new != old:
        raise invalid(
            path,
            f"The {what} cannot be changed here; mark the record entered in error and add "
            "it again.",
        )


def always(matches: bool) -> Q:
    """A condition true of every record, or of none (for codes every record shares)."""
    return Q() if matches else Q(pk__in=[])


def including_deleted(queryset, mapper, resource_id: str):
    """One record, struck out or not: a mapper whose queryset() hides struck-out records for
    searches still finds them here, so that a read answers 410 rather than 404."""
    try:
        return queryset.get(pk=resource_id)
    except (queryset.model.DoesNotExist, ValueError, ValidationError):
        raise not_found(mapper.resource_type, resource_id) from None
