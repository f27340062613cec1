"""The payer directory: everyone who sees patients can list it; the practice's administrators
manage it; the front desk and clinicians, who meet new insurers at the desk, may add to it.

Adding has two addresses because a view declares one capability: `payer_add` for those who
edit demographics, `payer_add_managed` for those who manage the practice. Both run the same
code and the same service, which accepts either.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ambula.accounts.policy import Capability, requires
from ambula.patients.coverage import (
    payer_create,
    payer_deactivate,
    payer_get,
    payer_list,
    payer_reactivate,
    payer_update,
)
from ambula.patients.coverage_forms import PayerForm, PayerSearchForm

PAGE_SIZE = 50


def _next_url(request: HttpRequest) -> str | None:
    """Where to go after adding a payer (back to a chart's coverage form), if it is ours."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if target and allowed else None


@requires(Capability.VIEW_DEMOGRAPHICS)
@require_GET
def payers(request: HttpRequest) -> HttpResponse:
    form = PayerSearchForm(request.GET)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    page = Paginator(payer_list(actor=request.user, query=query), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    search = request.GET.copy()
    search.pop("page", None)
    return render(
        request,
        "patients/payers.html",
        {
            "title": _("Payer directory"),
            "form": form,
            "query": query,
            "page": page,
            "pagination_query": search.urlencode(),
        },
    )


def _add(request: HttpRequest) -> HttpResponse:
    form = PayerForm(request.POST or None)
    next_url = _next_url(request)
    if form.is_valid():
        try:
            payer = payer_create(actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(
                request,
                _("%(name)s (%(payer_id)s) added to the payer directory.")
                % {"name": payer.name, "payer_id": payer.payer_id},
            )
            return redirect(next_url or "patients:payers")
    return render(
        request,
        "patients/payer_form.html",
        {"title": _("Add a payer"), "form": form, "payer": None, "next": next_url},
    )


@requires(Capability.EDIT_DEMOGRAPHICS)
@require_http_methods(["GET", "POST"])
def payer_add(request: HttpRequest) -> HttpResponse:
    return _add(request)


@requires(Capability.MANAGE_PRACTICE)
@require_http_methods(["GET", "POST"])
def payer_add_managed(request: HttpRequest) -> HttpResponse:
    return _add(request)


@requires(Capability.MANAGE_PRACTICE)
@require_http_methods(["GET", "POST"])
def payer_edit(request: HttpRequest, payer_id) -> HttpResponse:
    payer = payer_get(actor=request.user, payer_id=payer_id)
    form = PayerForm.for_payer(payer, request.POST or None)
    if form.is_valid():
        try:
            payer = payer_update(actor=request.user, payer=payer, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("%(name)s updated.") % {"name": payer.name})
            return redirect("patients:payers")
    return render(
        request,
        "patients/payer_form.html",
        {"title": _("Edit payer"), "form": form, "payer": payer, "next": None},
    )


@requires(Capability.MANAGE_PRACTICE)
@require_POST
def payer_deactivate_view(request: HttpRequest, payer_id) -> HttpResponse:
    payer = payer_get(actor=request.user, payer_id=payer_id)
    try:
        payer_deactivate(actor=request.user, payer=payer)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            _("%(name)s deactivated: new plans can no longer name it.") % {"name": payer.name},
        )
    return redirect("patients:payers")


@requires(Capability.MANAGE_PRACTICE)
@require_POST
def payer_reactivate_view(request: HttpRequest, payer_id) -> HttpResponse:
    payer = payer_get(actor=request.user, payer_id=payer_id)
    try:
        payer_reactivate(actor=request.user, payer=payer)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("%(name)s is back in use.") % {"name": payer.name})
    return redirect("patients:payers")
