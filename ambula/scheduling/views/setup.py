"""Scheduling set-up, the administrator's pages: the overview, locations with their opening
hours, rooms and equipment, and appointment types.

Providers and their weekly templates are in `provider_setup`; time off and closures in
`schedule_exceptions`.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ambula.accounts.policy import Capability, requires
from ambula.scheduling import services
from ambula.scheduling.models import Location, Provider
from ambula.scheduling.selectors import (
    setup_location_get,
    setup_location_list,
    setup_provider_list,
    setup_resource_get,
    setup_type_get,
    setup_type_list,
)
from ambula.scheduling.setup_forms import (
    AppointmentTypeForm,
    HoursForm,
    LocationForm,
    ResourceEditForm,
    ResourceForm,
)

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

# --- Summaries for the overview ------------------------------------------------------------------


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


def template_summary(provider: Provider, today) -> dict:
    """A provider's weekly template as it stands today: days, hours a week, locations.

    Only blocks valid today count: a block and the one replacing it from a later date would
    otherwise both be counted, doubling the hours.
    """
    blocks = [
        block
        for block in provider.blocks.all()
        if block.valid_from <= today and (block.valid_until is None or block.valid_until >= today)
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
    today = timezone.localdate()
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
