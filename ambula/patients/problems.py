"""The problem list: the patient's conditions, each coded in ICD-10-CM.

A problem is added from the code table (its description is copied, so the entry keeps its
meaning when the code set moves on), then resolved, or struck out when entered in error.
Dates are days in the practice's time zone, so "today" is the practice's today.
"""

from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, F, IntegerField, OuterRef, Subquery, Value, When
from django.utils.timezone import localdate
from django.utils.timezone import now as timezone_now
from django.utils.translation import gettext_lazy as _

from ambula.accounts.models import User
from ambula.accounts.policy import Capability, require
from ambula.audit.services import record
from ambula.patients.models import Patient, Problem
from ambula.terminology.models import Icd10Code
from ambula.terminology.selectors import icd10_get

CATEGORY = "problem list"
NOTE_LENGTH = Problem._meta.get_field("note").max_length


def _today() -> date:
    """Today in the practice's time zone (the clock is `timezone_now`, which tests can move)."""
    return localdate(timezone_now())


def _field_error(field: str, message, code: str, params: dict | None = None) -> ValidationError:
    return ValidationError({field: ValidationError(message, code=code, params=params)})


def _check_note(note: str) -> str:
    # A TextField's max_length binds only forms; the service holds the line for other callers.
    note = note.strip()
    if len(note) > NOTE_LENGTH:
        raise _field_error(
            "note",
            _("Keep the note under %(limit)d characters."),
            "too_long",
            {"limit": NOTE_LENGTH},
        )
    return note


def _check_day(field: str, day: date | None, patient: Patient) -> None:
    if day is None:
        return
    if day > _today():
        raise _field_error(field, _("The date is in the future."), "future")
    if day < patient.date_of_birth:
        raise _field_error(field, _("The date is before the patient was born."), "before_birth")


@transaction.atomic
def problem_add(
    *, actor: User, patient: Patient, code: str, onset: date | None = None, note: str = ""
) -> Problem:
    """Add an active problem, coded and described from the ICD-10-CM table."""
    require(actor, Capability.EDIT_CLINICAL_CHART)
    # The patient's row lock makes two clinicians adding the same code take turns, so the
    # second one gets the clear message below (the unique constraint stands behind it).
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    if not code.strip():
        raise _field_error("code", _("Choose a code: search by code or by words."), "required")
    entry = icd10_get(code)
    if entry is None:
        raise _field_error(
            "code",
            _("“%(code)s” is not an ICD-10-CM code. Search by code or by words, then pick one."),
            "unknown_code",
            {"code": code.strip()[:20]},
        )
    _check_day("onset", onset, patient)
    note = _check_note(note)
    if patient.problems.filter(code=entry.code, status=Problem.Status.ACTIVE).exists():
        raise _field_error(
            "code",
            _("%(code)s is already on the active problem list."),
            "problem_recorded",
            {"code": entry.code},
        )
    problem = Problem(
        patient=patient, code=entry.code, description=entry.description, onset=onset, note=note
    )
    problem.full_clean()
    problem.save()
    record(
        actor=actor,
        action="patients.problem_added",
        category=CATEGORY,
        target=problem,
        patient=patient,
        changes={"code": problem.code, "onset": onset.isoformat() if onset else None},
    )
    return problem


@transaction.atomic
def problem_resolve(*, actor: User, problem: Problem, resolved_on: date | None = None) -> Problem:
    """Mark an active problem resolved, today unless another day is given."""
    require(actor, Capability.EDIT_CLINICAL_CHART)
    problem = Problem.objects.select_for_update().select_related("patient").get(pk=problem.pk)
    if problem.status != Problem.Status.ACTIVE:
        raise ValidationError(_("Only an active problem can be resolved."), code="not_active")
    resolved_on = resolved_on or _today()
    _check_day("resolved_on", resolved_on, problem.patient)
    if problem.onset and resolved_on < problem.onset:
        raise _field_error(
            "resolved_on",
            _("A problem cannot resolve before its onset (%(onset)s)."),
            "dates_out_of_order",
            {"onset": problem.onset.isoformat()},
        )
    problem.status = Problem.Status.RESOLVED
    problem.resolved_on = resolved_on
    problem.save(update_fields=["status", "resolved_on", "updated_at"])
    record(
        actor=actor,
        action="patients.problem_resolved",
        category=CATEGORY,
        target=problem,
        patient=problem.patient,
        changes={
            "status": {"old": Problem.Status.ACTIVE, "new": Problem.Status.RESOLVED},
            "resolved_on": {"old": None, "new": resolved_on.isoformat()},
        },
    )
    return problem


@transaction.atomic
def problem_strike(*, actor: User, problem: Problem) -> Problem:
    """Mark a problem entered in error: it leaves the list but stays in the record."""
    require(actor, Capability.EDIT_CLINICAL_CHART)
    problem = Problem.objects.select_for_update().select_related("patient").get(pk=problem.pk)
    if problem.status == Problem.Status.ENTERED_IN_ERROR:
        raise ValidationError(
            _("This problem is already marked entered in error."), code="already_struck"
        )
    before = problem.status
    problem.status = Problem.Status.ENTERED_IN_ERROR
    problem.save(update_fields=["status", "updated_at"])
    record(
        actor=actor,
        action="patients.problem_struck",
        category=CATEGORY,
        target=problem,
        patient=problem.patient,
        changes={"status": {"old": before, "new": problem.status}},
    )
    return problem


@transaction.atomic
def problem_update_note(*, actor: User, problem: Problem, note: str) -> Problem:
    """Replace the note on a listed problem (an empty note removes it)."""
    require(actor, Capability.EDIT_CLINICAL_CHART)
    problem = Problem.objects.select_for_update().select_related("patient").get(pk=problem.pk)
    if problem.status == Problem.Status.ENTERED_IN_ERROR:
        raise ValidationError(
            _("A problem entered in error cannot be changed."), code="already_struck"
        )
    note = _check_note(note)
    if note == problem.note:
        return problem
    before = problem.note
    problem.note = note
    problem.save(update_fields=["note", "updated_at"])
    record(
        actor=actor,
        action="patients.problem_note_updated",
        category=CATEGORY,
        target=problem,
        patient=problem.patient,
        changes={"note": {"old": before, "new": note}},
    )
    return problem


def problems_for_chart(*, actor: User, patient: Patient) -> list[Problem]:
    """Active problems, latest onset first, then resolved ones (the read is audited)."""
    require(actor, Capability.VIEW_CLINICAL_CHART)
    problems = list(
        patient.problems.exclude(status=Problem.Status.ENTERED_IN_ERROR)
        .annotate(
            # Categories may be listed, but a claim needs a billable code: the chart says so.
            billable=Subquery(Icd10Code.objects.filter(code=OuterRef("code")).values("billable")),
            resolved=Case(
                When(status=Problem.Status.ACTIVE, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            ),
        )
        .order_by(
            "resolved",
            F("resolved_on").desc(nulls_last=True),
            F("onset").desc(nulls_last=True),
            "code",
        )
    )
    record(actor=actor, action="patients.problems_viewed", category=CATEGORY, patient=patient)
    return problems
