from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ambula.accounts.policy import Capability, requires
from ambula.patients.clinical_forms import MedicationForm, MedicationStopForm
from ambula.patients.medications import medication_add, medication_stop, medication_strike
from ambula.patients.selectors import patient_get
from ambula.patients.views.chart import render_chart


@requires(Capability.EDIT_CLINICAL_CHART)
@require_POST
def medication_add_view(request: HttpRequest, patient_id) -> HttpResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    form = MedicationForm(request.POST)
    if form.is_valid():
        try:
            medication_add(actor=request.user, patient=patient, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("Medication added."))
            return redirect("patients:chart", patient_id=patient.pk)
    return render_chart(request, patient, medication_form=form)


@requires(Capability.EDIT_CLINICAL_CHART)
@require_POST
def medication_stop_view(request: HttpRequest, patient_id, medication_id) -> HttpResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    medication = get_object_or_404(patient.medications, pk=medication_id)
    form = MedicationStopForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["stopped_on"]))
        return redirect("patients:chart", patient_id=patient.pk)
    try:
        medication_stop(actor=request.user, medication=medication, **form.cleaned_data)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("%(name)s stopped.") % {"name": medication.name})
    return redirect("patients:chart", patient_id=patient.pk)


@requires(Capability.EDIT_CLINICAL_CHART)
@require_POST
def medication_strike_view(request: HttpRequest, patient_id, medication_id) -> HttpResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    medication = get_object_or_404(patient.medications, pk=medication_id)
    try:
        medication_strike(actor=request.user, medication=medication)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request, _("%(name)s marked entered in error.") % {"name": medication.name}
        )
    return redirect("patients:chart", patient_id=patient.pk)
