"""Scheduling set-up: locations (hours, rooms, equipment), providers and their weekly
templates, appointment types (the administrator), and time off and closures (the front desk).

A change that would leave booked appointments outside the schedule is refused by its service;
the page then lists those appointments and offers to go ahead. The confirmation names the
appointments it covers, so a change that would affect others asks again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import time, timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ambula.accounts.policy import Capability, requires
from ambula.audit.services import record
from ambula.scheduling import services
from ambula.scheduling.models import Location, Provider, ScheduleBlock
from ambula.scheduling.selectors import (
    appointment_list_by_ids,
    exception_get,
    provider_candidate_list,
    provider_template,
    setup_block_get,
    setup_location_get,
    setup_location_list,
    setup_provider_get,
    setup_provider_list,
    setup_resource_get,
    setup_type_get,
    setup_type_list,
    upcoming_exception_list,
)
from ambula.scheduling.services import TemplateChange
from ambula.scheduling.setup_forms import (
    AppointmentTypeForm,
    BlockForm,
    ExceptionForm,
    HoursForm,
    LocationForm,
    NewProviderForm,
    ProviderForm,
    ResourceEditForm,
    ResourceForm,
)
from ambula.scheduling.views.common import CATEGORY

DASH = "\N{EN DASH}"
SHORT_DAYS = (
    _lazy("Mon"),
    _lazy("Tue"),
    _lazy("Wed"),
    _lazy("Thu"),
    _lazy("Fri"),
    _lazy("Sat"),
    _lazy("Sun"),
)

# --- Changes that may affect booked appointments -------------------------------------------------


def _attempt(request: HttpRequest, change: Callable[[bool], object]) -> TemplateChange | None:
    """Make the change; if its service refuses for booked appointments, go ahead only when the
    user confirmed exactly those (or more). Returns the refusal still to be shown, if any."""
    try:
        change(False)
    except TemplateChange as refusal:
        listed = {str(pk) for pk in refusal.params["appointments"]}
        confirmed = set(request.POST.get("confirmed", "").split(","))
        if not listed or not listed <= confirmed:
            return refusal
        change(True)
    return None


def _affected(request: HttpRequest, refusal: TemplateChange, *, target) -> dict:
    """The appointments a refused change would affect, for the warning: an audited read."""
    appointments = appointment_list_by_ids(
        actor=request.user, appointment_ids=refusal.params["appointments"]
    )
    record(
        actor=request.user,
        action="scheduling.conflicts_viewed",
        category=CATEGORY,
        target=target,
        changes={"appointments": [str(appointment.pk) for appointment in appointments]},
    )
    return {"affected": appointments, "refusal": " ".join(refusal.messages)}


def _today():
    return timezone.localdate()


def _day_ranges(weekdays: list[int]) -> str:
    """Runs of consecutive weekdays: "Mon-Fri, Sun" for 0 to 4 and 6, with an en dash."""
    runs: list[list[int]] = []
    for weekday in sorted(set(weekdays)):
        if runs and weekday == runs[-1][-1] + 1:
            runs[-1].append(weekday)
        else:
            runs.append([weekday])
    names = [str(name) for name in SHORT_DAYS]
    return ", ".join(
        names[run[0]] if len(run) == 1 else f"{names[run[0]]}{DASH}{names[run[-1]]}" for run in runs
    )


def hours_summary(rows) -> list[str]:
    """A location's week in a few lines: days with the same hours run together."""
    by_hours: dict[tuple, list[int]] = {}
    for row in rows:
        by_hours.setdefault((row.opens, row.closes), []).append(row.weekday)
    return [
        f"{_day_ranges(days)} {opens:%H:%M}{DASH}{closes:%H:%M}"
        for (opens, closes), days in sorted(by_hours.items(), key=lambda item: min(item[1]))
    ]


def period_text(starts_at, ends_at) -> str:
    """When an exception runs, as staff say it: whole days, or from a time to a time."""
    start, end = timezone.localtime(starts_at), timezone.localtime(ends_at)
    midnight = time(0)
    if start.time() == midnight and end.time() == midnight:
        last_day = (end - timedelta(days=1)).date()
        if last_day == start.date():
            return formats.date_format(start, "D j M Y")
        return _("%(first)s to %(last)s") % {
            "first": formats.date_format(start, "D j M"),
            "last": formats.date_format(last_day, "D j M Y"),
        }
    end_format = "H:i" if end.date() == start.date() else "D j M, H:i"
    return _("%(first)s to %(last)s") % {
        "first": formats.date_format(start, "D j M Y, H:i"),
        "last": formats.date_format(end, end_format),
    }


