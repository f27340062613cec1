"""MedicationStatement: the reconciled medication list (plain R4; US Core has no profile).

The domain keeps the medication's name as text, its dose and frequency as text (together
they are the dosage's text) and its route from a short list, sent as SNOMED CT route codes.
Writes go through the medication list's services: adding (active, or active then stopped),
stopping, striking out (entered in error, which reads as deleted).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from ambula.accounts.policy import Capability
from ambula.fhir.mapper import ResourceMapper, instant, reference
from ambula.fhir.registry import register
from ambula.fhir.resources.chart_common import (
    codes_of,
    day_text,
    fhir_day,
    including_deleted,
    invalid,
    notes_text,
    same_patient,
    subject_patient,
    unchanged,
)
from ambula.fhir.search_params import (
    DATE_PREFIXES,
    FunctionParam,
    ReferenceParam,
    TokenParam,
    date_range,
)
from ambula.patients import medications
from ambula.patients.models import Medication

SNOMED = "http://snomed.info/sct"
Route = Medication.Route
Status = Medication.Status

# SNOMED CT route of administration codes (FHIR's route-codes value set).
ROUTES = {
    Route.ORAL: ("26643006", "Oral route"),
    Route.TOPICAL: ("6064005", "Topical route"),
    Route.INHALED: ("447694001", "Respiratory tract route"),
    Route.SUBCUTANEOUS: ("34206005", "Subcutaneous route"),
    Route.INTRAMUSCULAR: ("78421000", "Intramuscular route"),
    Route.INTRAVENOUS: ("47625008", "Intravenous route"),
    Route.SUBLINGUAL: ("37839007", "Sublingual route"),
    Route.NASAL: ("46713006", "Nasal route"),
    Route.OPHTHALMIC: ("54485002", "Ophthalmic route"),
    Route.OTIC: ("10547007", "Otic route"),
    Route.RECTAL: ("37161004", "Rectal route"),
    Route.VAGINAL: ("16857009", "Vaginal route"),
    Route.TRANSDERMAL: ("45890007", "Transdermal route"),
}
ROUTE_OF_CODE = {code: route for route, (code, _display) in ROUTES.items()}
# "completed" and "stopped" both end up as the list's "stopped": it does not tell them apart.
STATUSES = {"active": Status.ACTIVE, "stopped": Status.STOPPED, "completed": Status.STOPPED}


def _effective(name: str, modifier: str, value: str) -> Q:
    """Whether the period taken [started_on, stopped_on] meets the date (open ends unknown)."""
    prefixed = value[:2] in DATE_PREFIXES
    prefix = value[:2] if prefixed else "eq"
    start, end = date_range(value[2:] if prefixed else value, name)
    start, end = start.date(), end.date()
    began_before_end = Q(started_on__isnull=True) | Q(started_on__lt=end)
    began_before_start = Q(started_on__isnull=True) | Q(started_on__lt=start)
    still_on_at_start = Q(stopped_on__isnull=True) | Q(stopped_on__gte=start)
    still_on_after_end = Q(stopped_on__isnull=True) | Q(stopped_on__gte=end)
    match prefix:
        case "eq" | "ap":
            return began_before_end & still_on_at_start
        case "ge":
            return still_on_at_start
        case "gt" | "sa":
            return still_on_after_end
        case "le":
            return began_before_end
        case "lt" | "eb":
            return began_before_start
        case _:  # ne
            return ~(began_before_end & still_on_at_start)


@register
class MedicationStatementMapper(ResourceMapper):
    resource_type = "MedicationStatement"
    model = Medication
    read_capability = Capability.VIEW_CLINICAL_CHART
    write_capability = Capability.EDIT_CLINICAL_CHART
    patient_path = "patient"
    search_params = {
        "patient": ReferenceParam(
            field="patient_id", targets=("Patient",), documentation="Whose medication list."
        ),
        "subject": ReferenceParam(field="patient_id", targets=("Patient",)),
        "status": TokenParam(
            field="status",
            codes={"active": Status.ACTIVE, "stopped": Status.STOPPED},
            documentation="active or stopped.",
        ),
        "effective": FunctionParam(
            function=_effective,
            param_type="date",
            documentation="The period the medication was taken meets this date.",
        ),
    }
    sort_fields = {"effective": "started_on"}
    element_paths = {
        "name": "MedicationStatement.medicationCodeableConcept.text",
        "dose": "MedicationStatement.dosage[0].text",
        "route": "MedicationStatement.dosage[0].route",
        "started_on": "MedicationStatement.effectivePeriod.start",
        "stopped_on": "MedicationStatement.effectivePeriod.end",
        "note": "MedicationStatement.note",
        "patient": "MedicationStatement.subject",
        "__all__": "MedicationStatement.effectivePeriod",
    }

    def queryset(self):
        return Medication.objects.exclude(status=Status.ENTERED_IN_ERROR).select_related("patient")

    def get(self, resource_id: str) -> Medication:
        return including_deleted(Medication.objects.select_related("patient"), self, resource_id)

    def is_deleted(self, obj: Medication) -> bool:
        return obj.status == Status.ENTERED_IN_ERROR

    def to_fhir(self, medication: Medication) -> dict:
        resource: dict[str, Any] = {
            "status": medication.status.replace("_", "-"),
            "medicationCodeableConcept": {"text": medication.name},
            "subject": reference("Patient", medication.patient_id),
        }
        period = {}
        if medication.started_on:
            period["start"] = day_text(medication.started_on)
        if medication.stopped_on:
            period["end"] = day_text(medication.stopped_on)
        if period:
            resource["effectivePeriod"] = period
        resource["dateAsserted"] = instant(medication.created_at)
        dosage: dict[str, Any] = {}
        text = " ".join(part for part in (medication.dose, medication.frequency) if part)
        if text:
            dosage["text"] = text
        if medication.route in ROUTES:
            code, display = ROUTES[medication.route]
            dosage["route"] = {
                "coding": [{"system": SNOMED, "code": code, "display": display}],
                "text": medication.get_route_display(),
            }
        else:
            dosage["route"] = {"text": medication.get_route_display()}
        resource["dosage"] = [dosage]
        if medication.note:
            resource["note"] = [{"text": medication.note}]
        return resource

    # --- writing ---------------------------------------------------------------------------

    def create(self, actor: Any, resource: dict) -> Medication:
        wanted = _incoming(resource)
        if wanted["status"] == Status.ENTERED_IN_ERROR:
            raise invalid(
                "MedicationStatement.status", "A new medication cannot be entered in error."
            )
        patient = subject_patient(resource.get("subject"), "MedicationStatement.subject")
        medication = medications.medication_add(
            actor=actor,
            patient=patient,
            name=wanted["name"],
            dose=wanted["dose"],
            route=wanted["route"],
            started_on=wanted["started_on"],
            note=wanted["note"],
        )
        if wanted["status"] == Status.STOPPED:
            medication = medications.medication_stop(
                actor=actor, medication=medication, stopped_on=wanted["stopped_on"]
            )
        return self.get(str(medication.pk))

    def update(self, actor: Any, obj: Medication, resource: dict) -> Medication:
        wanted = _incoming(resource)
        same_patient(resource.get("subject"), obj.patient_id, "MedicationStatement.subject")
        if wanted["status"] == Status.ENTERED_IN_ERROR:
            medications.medication_strike(actor=actor, medication=obj)
            return self.get(str(obj.pk))
        path = "MedicationStatement."
        unchanged(path + "medicationCodeableConcept", wanted["name"], obj.name, "medication")
        dosage_text = " ".join(part for part in (obj.dose, obj.frequency) if part)
        unchanged(path + "dosage[0].text", wanted["dose"], dosage_text, "dosage")
        unchanged(path + "dosage[0].route", wanted["route"], obj.route, "route")
        unchanged(path + "effectivePeriod.start", wanted["started_on"], obj.started_on, "start")
        unchanged(path + "note", wanted["note"], obj.note, "note")
        if wanted["status"] == obj.status:
            if obj.status == Status.STOPPED:
                unchanged(path + "effectivePeriod.end", wanted["stopped_on"], obj.stopped_on, "end")
            return obj
        if obj.status != Status.ACTIVE:
            raise invalid(
                path + "status", "A stopped medication cannot become active again; add it anew."
            )
        medications.medication_stop(actor=actor, medication=obj, stopped_on=wanted["stopped_on"])
        return self.get(str(obj.pk))

    def delete(self, actor: Any, obj: Medication) -> None:
        medications.medication_strike(actor=actor, medication=obj)


def _incoming(resource: dict) -> dict:
    """What an incoming MedicationStatement asks of the medication list, each element checked."""
    path = "MedicationStatement."
    if "medicationReference" in resource:
        raise invalid(
            path + "medicationReference", "Name the medication in medicationCodeableConcept."
        )
    medication = resource.get("medicationCodeableConcept") or {}
    name = (medication.get("text") or "").strip() or next(
        (c["display"].strip() for c in medication.get("coding", []) if c.get("display")), ""
    )
    if not name:
        raise invalid(path + "medicationCodeableConcept", "Name the medication in its text.")
    status = resource.get("status")
    if status == "entered-in-error":
        status_value = Status.ENTERED_IN_ERROR
    elif status in STATUSES:
        status_value = STATUSES[status]
    else:
        raise invalid(
            path + "status",
            "The status must be active, completed, stopped or entered-in-error.",
            "code-invalid",
        )
    if "effectiveDateTime" in resource:
        raise invalid(path + "effectiveDateTime", "Give the dates as effectivePeriod.")
    period = resource.get("effectivePeriod") or {}
    stopped_on = fhir_day(period.get("end"), path + "effectivePeriod.end")
    if stopped_on is not None and status_value != Status.STOPPED:
        raise invalid(path + "effectivePeriod.end", "Only a stopped medication has an end date.")
    dosages = resource.get("dosage") or []
    if len(dosages) > 1:
        raise invalid(path + "dosage", "Record one dosage per medication.")
    dosage = dosages[0] if dosages else {}
    return {
        "name": name,
        "dose": (dosage.get("text") or "").strip(),
        "route": _route(dosage.get("route")),
        "status": status_value,
        "started_on": fhir_day(period.get("start"), path + "effectivePeriod.start"),
        "stopped_on": stopped_on,
        "note": notes_text(resource.get("note")),
    }


def _route(value: Any) -> str:
    if not value:
        return Route.OTHER
    codes = codes_of(value, SNOMED)
    if not codes:
        return Route.OTHER  # a route in words only is kept as "other"
    if codes[0] not in ROUTE_OF_CODE:
        raise invalid(
            "MedicationStatement.dosage[0].route",
            f"The route {codes[0]} is not one this practice records.",
            "code-invalid",
        )
    return ROUTE_OF_CODE[codes[0]]
