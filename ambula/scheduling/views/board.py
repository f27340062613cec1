"""The front-desk day board: every provider of a location, live; one-click steps; print."""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ambula.accounts.policy import Capability, requires
from ambula.audit.services import record
from ambula.scheduling import booking
from ambula.scheduling.forms import CancelForm
from ambula.scheduling.models import Appointment, Location
from ambula.scheduling.selectors import (
    appointment_day_board,
    appointment_day_list,
    appointment_get,
    location_list,
)
from ambula.scheduling.views.common import (
    CATEGORY,
    board_url,
    requested_day,
    requested_location,
)
from ambula.scheduling.views.waitlist import offer_notice

# --- The day board -----------------------------------------------------------------------------


def _render_board(request: HttpRequest, location: Location | None, day: date, *, status=200):
    """The board, whole page or (htmx) the board alone; one audited read either way."""
    locations = list(location_list(actor=request.user))
    board = None
    if location is not None:
        board = appointment_day_board(actor=request.user, location=location, day=day)
        record(
            actor=request.user,
            action="scheduling.day_board_viewed",
            category=CATEGORY,
            target=location,
            changes={"date": day.isoformat(), "appointments": board.appointment_count},
        )
    context = {
        "title": _("Schedule"),
        "board": board,
        "location": location,
        "locations": locations,
        "day": day,
        "today": timezone.localdate(),
        "now": timezone.now(),
        "previous_day": day - timedelta(days=1),
        "next_day": day + timedelta(days=1),
        "board_url": board_url(location, day),
    }
    template = (
        "scheduling/_board.html"
        if request.htmx and not request.htmx.boosted
        else "scheduling/day_board.html"
    )
    return render(request, template, context, status=status)


@requires(Capability.VIEW_SCHEDULE)
@require_GET
def day_board(request: HttpRequest) -> HttpResponse:
    return _render_board(request, requested_location(request), requested_day(request))


@requires(Capability.VIEW_SCHEDULE)
@require_GET
def day_print(request: HttpRequest) -> HttpResponse:
    location, day = requested_location(request), requested_day(request)
    columns = []
    if location is not None:
        columns = appointment_day_list(actor=request.user, location=location, day=day)
        record(
            actor=request.user,
            action="scheduling.day_schedule_printed",
            category=CATEGORY,
            target=location,
            changes={"date": day.isoformat()},
        )
    return render(
        request,
        "scheduling/day_print.html",
        {
            "title": _("Day schedule"),
            "location": location,
            "day": day,
            "columns": columns,
            "board_url": board_url(location, day),
        },
    )


def _after_change(request: HttpRequest, appointment: Appointment) -> HttpResponse:
    day = timezone.localtime(appointment.starts_at).date()
    if request.htmx:
        return _render_board(request, appointment.location, day)
    return redirect(board_url(appointment.location, day))


def _step_view(step):
    def view(request: HttpRequest, appointment_id) -> HttpResponse:
        appointment = appointment_get(actor=request.user, appointment_id=appointment_id)
        try:
            step(actor=request.user, appointment=appointment)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        return _after_change(request, appointment)

    view.__name__ = view.__qualname__ = f"{step.__name__}_view"
    return requires(Capability.MANAGE_SCHEDULE)(require_POST(view))


# Looked up at call time, so a change to the booking module is picked up.
check_in = _step_view(lambda **kw: booking.appointment_check_in(**kw))
room = _step_view(lambda **kw: booking.appointment_room(**kw))
complete = _step_view(lambda **kw: booking.appointment_complete(**kw))
no_show = _step_view(lambda **kw: booking.appointment_no_show(**kw))


@requires(Capability.MANAGE_SCHEDULE)
@require_http_methods(["GET", "POST"])
def cancel(request: HttpRequest, appointment_id) -> HttpResponse:
    appointment = appointment_get(actor=request.user, appointment_id=appointment_id)
    form = CancelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            booking.appointment_cancel(
                actor=request.user, appointment=appointment, reason=form.cleaned_data["reason"]
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("Appointment cancelled."))
            offer_notice(request, appointment)  # who on the waitlist wants the freed time
            return _after_change(request, appointment)
    if request.method == "POST" and request.htmx:
        # A refused cancel from the board: the reason was missing or the status moved on.
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return _after_change(request, appointment)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "scheduling/cancel.html",
        {
            "title": _("Cancel appointment"),
            "appointment": appointment,
            "form": form,
            "board_url": board_url(
                appointment.location, timezone.localtime(appointment.starts_at).date()
            ),
        },
        status=status,
    )