def template_summary(provider: Provider, today) -> dict:
    """A provider's current weekly template in brief: days, hours a week, locations."""
    blocks = [
        block
        for block in provider.blocks.all()
        if block.valid_until is None or block.valid_until >= today
    ]
    minutes = sum(
        (block.ends_at.hour * 60 + block.ends_at.minute)
        - (block.starts_at.hour * 60 + block.starts_at.minute)
        for block in blocks
    )
    return {
        "days": _day_ranges([block.weekday for block in blocks]),
        "hours": round(minutes / 60, 1),
        "locations": len({block.location_id for block in blocks}),
    }


# --- The overview --------------------------------------------------------------------------------


@requires(Capability.MANAGE_PRACTICE)
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    today = _today()
    locations = list(setup_location_list(actor=request.user))
    for location in locations:
        location.hours_summary = hours_summary(location.hours.all())
    providers = list(setup_provider_list(actor=request.user))
    for provider in providers:
        provider.template_summary = template_summary(provider, today)
    return render(
        request,
        "scheduling/setup/overview.html",
        {
            "title": _("Schedule set-up"),
            "locations": locations,
            "providers": providers,
            "types": setup_type_list(actor=request.user),
        },
    )


# --- Locations, their hours, rooms and equipment -------------------------------------------------


@requires(Capability.MANAGE_PRACTICE)
@require_http_methods(["GET", "POST"])
def location_add(request: HttpRequest) -> HttpResponse:
    form = LocationForm(request.POST or None)
    if form.is_valid():
        details = {key: value for key, value in form.cleaned_data.items() if key != "is_active"}
        try:
            location = services.location_create(actor=request.user, **details)
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(
                request,
                _("%(name)s added. Give it opening hours and its rooms.") % {"name": location},
            )
            return redirect("scheduling:setup_location", location_id=location.pk)
    return render(
        request,
        "scheduling/setup/location_new.html",
        {"title": _("Add a location"), "form": form},
    )


def _location_page(
    request: HttpRequest,
    location: Location,
    *,
    form: LocationForm | None = None,
    hours_form: HoursForm | None = None,
    resource_form: ResourceForm | None = None,
) -> HttpResponse:
    return render(
        request,
        "scheduling/setup/location.html",
        {
            "title": location.name,
            "location": location,
            "form": form or LocationForm.for_location(location),
            "hours_form": hours_form or HoursForm(hours=location.hours.all()),
            "resource_form": resource_form or ResourceForm(),
            "resources": location.resources.all(),
        },
    )


@requires(Capability.MANAGE_PRACTICE)
@require_http_methods(["GET", "POST"])
def location_edit(request: HttpRequest, location_id) -> HttpResponse:
    location = setup_location_get(actor=request.user, location_id=location_id)
    form = LocationForm.for_location(location, request.POST or None)
    if form.is_valid():
        try:
            services.location_update(actor=request.user, location=location, **form.cleaned_data)
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(request, _("Location saved."))
            return redirect("scheduling:setup_location", location_id=location.pk)
    return _location_page(request, location, form=form)


@requires(Capability.MANAGE_PRACTICE)
@require_POST
def location_hours(request: HttpRequest, location_id) -> HttpResponse:
    location = setup_location_get(actor=request.user, location_id=location_id)
    form = HoursForm(request.POST, hours=location.hours.all())
    if form.is_valid():
        try:
            services.location_hours_set(actor=request.user, location=location, hours=form.hours())
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(request, _("Opening hours saved."))
            return redirect("scheduling:setup_location", location_id=location.pk)
    return _location_page(request, location, hours_form=form)


@requires(Capability.MANAGE_PRACTICE)
@require_POST
def resource_add(request: HttpRequest, location_id) -> HttpResponse:
    location = setup_location_get(actor=request.user, location_id=location_id)
    form = ResourceForm(request.POST)
    if form.is_valid():
        try:
            resource = services.resource_create(
                actor=request.user, location=location, **form.cleaned_data
            )
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(request, _("%(name)s added.") % {"name": resource.name})
            return redirect("scheduling:setup_location", location_id=location.pk)
    return _location_page(request, location, resource_form=form)


@requires(Capability.MANAGE_PRACTICE)
@require_http_methods(["GET", "POST"])
def resource_edit(request: HttpRequest, resource_id) -> HttpResponse:
    resource = setup_resource_get(actor=request.user, resource_id=resource_id)
    form = ResourceEditForm(
        request.POST or None, initial={"name": resource.name, "is_active": resource.is_active}
    )
    if form.is_valid():
        try:
            services.resource_update(actor=request.user, resource=resource, **form.cleaned_data)
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(request, _("%(name)s saved.") % {"name": form.cleaned_data["name"]})
            return redirect("scheduling:setup_location", location_id=resource.location_id)
    return render(
        request,
        "scheduling/setup/resource_form.html",
        {"title": resource.name, "resource": resource, "form": form},
    )


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
                actor=request.user, provider=provider, today=_today()
            ),
            "today_date": _today(),
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
        context.update(_affected(request, warning, target=provider))
    return render(request, "scheduling/setup/block_form.html", context)


