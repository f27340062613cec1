"""The chart: one page, a banner and one section per part of the record.

Each section's reader checks the policy and records its own audited read; `render_chart`
puts them together so that a section's form, when a POST fails validation, comes back with
its errors in place.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from ambula.accounts.policy import Capability, can, requires
from ambula.audit.decorators import records_patient_access
from ambula.patients.allergies import active_allergies
from ambula.patients.forms import AllergyForm
from ambula.patients.models import Patient
from ambula.patients.selectors import patient_get


@requires(Capability.VIEW_DEMOGRAPHICS)
@require_GET
@records_patient_access(category="demographics", action="patients.chart_viewed")
def chart(request: HttpRequest, patient_id) -> HttpResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    return render_chart(request, patient)


def render_chart(request: HttpRequest, patient: Patient, **forms) -> HttpResponse:
    """The chart page; `forms` replaces a section's blank form (e.g. with its errors)."""
    actor = request.user
    clinical = can(actor, Capability.VIEW_CLINICAL_CHART)
    context = {"title": str(patient), "patient": patient, "clinical": clinical}
    # The front desk sees the banner, contact details and coverage, not the clinical sections.
    if clinical:
        context["allergies"] = active_allergies(actor=actor, patient=patient)
    if can(actor, Capability.EDIT_CLINICAL_CHART):
        context["allergy_form"] = AllergyForm()
    context.update(forms)
    return render(request, "patients/chart.html", context)
