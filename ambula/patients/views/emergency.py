"""Break-glass: the reason page, and the privacy officer's review queue."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from ambula.accounts.policy import Capability, requires
from ambula.accounts.views import safe_next
from ambula.audit.services import record
from ambula.patients.emergency import (
    REASON_MAX_LENGTH,
    current_grant,
    emergency_access_grant,
    emergency_access_grants,
    emergency_access_review,
    events_under,
)
from ambula.patients.models import EmergencyAccess
from ambula.patients.selectors import patient_get


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Why do you need this record now?"),
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "autofocus": True}),
        help_text=gettext_lazy("e.g. Covering for Dr. Okafor: patient called with chest pain."),
    )


class ReviewForm(forms.Form):
    outcome = forms.ChoiceField(
        label=gettext_lazy("Outcome"),
        choices=EmergencyAccess.Outcome.choices,
        widget=forms.RadioSelect,
    )
    note = forms.CharField(
        label=gettext_lazy("Note"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


@requires(Capability.VIEW_DEMOGRAPHICS)
@require_http_methods(["GET", "POST"])
def emergency_access(request: HttpRequest, patient_id) -> HttpResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id, check_restriction=False)
    chart_url = reverse("patients:chart", args=[patient.pk])
    next_url = request.POST.get("next") or request.GET.get("next") or chart_url
    # Only back into this patient's record: never an open redirect.
    if not next_url.startswith(f"/patients/{patient.pk}/"):
        next_url = chart_url
    if not patient.restricted or current_grant(request.user, patient):
        return redirect(safe_next(request, next_url))
    form = ReasonForm(request.POST or None)
    if form.is_valid():
        try:
            grant = emergency_access_grant(
                actor=request.user, patient=patient, reason=form.cleaned_data["reason"]
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            minutes = round((grant.expires_at - grant.created_at).total_seconds() / 60)
            messages.warning(
                request,
                _("Emergency access for %(minutes)d minutes. Everything you do is recorded.")
                % {"minutes": minutes},
            )
            return redirect(safe_next(request, next_url))
    return render(
        request,
        "patients/emergency_access.html",
        {"title": _("Restricted record"), "patient": patient, "form": form, "next": next_url},
    )


@requires(Capability.REVIEW_EMERGENCY_ACCESS)
@require_GET
def emergency_reviews(request: HttpRequest) -> HttpResponse:
    pending_only = request.GET.get("show") != "all"
    grants = emergency_access_grants(actor=request.user, pending_only=pending_only)
    page = Paginator(grants, 25).get_page(request.GET.get("page"))
    record(
        actor=request.user,
        action="patients.emergency_access_queue_viewed",
        category="emergency access",
        changes={"shown": len(page.object_list)},
    )
    return render(
        request,
        "patients/emergency_reviews.html",
        {
            "title": _("Emergency access"),
            "page": page,
            "pending_only": pending_only,
            "query": "show=pending" if pending_only else "show=all",
        },
    )


@requires(Capability.REVIEW_EMERGENCY_ACCESS)
@require_http_methods(["GET", "POST"])
def emergency_review(request: HttpRequest, grant_id) -> HttpResponse:
    grant = get_object_or_404(
        emergency_access_grants(actor=request.user).select_related("patient"), pk=grant_id
    )
    form = ReviewForm(request.POST or None)
    if form.is_valid():
        try:
            emergency_access_review(actor=request.user, grant=grant, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("Review saved."))
            return redirect("patients:emergency_reviews")
    events = list(events_under(grant)[:200])
    record(
        actor=request.user,
        action="patients.emergency_access_queue_viewed",
        category="emergency access",
        target=grant,
        patient_id=grant.patient_id,
    )
    return render(
        request,
        "patients/emergency_review.html",
        {"title": _("Emergency access review"), "grant": grant, "events": events, "form": form},
    )