def _save_block(request: HttpRequest, form: BlockForm, fresh_block: Callable[[], ScheduleBlock]):
    """Save the block from the form; a refusal for booked appointments comes back to show."""

    def change(allow_orphans: bool) -> None:
        services.schedule_block_save(
            actor=request.user,
            block=form.apply_to(fresh_block()),
            appointment_types=list(form.cleaned_data["appointment_types"]),
            allow_orphans=allow_orphans,
        )

    return _attempt(request, change)


@requires(Capability.MANAGE_PRACTICE)
@require_http_methods(["GET", "POST"])
def block_add(request: HttpRequest, provider_id) -> HttpResponse:
    provider = setup_provider_get(actor=request.user, provider_id=provider_id)
    form = BlockForm(request.POST or None, today=_today())
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
        services.schedule_block_delete(
            actor=request.user,
            block=setup_block_get(actor=request.user, block_id=block_id),
            allow_orphans=allow_orphans,
        )

    warning = _attempt(request, change)
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
            **_affected(request, warning, target=block.provider),
        },
    )


# --- Appointment types ---------------------------------------------------------------------------


@requires(Capability.MANAGE_PRACTICE)
@require_http_methods(["GET", "POST"])
def type_add(request: HttpRequest) -> HttpResponse:
    form = AppointmentTypeForm(request.POST or None)
    if form.is_valid():
        details = {key: value for key, value in form.cleaned_data.items() if key != "is_active"}
        try:
            created = services.appointment_type_create(
                actor=request.user, **details | {"equipment": list(details["equipment"])}
            )
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(request, _("%(name)s added.") % {"name": created.name})
            return redirect(reverse("scheduling:setup") + "#types")
    return render(
        request,
        "scheduling/setup/type_form.html",
        {"title": _("Add an appointment type"), "form": form},
    )


@requires(Capability.MANAGE_PRACTICE)
@require_http_methods(["GET", "POST"])
def type_edit(request: HttpRequest, appointment_type_id) -> HttpResponse:
    appointment_type = setup_type_get(actor=request.user, appointment_type_id=appointment_type_id)
    form = AppointmentTypeForm(request.POST or None, appointment_type=appointment_type)
    if form.is_valid():
        details = form.cleaned_data | {"equipment": list(form.cleaned_data["equipment"])}
        try:
            services.appointment_type_update(
                actor=request.user, appointment_type=appointment_type, **details
            )
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(request, _("%(name)s saved.") % {"name": details["name"]})
            return redirect(reverse("scheduling:setup") + "#types")
    return render(
        request,
        "scheduling/setup/type_form.html",
        {"title": appointment_type.name, "form": form, "appointment_type": appointment_type},
    )


# --- Time off, holidays and closures (the front desk too) ----------------------------------------


@requires(Capability.MANAGE_SCHEDULE)
@require_http_methods(["GET", "POST"])
def exceptions(request: HttpRequest) -> HttpResponse:
    form = ExceptionForm(request.POST or None, initial={"starts_on": _today(), "ends_on": _today()})
    warning = None
    if form.is_valid():

        def change(allow_conflicts: bool) -> None:
            services.schedule_exception_create(
                actor=request.user, exception=form.exception(), allow_conflicts=allow_conflicts
            )

        try:
            warning = _attempt(request, change)
        except ValidationError as error:
            form.add_service_error(error)
        else:
            if warning is None:
                messages.success(request, _("Blocked out. No one can book that time."))
                return redirect("scheduling:setup_exceptions")
    upcoming = list(upcoming_exception_list(actor=request.user, since=timezone.now()))
    for exception in upcoming:
        exception.period_text = period_text(exception.starts_at, exception.ends_at)
    context = {"title": _("Time off & closures"), "form": form, "upcoming": upcoming}
    if warning is not None:
        target = form.cleaned_data["provider"] or form.cleaned_data["location"]
        context.update(_affected(request, warning, target=target))
    return render(request, "scheduling/setup/exceptions.html", context)


@requires(Capability.MANAGE_SCHEDULE)
@require_POST
def exception_delete(request: HttpRequest, exception_id) -> HttpResponse:
    exception = exception_get(actor=request.user, exception_id=exception_id)
    try:
        services.schedule_exception_delete(actor=request.user, exception=exception)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Removed: that time can be booked again."))
    return redirect("scheduling:setup_exceptions")
