from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from ambula.accounts.policy import Capability, requires
from ambula.patients.forms import RegistrationForm
from ambula.patients.models import Patient
from ambula.patients.selectors import patient_search
from ambula.patients.services import patient_register


@requires(Capability.VIEW_DEMOGRAPHICS)
@require_GET
def search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")[:100]
    patients = patient_search(actor=request.user, query=query)
    if request.htmx:
        # The top bar's drop-down, or the results table of the search page.
        quick = request.GET.get("panel") == "quick"
        template = "patients/_quick_results.html" if quick else "patients/_results.html"
    else:
        template = "patients/search.html"
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
