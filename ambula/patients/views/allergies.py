from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ambula.accounts.policy import Capability, requires
from ambula.patients.allergies import allergies_none_known, allergy_add, allergy_status_change
from ambula.patients.forms import AllergyForm
from ambula.patients.selectors import patient_get
from ambula.patients.views.chart import render_chart


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
    return render_chart(request, patient, allergy_form=form)


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
