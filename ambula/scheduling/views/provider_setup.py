"""Scheduling set-up for providers: their profile (credentials, specialty, NPI, taxonomy),
taking them off the schedule, and their weekly template of blocks (the administrator).

A block change that would leave booked appointments outside the schedule is refused by its
service; the page then lists those appointments and offers to go ahead.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from ambula.accounts.policy import Capability, requires
from ambula.scheduling import schedule_templates, services
from ambula.scheduling.models import Provider, ScheduleBlock
from ambula.scheduling.selectors import (
    provider_candidate_list,
    provider_template,
    setup_block_get,
    setup_provider_get,
)
from ambula.scheduling.setup_forms import BlockForm, NewProviderForm, ProviderForm
from ambula.scheduling.views.common import attempt_change, refusal_context

# --- Providers -----------------------------------------------------------------------------------


@requires(Capability.MANAGE_PRACTICE)
@require_http_methods(["GET", "POST"])
def provider_add(request: HttpRequest) -> HttpResponse:
    candidates = provider_candidate_list(actor=request.user)
    form = NewProviderForm(request.POST or None, candidates=candidates)
    if form.is_valid():
        try:
            provider = services.provider_create(actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(
                request,
                _("%(provider)s can now be booked once you give them weekly hours below.")
                % {"provider": provider},
            )
            return redirect("scheduling:setup_provider", provider_id=provider.pk)
    return render(
        request,
        "scheduling/setup/provider_new.html",
        {"title": _("Add a provider"), "form": form, "has_candidates": candidates.exists()},
    )


@requires(Capability.MANAGE_PRACTICE)
@require_http_methods(["GET", "POST"])
def provider_edit(request: HttpRequest, provider_id) -> HttpResponse:
    provider = setup_provider_get(actor=request.user, provider_id=provider_id)
    form = ProviderForm.for_provider(provider, request.POST or None)
    if form.is_valid():
        try:
            services.provider_update(actor=request.user, provider=provider, **form.cleaned_data)
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(request, _("Profile saved."))
            return redirect("scheduling:setup_provider", provider_id=provider.pk)
    return render(
        request,
        "scheduling/setup/provider.html",
        {
            "title": str(provider),
            "provider": provider,
            "form": form,
            "template_days": provider_template(
                actor=request.user, provider=provider, today=timezone.localdate()
            ),
            "today_date": timezone.localdate(),
        },
    )


@requires(Capability.MANAGE_PRACTICE)
@require_POST
def provider_active(request: HttpRequest, provider_id) -> HttpResponse:
    provider = setup_provider_get(actor=request.user, provider_id=provider_id)
    wanted = request.POST.get("active")
    if wanted not in ("0", "1"):
        messages.error(request, _("Choose whether to take the provider off or put them back."))
    else:
        services.provider_set_active(actor=request.user, provider=provider, active=wanted == "1")
        if wanted == "1":
            messages.success(request, _("%(provider)s is bookable again.") % {"provider": provider})
        else:
            messages.success(
                request,
                _("%(provider)s is off the schedule; their booked visits stay.")
                % {"provider": provider},
            )
    return redirect("scheduling:setup_provider", provider_id=provider.pk)


# --- The weekly template -------------------------------------------------------------------------


def _block_page(
    request: HttpRequest, provider: Provider, form: BlockForm, *, block=None, warning=None
) -> HttpResponse:
    context = {
        "title": _("Edit block") if block else _("Add a block"),
        "provider": provider,
        "schedule_block": block,
        "form": form,
    }
    if warning is not None:
        context.update(refusal_context(request, warning, target=provider))
    return render(request, "scheduling/setup/block_form.html", context)


def _save_block(request: HttpRequest, form: BlockForm, fresh_block: Callable[[], ScheduleBlock]):
    """Save the block from the form; a refusal for booked appointments comes back to show."""

    def change(allow_orphans: bool) -> None:
        schedule_templates.schedule_block_save(
            actor=request.user,
            block=form.apply_to(fresh_block()),
            appointment_types=list(form.cleaned_data["appointment_types"]),
            allow_orphans=allow_orphans,
        )

    return attempt_change(request, change)


@requires(Capability.MANAGE_PRACTICE)
@require_http_methods(["GET", "POST"])
def block_add(request: HttpRequest, provider_id) -> HttpResponse:
    provider = setup_provider_get(actor=request.user, provider_id=provider_id)
    form = BlockForm(request.POST or None, today=timezone.localdate())
    warning = None
    if form.is_valid():
        try:
            warning = _save_block(request, form, lambda: ScheduleBlock(provider=provider))
        except ValidationError as error:
            form.add_service_error(error)
        else:
            if warning is None:
                messages.success(request, _("Block added."))
                return redirect("scheduling:setup_provider", provider_id=provider.pk)
    return _block_page(request, provider, form, warning=warning)


@requires(Capability.MANAGE_PRACTICE)
@require_http_methods(["GET", "POST"])
def block_edit(request: HttpRequest, block_id) -> HttpResponse:
    block = setup_block_get(actor=request.user, block_id=block_id)
    form = BlockForm(request.POST or None, block=block)
    warning = None
    if form.is_valid():
        try:
            warning = _save_block(
                request, form, lambda: setup_block_get(actor=request.user, block_id=block_id)
            )
        except ValidationError as error:
            form.add_service_error(error)
        else:
            if warning is None:
                messages.success(request, _("Block saved."))
                return redirect("scheduling:setup_provider", provider_id=block.provider_id)
    return _block_page(request, block.provider, form, block=block, warning=warning)


@requires(Capability.MANAGE_PRACTICE)
@require_POST
def block_delete(request: HttpRequest, block_id) -> HttpResponse:
    block = setup_block_get(actor=request.user, block_id=block_id)

    def change(allow_orphans: bool) -> None:
        schedule_templates.schedule_block_delete(
            actor=request.user,
            block=setup_block_get(actor=request.user, block_id=block_id),
            allow_orphans=allow_orphans,
        )

    warning = attempt_change(request, change)
    if warning is None:
        messages.success(request, _("Block removed."))
        return redirect("scheduling:setup_provider", provider_id=block.provider_id)
    return render(
        request,
        "scheduling/setup/block_delete.html",
        {
            "title": _("Remove block"),
            "schedule_block": block,
            "provider": block.provider,
            **refusal_context(request, warning, target=block.provider),
        },
    )
