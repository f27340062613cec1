"""The patient's details page, and the contacts on the chart's Contact section."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from ambula.accounts.policy import Capability, requires
from ambula.patients.demographic_forms import ContactForm, DemographicsForm
from ambula.patients.demographics import (
    ChangedElsewhere,
    contact_add,
    contact_remove,
    patient_opened_for_edit,
    patient_update,
)
from ambula.patients.selectors import patient_get
from ambula.patients.views.chart import render_chart


@requires(Capability.EDIT_DEMOGRAPHICS)
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, patient_id) -> HttpResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    if request.method == "GET":
        patient = patient_opened_for_edit(actor=request.user, patient=patient)
        form = DemographicsForm(instance=patient, actor=request.user)
    else:
        form = DemographicsForm(request.POST, instance=patient, actor=request.user)
        if form.is_valid():
            try:
                saved = patient_update(
                    actor=request.user,
                    patient=patient,
                    if_unchanged_since=form.cleaned_data["opened_version"],
                    **form.changes(),
                )
            except ValidationError as error:
                form.add_service_error(error)
            except ChangedElsewhere as error:
                form.add_error(None, error.message)
            else:
                if saved.updated_at == patient.updated_at:
                    messages.info(request, _("Nothing had changed: the details are as they were."))
                else:
                    messages.success(
                        request,
                        _("Saved the details of %(name)s.")
                        % {"name": f"{saved.given_name} {saved.family_name}"},
                    )
                return redirect("patients:chart", patient_id=patient.pk)
    return render(
        request,
        "patients/edit.html",
        {
            "title": _("Edit details · %(patient)s") % {"patient": patient},
            "patient": patient,
            "form": form,
        },
    )


@requires(Capability.EDIT_DEMOGRAPHICS)
@require_POST
def contact_add_view(request: HttpRequest, patient_id) -> HttpResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    form = ContactForm(request.POST)
    if form.is_valid():
        try:
            contact = contact_add(actor=request.user, patient=patient, **form.cleaned_data)
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(request, _("Added %(name)s.") % {"name": contact.name})
            return redirect("patients:chart", patient_id=patient.pk)
    return render_chart(request, patient, contact_form=form)


@requires(Capability.EDIT_DEMOGRAPHICS)
@require_POST
def contact_remove_view(request: HttpRequest, patient_id, contact_id) -> HttpResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    contact = get_object_or_404(patient.contacts, pk=contact_id)
    contact_remove(actor=request.user, contact=contact)
    messages.success(request, _("Removed %(name)s.") % {"name": contact.name})
    return redirect("patients:chart", patient_id=patient.pk)
