"""Merging a duplicate record into the one that survives (administrators)."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from ambula.accounts.policy import Capability, requires
from ambula.accounts.views import recent_authentication_required
from ambula.patients.merge import patient_merge
from ambula.patients.models import Patient
from ambula.patients.mrn import mrn_is_valid
from ambula.patients.selectors import patient_get


class MergeForm(forms.Form):
    survivor_mrn = forms.CharField(
        label=gettext_lazy("MRN of the record to keep"),
        max_length=8,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )

    def clean_survivor_mrn(self):
        mrn = self.cleaned_data["survivor_mrn"].strip()
        if not mrn_is_valid(mrn):
            raise forms.ValidationError(_("Enter an MRN as printed on the chart, like 10000016."))
        return mrn


def _record_counts(patient: Patient) -> dict[str, int]:
    return {
        _("Coverage"): patient.coverages.count(),
        _("Problems"): patient.problems.count(),
        _("Allergies"): patient.allergies.count(),
        _("Medications"): patient.medications.count(),
        _("History"): patient.history.count(),
        _("Documents"): patient.documents.count(),
        _("Contacts"): patient.contacts.count(),
    }


@requires(Capability.MERGE_PATIENTS)
@require_http_methods(["GET", "POST"])
@recent_authentication_required
def merge(request: HttpRequest, patient_id) -> HttpResponse:
    duplicate = patient_get(actor=request.user, patient_id=patient_id, check_restriction=False)
    form = MergeForm(request.POST or request.GET or None)
    survivor = None
    if form.is_valid():
        survivor = Patient.objects.filter(mrn=form.cleaned_data["survivor_mrn"]).first()
        if survivor is None:
            form.add_error("survivor_mrn", _("No patient has this MRN."))
        elif survivor.merged_into_id:
            form.add_error("survivor_mrn", _("That record was itself merged away."))
            survivor = None
        elif survivor.pk == duplicate.pk:
            form.add_error("survivor_mrn", _("A record cannot be merged into itself."))
            survivor = None
        elif request.method == "POST":
            try:
                patient_merge(actor=request.user, duplicate=duplicate, survivor=survivor)
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(
                    request,
                    _("Merged MRN %(old)s into %(new)s.")
                    % {"old": duplicate.mrn, "new": survivor.mrn},
                )
                return redirect("patients:chart", patient_id=survivor.pk)
    survivor_counts = _record_counts(survivor) if survivor else {}
    return render(
        request,
        "patients/merge.html",
        {
            "title": _("Merge a duplicate record"),
            "form": form,
            "duplicate": duplicate,
            "survivor": survivor,
            "counts": [
                (label, count, survivor_counts.get(label))
                for label, count in _record_counts(duplicate).items()
            ],
        },
    )
