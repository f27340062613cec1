"""Condition: the problem list (US Core Condition Problems and Health Concerns).

Each problem is a problem-list-item coded in ICD-10-CM. Writes go through the problem list's
services: adding (active, or active then resolved), resolving, replacing the note, and
striking out (entered in error, which reads as deleted). The code and the onset of a listed
problem never change: a wrong one is struck out and added again, as in the chart.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from ambula.accounts.policy import Capability
from ambula.fhir.mapper import US_CORE, ResourceMapper, instant, reference
from ambula.fhir.registry import register
from ambula.fhir.resources.chart_common import (
    always,
    code_of,
    codes_of,
    concept,
    day_text,
    fhir_day,
    including_deleted,
    invalid,
    notes_text,
    same_patient,
    subject_patient,
    unchanged,
)
from ambula.fhir.search_params import DateParam, FunctionParam, ReferenceParam, TokenParam
from ambula.patients import problems
from ambula.patients.models import Problem
from ambula.terminology.selectors import normalized_code

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
PROBLEM_LIST_ITEM = "problem-list-item"

Status = Problem.Status


def _category(name: str, modifier: str, value: str) -> Q:
    system, bar, code = value.rpartition("|")
    matches = code == PROBLEM_LIST_ITEM and (not bar or system in ("", CATEGORY))
    return always(matches != (modifier == "not"))


@register
class ConditionMapper(ResourceMapper):
    resource_type = "Condition"
    model = Problem
    profiles = (US_CORE + "us-core-condition-problems-health-concerns",)
    read_capability = Capability.VIEW_CLINICAL_CHART
    write_capability = Capability.EDIT_CLINICAL_CHART
    patient_path = "patient"
    search_params = {
        "patient": ReferenceParam(
            field="patient_id", targets=("Patient",), documentation="Whose problem list."
        ),
        "subject": ReferenceParam(field="patient_id", targets=("Patient",)),
        "category": FunctionParam(
            function=_category,
            param_type="token",
            accepted_modifiers=("not",),
            documentation="Every problem is a problem-list-item.",
        ),
        "clinical-status": TokenParam(
            field="status",
            system=CLINICAL,
            codes={"active": Status.ACTIVE, "resolved": Status.RESOLVED},
            documentation="active or resolved.",
        ),
        "code": TokenParam(field="code", system=ICD10, documentation="The ICD-10-CM code."),
        "onset-date": DateParam(field="onset", is_date=True, documentation="The onset day."),
        "abatement-date": DateParam(field="resolved_on", is_date=True),
        "recorded-date": DateParam(field="created_at"),
    }
    sort_fields = {"onset-date": "onset", "recorded-date": "created_at", "code": "code"}
    element_paths = {
        "code": "Condition.code",
        "onset": "Condition.onsetDateTime",
        "resolved_on": "Condition.abatementDateTime",
        "note": "Condition.note",
        "patient": "Condition.subject",
        "__all__": "Condition",
    }

    def queryset(self):
        # Struck-out problems are gone for searches; get() still finds them, to answer 410.
        return Problem.objects.exclude(status=Status.ENTERED_IN_ERROR).select_related("patient")

    def get(self, resource_id: str) -> Problem:
        return including_deleted(Problem.objects.select_related("patient"), self, resource_id)

    def is_deleted(self, obj: Problem) -> bool:
        return obj.status == Status.ENTERED_IN_ERROR

    def to_fhir(self, problem: Problem) -> dict:
        struck = problem.status == Status.ENTERED_IN_ERROR
        resource: dict[str, Any] = {}
        if not struck:  # FHIR forbids a clinical status on an entry made in error
            resource["clinicalStatus"] = concept(CLINICAL, problem.status)
        resource["verificationStatus"] = concept(
            VERIFICATION, "entered-in-error" if struck else "confirmed"
        )
        resource["category"] = [concept(CATEGORY, PROBLEM_LIST_ITEM, "Problem List Item")]
        resource["code"] = {
            "coding": [{"system": ICD10, "code": problem.code, "display": problem.description}],
            "text": problem.description,
        }
        resource["subject"] = reference("Patient", problem.patient_id)
        if problem.onset:
            resource["onsetDateTime"] = day_text(problem.onset)
        if problem.resolved_on:
            resource["abatementDateTime"] = day_text(problem.resolved_on)
        resource["recordedDate"] = instant(problem.created_at)
        if problem.note:
            resource["note"] = [{"text": problem.note}]
        return resource

    # --- writing ---------------------------------------------------------------------------

    def create(self, actor: Any, resource: dict) -> Problem:
        wanted = _incoming(resource)
        if wanted["verification"] == "entered-in-error":
            raise invalid(
                "Condition.verificationStatus", "A new condition cannot be entered in error."
            )
        patient = subject_patient(resource.get("subject"), "Condition.subject")
        problem = problems.problem_add(
            actor=actor,
            patient=patient,
            code=wanted["code"],
            onset=wanted["onset"],
            note=wanted["note"],
        )
        if wanted["status"] == Status.RESOLVED:
            problem = problems.problem_resolve(
                actor=actor, problem=problem, resolved_on=wanted["resolved_on"]
            )
        return self.get(str(problem.pk))

    def update(self, actor: Any, obj: Problem, resource: dict) -> Problem:
        wanted = _incoming(resource)
        same_patient(resource.get("subject"), obj.patient_id, "Condition.subject")
        if wanted["verification"] == "entered-in-error":
            problems.problem_strike(actor=actor, problem=obj)
            return self.get(str(obj.pk))
        unchanged("Condition.code", normalized_code(wanted["code"]), obj.code, "code")
        unchanged("Condition.onsetDateTime", wanted["onset"], obj.onset, "onset")
        if wanted["note"] != obj.note:
            obj = problems.problem_update_note(actor=actor, problem=obj, note=wanted["note"])
        if wanted["status"] != obj.status:
            if wanted["status"] != Status.RESOLVED:
                raise invalid(
                    "Condition.clinicalStatus",
                    "A resolved condition cannot become active again; add it anew.",
                )
            obj = problems.problem_resolve(
                actor=actor, problem=obj, resolved_on=wanted["resolved_on"]
            )
        elif obj.status == Status.RESOLVED:
            unchanged(
                "Condition.abatementDateTime", wanted["resolved_on"], obj.resolved_on, "abatement"
            )
        return self.get(str(obj.pk))

    def delete(self, actor: Any, obj: Problem) -> None:
        problems.problem_strike(actor=actor, problem=obj)


def _incoming(resource: dict) -> dict:
    """What an incoming Condition asks of the problem list, each element checked."""
    for element in ("onsetPeriod", "onsetAge", "onsetRange", "onsetString"):
        if element in resource:
            raise invalid(f"Condition.{element}", "Give the onset as onsetDateTime.")
    for element in ("abatementPeriod", "abatementAge", "abatementRange", "abatementString"):
        if element in resource:
            raise invalid(f"Condition.{element}", "Give the abatement as abatementDateTime.")
    categories = resource.get("category") or []
    if categories and not any(PROBLEM_LIST_ITEM in codes_of(item, CATEGORY) for item in categories):
        raise invalid("Condition.category", "This server keeps problem-list-item conditions only.")
    icd10 = codes_of(resource.get("code"), ICD10)
    if len(icd10) != 1:
        raise invalid("Condition.code", f"Condition.code must carry one ICD-10-CM code ({ICD10}).")
    clinical = code_of(
        resource.get("clinicalStatus"), CLINICAL, "Condition.clinicalStatus", ("active", "resolved")
    )
    verification = code_of(
        resource.get("verificationStatus"),
        VERIFICATION,
        "Condition.verificationStatus",
        ("confirmed", "entered-in-error"),
    )
    resolved_on = fhir_day(resource.get("abatementDateTime"), "Condition.abatementDateTime")
    if resolved_on is not None and clinical != "resolved":
        raise invalid(
            "Condition.abatementDateTime", "Only a resolved condition has an abatement date."
        )
    return {
        "code": icd10[0],
        "status": Status.RESOLVED if clinical == "resolved" else Status.ACTIVE,
        "verification": verification,
        "onset": fhir_day(resource.get("onsetDateTime"), "Condition.onsetDateTime"),
        "resolved_on": resolved_on,
        "note": notes_text(resource.get("note")),
    }
