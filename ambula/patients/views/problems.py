from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ambula.accounts.policy import Capability, requires
from ambula.patients.problem_forms import ProblemForm, ProblemNoteForm, ProblemResolveForm
from ambula.patients.problems import (
    problem_add,
    problem_resolve,
    problem_strike,
    problem_update_note,
)
from ambula.patients.selectors import patient_get
from ambula.patients.views.chart import render_chart


def _back_to_list(patient) -> HttpResponse:
    response = redirect("patients:chart", patient_id=patient.pk)
    response["Location"] += "#problems-heading"
    return response


@requires(Capability.EDIT_CLINICAL_CHART)
@require_POST
def problem_add_view(request: HttpRequest, patient_id) -> HttpResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    form = ProblemForm(request.POST)
    if form.is_valid():
        try:
            problem = problem_add(actor=request.user, patient=patient, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(
                request, _("%(code)s added to the problem list.") % {"code": problem.code}
            )
            return _back_to_list(patient)
    return render_chart(request, patient, problem_form=form)


@requires(Capability.EDIT_CLINICAL_CHART)
@require_POST
def problem_resolve_view(request: HttpRequest, patient_id, problem_id) -> HttpResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    problem = get_object_or_404(patient.problems, pk=problem_id)
    form = ProblemResolveForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["resolved_on"]))
        return _back_to_list(patient)
    try:
        problem_resolve(actor=request.user, problem=problem, **form.cleaned_data)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("%(code)s marked resolved.") % {"code": problem.code})
    return _back_to_list(patient)


@requires(Capability.EDIT_CLINICAL_CHART)
@require_POST
def problem_strike_view(request: HttpRequest, patient_id, problem_id) -> HttpResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    problem = get_object_or_404(patient.problems, pk=problem_id)
    try:
        problem_strike(actor=request.user, problem=problem)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("%(code)s marked entered in error.") % {"code": problem.code})
    return _back_to_list(patient)


@requires(Capability.EDIT_CLINICAL_CHART)
@require_POST
def problem_note_view(request: HttpRequest, patient_id, problem_id) -> HttpResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    problem = get_object_or_404(patient.problems, pk=problem_id)
    form = ProblemNoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["note"]))
        return _back_to_list(patient)
    try:
        problem_update_note(actor=request.user, problem=problem, **form.cleaned_data)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Note on %(code)s saved.") % {"code": problem.code})
    return _back_to_list(patient)
