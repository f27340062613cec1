"""The chart's coverage section: add a plan, correct it, end it, or strike it out."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from ambula.accounts.policy import Capability, requires
from ambula.patients.coverage import (
    coverage_add,
    coverage_end,
    coverage_get,
    coverage_strike,
    coverage_update,
)
from ambula.patients.coverage_forms import CoverageEndForm, CoverageForm
from ambula.patients.models import Coverage
from ambula.patients.selectors import patient_get
from ambula.patients.views.chart import render_chart


def _to_chart(patient) -> HttpResponse:
    chart_url = reverse("patients:chart", kwargs={"patient_id": patient.pk})
    return redirect(f"{chart_url}#coverage-heading")


@requires(Capability.EDIT_DEMOGRAPHICS)
@require_POST
def coverage_add_view(request: HttpRequest, patient_id) -> HttpResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    form = CoverageForm(request.POST, patient=patient)
    if form.is_valid():
        try:
            coverage = coverage_add(actor=request.user, patient=patient, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(
                request,
                _("%(priority)s plan with %(payer)s added.")
                % {"priority": coverage.get_priority_display(), "payer": coverage.payer.name},
            )
            return _to_chart(patient)
    return render_chart(request, patient, coverage_form=form)


@requires(Capability.EDIT_DEMOGRAPHICS)
@require_http_methods(["GET", "POST"])
def coverage_edit_view(request: HttpRequest, patient_id, coverage_id) -> HttpResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    coverage = coverage_get(actor=request.user, patient=patient, coverage_id=coverage_id)
    if coverage.status == Coverage.Status.ENTERED_IN_ERROR:
        messages.error(request, _("This plan was entered in error and can no longer be changed."))
        return _to_chart(patient)
    form = CoverageForm(request.POST or None, patient=patient, coverage=coverage)
    if form.is_valid():
        try:
            coverage_update(actor=request.user, coverage=coverage, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("Plan updated."))
            return _to_chart(patient)
    return render(
        request,
        "patients/coverage_edit.html",
        {
            "title": _("Edit plan"),
            "patient": patient,
            "coverage": coverage,
            "form": form,
            "end_form": CoverageEndForm(auto_id="end-%s"),
        },
    )


@requires(Capability.EDIT_DEMOGRAPHICS)
@require_POST
def coverage_end_view(request: HttpRequest, patient_id, coverage_id) -> HttpResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    coverage = get_object_or_404(patient.coverages, pk=coverage_id)
    form = CoverageEndForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Enter the last day covered as a date, or leave it empty."))
        return _to_chart(patient)
    try:
        coverage_end(
            actor=request.user,
            coverage=coverage,
            effective_to=form.cleaned_data["effective_to"],
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("%(payer)s plan ended.") % {"payer": coverage.payer.name})
    return _to_chart(patient)


@requires(Capability.EDIT_DEMOGRAPHICS)
@require_POST
def coverage_strike_view(request: HttpRequest, patient_id, coverage_id) -> HttpResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    coverage = get_object_or_404(patient.coverages, pk=coverage_id)
    try:
        coverage_strike(actor=request.user, coverage=coverage)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            _("%(payer)s plan marked entered in error.") % {"payer": coverage.payer.name},
        )
    return _to_chart(patient)
