from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ambula.accounts.policy import Capability, can, requires
from ambula.audit.decorators import records_patient_access
from ambula.patients.allergies import (
    active_allergies,
    allergies_none_known,
    allergy_add,
    allergy_status_change,
)
from ambula.patients.forms import AllergyForm, RegistrationForm
from ambula.patients.models import Patient
from ambula.patients.selectors import patient_get, patient_search
from ambula.patients.services import patient_register


@requires(Capability.VIEW_DEMOGRAPHICS)
@require_GET
def search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")[:100]
    patients = patient_search(actor=request.user, query=query)
    template = "patients/_results.html" if request.htmx else "patients/search.html"
    return render(request, template, {"title": _("Patients"), "query": query, "patients": patients})


@requires(Capability.EDIT_DEMOGRAPHICS)
@require_http_methods(["GET", "POST"])
def register(request: HttpRequest) -> HttpResponse:
    form = RegistrationForm(request.POST or None)
    duplicates = []
    if form.is_valid():
        try:
            patient = patient_register(
                actor=request.user,
                allow_duplicate=form.cleaned_data["allow_duplicate"],
                **form.details(),
            )
        except ValidationError as error:
            if getattr(error, "code", None) == "possible_duplicate":
                duplicates = Patient.objects.filter(pk__in=error.params["candidates"])
                form.data = form.data.copy()
                form.data["allow_duplicate"] = "on"
            else:
                form.add_error(None, error)
        else:
            messages.success(
                request,
                _("Registered %(name)s, MRN %(mrn)s.")
                % {"name": f"{patient.given_name} {patient.family_name}", "mrn": patient.mrn},
            )
            return redirect("patients:chart", patient_id=patient.pk)
    return render(
        request,
        "patients/register.html",
        {"title": _("Register a patient"), "form": form, "duplicates": duplicates},
    )


@requires(Capability.VIEW_DEMOGRAPHICS)
@require_GET
@records_patient_access(category="demographics", action="patients.chart_viewed")
def chart(request: HttpRequest, patient_id) -> HttpResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    return _chart(request, patient, AllergyForm())


def _chart(request: HttpRequest, patient, allergy_form) -> HttpResponse:
    clinical = can(request.user, Capability.VIEW_CLINICAL_CHART)
    return render(
        request,
        "patients/chart.html",
        {
            "title": str(patient),
            "patient": patient,
            # The front desk sees the banner and contact details, not the clinical sections.
            "allergies": active_allergies(actor=request.user, patient=patient)
            if clinical
            else None,
            "allergy_form": allergy_form,
        },
    )


@requires(Capability.EDIT_CLINICAL_CHART)
@require_POST
def allergy_add_view(request: HttpRequest, patient_id) -> HttpResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    form = AllergyForm(request.POST)
    if form.is_valid():
        try:
            allergy_add(actor=request.user, patient=patient, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("Allergy added."))
            return redirect("patients:chart", patient_id=patient.pk)
    return _chart(request, patient, form)


@requires(Capability.EDIT_CLINICAL_CHART)
@require_POST
def allergy_status_view(request: HttpRequest, patient_id, allergy_id, status: str) -> HttpResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    allergy = get_object_or_404(patient.allergies, pk=allergy_id)
    try:
        allergy_status_change(actor=request.user, allergy=allergy, status=status)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("patients:chart", patient_id=patient.pk)


@requires(Capability.EDIT_CLINICAL_CHART)
@require_POST
def allergies_none_view(request: HttpRequest, patient_id) -> HttpResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    try:
        allergies_none_known(actor=request.user, patient=patient)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("patients:chart", patient_id=patient.pk)
