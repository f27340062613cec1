from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ambula.accounts.policy import Capability, requires
from ambula.patients.clinical_forms import HistoryEntryForm, SocialHistoryForm
from ambula.patients.history import history_add, history_strike, social_history_update
from ambula.patients.selectors import patient_get
from ambula.patients.views.chart import render_chart


@requires(Capability.EDIT_CLINICAL_CHART)
@require_POST
def history_add_view(request: HttpRequest, patient_id) -> HttpResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    form = HistoryEntryForm(request.POST)
    if form.is_valid():
        try:
            history_add(actor=request.user, patient=patient, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("History added."))
            return redirect("patients:chart", patient_id=patient.pk)
    return render_chart(request, patient, history_form=form)


@requires(Capability.EDIT_CLINICAL_CHART)
@require_POST
def history_strike_view(request: HttpRequest, patient_id, history_entry_id) -> HttpResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    entry = get_object_or_404(patient.history, pk=history_entry_id)
    try:
        history_strike(actor=request.user, entry=entry)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request, _("%(condition)s marked entered in error.") % {"condition": entry.condition}
        )
    return redirect("patients:chart", patient_id=patient.pk)


@requires(Capability.EDIT_CLINICAL_CHART)
@require_POST
def social_history_view(request: HttpRequest, patient_id) -> HttpResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    form = SocialHistoryForm(request.POST)
    if form.is_valid():
        try:
            social_history_update(actor=request.user, patient=patient, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("Social history saved."))
            return redirect("patients:chart", patient_id=patient.pk)
    return render_chart(request, patient, social_history_form=form)
