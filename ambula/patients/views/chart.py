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
from ambula.audit.services import batched
from ambula.patients.allergies import active_allergies
from ambula.patients.clinical_forms import HistoryEntryForm, MedicationForm, SocialHistoryForm
from ambula.patients.coverage import coverage_for_chart
from ambula.patients.coverage_forms import CoverageForm
from ambula.patients.demographic_forms import ContactForm
from ambula.patients.demographics import patient_contacts
from ambula.patients.document_forms import DocumentUploadForm
from ambula.patients.documents import categories_editable_by, documents_for_chart
from ambula.patients.forms import AllergyForm
from ambula.patients.history import history_for_chart
from ambula.patients.medications import medications_for_chart
from ambula.patients.models import Patient
from ambula.patients.problem_forms import ProblemForm
from ambula.patients.problems import problems_for_chart
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
    # The sections' audited reads go onto the chain together: one turn at its head, not seven.
    with batched():
        context.update(_sections(actor, patient, clinical))
    context["summary"] = _summary(context)
    context.update(forms)
    return render(request, "patients/chart.html", context)


def _sections(actor, patient: Patient, clinical: bool) -> dict:
    """Each section's entries (each reader records its own audited read) and blank forms."""
    context = {}
    # The front desk sees the banner, contact details and coverage, not the clinical sections.
    if clinical:
        context["problems"] = problems_for_chart(actor=actor, patient=patient)
        context["allergies"] = active_allergies(actor=actor, patient=patient)
        context["medications"] = medications_for_chart(actor=actor, patient=patient)
        context["history"] = history_for_chart(actor=actor, patient=patient)
    if can(actor, Capability.EDIT_CLINICAL_CHART):
        context["problem_form"] = ProblemForm()
        context["allergy_form"] = AllergyForm()
        context["medication_form"] = MedicationForm()
        context["history_form"] = HistoryEntryForm()
        context["social_history_form"] = SocialHistoryForm.for_record(
            context["history"].social if clinical else None
        )
    if can(actor, Capability.VIEW_DEMOGRAPHICS):
        context["coverages"] = coverage_for_chart(actor=actor, patient=patient)
        context["contacts"] = patient_contacts(actor=actor, patient=patient)
    if can(actor, Capability.EDIT_DEMOGRAPHICS):
        context["coverage_form"] = CoverageForm(patient=patient)
        context["contact_form"] = ContactForm()
    # Documents: everyone who opens the chart sees the categories they may (the reader filters).
    context["documents"] = documents_for_chart(actor=actor, patient=patient)
    if categories_editable_by(actor):
        context["document_form"] = DocumentUploadForm(actor=actor)
    return context


def _summary(context: dict) -> dict:
    """The top of the chart at a glance, from what the sections already read (no extra reads)."""
    active = lambda entries: [entry for entry in entries if entry.status == "active"]  # noqa: E731
    return {
        "problems": active(context.get("problems", [])),
        "medications": active(context.get("medications", [])),
        "coverages": active(context.get("coverages", [])),
    }
