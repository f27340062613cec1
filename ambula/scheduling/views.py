"""The schedule pages: the day board, booking with the slot picker, a provider's week, print."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import groupby
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ambula.accounts.policy import Capability, requires
from ambula.audit.services import record
from ambula.patients.selectors import patient_get
from ambula.scheduling import booking
from ambula.scheduling.booking import SlotTaken
from ambula.scheduling.forms import BookingForm, CancelForm, SlotChoiceForm, SlotSearchForm
from ambula.scheduling.models import Appointment, Location
from ambula.scheduling.selectors import (
    appointment_day_board,
    appointment_day_list,
    appointment_get,
    appointment_provider_week,
    location_list,
    provider_get,
)
from ambula.scheduling.slots import next_available

CATEGORY = "schedule"
SLOT_LIMIT = 24


# --- Shared parsing ----------------------------------------------------------------------------


def _day(request: HttpRequest, name: str = "date") -> date:
    return parse_date(request.GET.get(name, "") or "") or timezone.localdate()


def _location(request: HttpRequest) -> Location | None:
    locations = list(location_list(actor=request.user))
    wanted = request.GET.get("location", "")
    return next((loc for loc in locations if str(loc.pk) == wanted), None) or (
        locations[0] if locations else None
    )


def _board_url(location: Location | None, day: date) -> str:
    query = {"location": str(location.pk)} if location is not None else {}
    query["date"] = day.isoformat()
    return f"{reverse('scheduling:day_board')}?{urlencode(query)}"


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
        "board_url": _board_url(location, day),
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
    return _render_board(request, _location(request), _day(request))


@requires(Capability.VIEW_SCHEDULE)
@require_GET
def day_print(request: HttpRequest) -> HttpResponse:
    location, day = _location(request), _day(request)
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
            "board_url": _board_url(location, day),
        },
    )


def _after_change(request: HttpRequest, appointment: Appointment) -> HttpResponse:
    day = timezone.localtime(appointment.starts_at).date()
    if request.htmx:
        return _render_board(request, appointment.location, day)
    return redirect(_board_url(appointment.location, day))


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
            "board_url": _board_url(
                appointment.location, timezone.localtime(appointment.starts_at).date()
            ),
        },
        status=status,
    )


# --- Booking and the slot picker ---------------------------------------------------------------


def _slot_query(base: dict, slot) -> str:
    return urlencode(
        {
            **base,
            "provider": str(slot.provider.pk),
            "location": str(slot.location.pk),
            "start": slot.starts_at.isoformat(),
        }
    )


def _picker(
    request: HttpRequest,
    search: SlotSearchForm,
    *,
    pick_url: str,
    base: dict,
    appointment_type=None,
    message: str = "",
) -> dict:
    """The slot picker's context: the next free times, grouped by day, each a link to pick it."""
    slots = []
    if search.is_valid():
        appointment_type = appointment_type or search.cleaned_data["appointment_type"]
        provider = search.cleaned_data.get("provider")
        location = search.cleaned_data.get("location")
        found = next_available(
            appointment_type=appointment_type,
            providers=[provider] if provider else None,
            locations=[location] if location else None,
            limit=SLOT_LIMIT,
        )
        base = {**base, "appointment_type": str(appointment_type.pk)}
        slots = [
            (day, [(slot, f"{pick_url}?{_slot_query(base, slot)}") for slot in group])
            for day, group in groupby(found, key=lambda slot: slot.starts_at.date())
        ]
    return {
        "search": search,
        "searched": search.is_bound and search.is_valid(),
        "slot_days": slots,
        "picker_message": message,
    }


def _when(moment) -> str:
    """A visit's time for a message, in the practice's zone and the user's language."""
    return formats.date_format(timezone.localtime(moment), "D j M, H:i")


def _booking_patient(request: HttpRequest, source) -> object | None:
    patient_id = source.get("patient", "")
    if not patient_id:
        return None
    return patient_get(actor=request.user, patient_id=patient_id)


def _confirm_form(request: HttpRequest, data) -> BookingForm | None:
    if not data.get("start"):
        return None
    form = BookingForm(data)
    return form if form.is_valid() or request.method == "POST" else None


@requires(Capability.MANAGE_SCHEDULE)
@require_http_methods(["GET", "POST"])
def book(request: HttpRequest) -> HttpResponse:
    data = request.POST if request.method == "POST" else request.GET
    patient = _booking_patient(request, data)
    if patient is None:
        messages.info(request, _("Open the patient's chart and choose “Book an appointment”."))
        return redirect("patients:search")
    message, status, confirm = "", 200, _confirm_form(request, data)
    if request.method == "POST" and confirm is not None and confirm.is_valid():
        chosen = confirm.cleaned_data
        try:
            appointment = booking.appointment_book(
                actor=request.user,
                patient=patient,
                provider=chosen["provider"],
                location=chosen["location"],
                appointment_type=chosen["appointment_type"],
                starts_at=chosen["start"],
                note=chosen["note"],
            )
        except SlotTaken:
            message, status, confirm = str(SlotTaken.default_message), 409, None
        except ValidationError as error:
            confirm.add_error(None, error)
        else:
            messages.success(
                request,
                _("Booked %(patient)s with %(provider)s on %(when)s.")
                % {
                    "patient": f"{patient.given_name} {patient.family_name}",
                    "provider": appointment.provider,
                    "when": _when(appointment.starts_at),
                },
            )
            return redirect(
                _board_url(appointment.location, timezone.localtime(appointment.starts_at).date())
            )
    record(
        actor=request.user,
        action="scheduling.booking_opened",
        category=CATEGORY,
        target=patient,
        patient=patient,
    )
    search = SlotSearchForm(data if data.get("appointment_type") else None)
    context = {
        "title": _("Book an appointment"),
        "patient": patient,
        "confirm": confirm,
        "slots_url": reverse("scheduling:slots"),
        "hidden": {"patient": str(patient.pk)},
        **_picker(
            request,
            search,
            pick_url=reverse("scheduling:book"),
            base={"patient": str(patient.pk)},
            message=message,
        ),
    }
    return render(request, "scheduling/book.html", context, status=status)


@requires(Capability.MANAGE_SCHEDULE)
@require_http_methods(["GET", "POST"])
def reschedule(request: HttpRequest, appointment_id) -> HttpResponse:
    appointment = appointment_get(actor=request.user, appointment_id=appointment_id)
    data = request.POST if request.method == "POST" else request.GET
    message, status = "", 200
    confirm = SlotChoiceForm(data) if data.get("start") else None
    if confirm is not None and request.method == "GET" and not confirm.is_valid():
        confirm = None
    if request.method == "POST" and confirm is not None and confirm.is_valid():
        chosen = confirm.cleaned_data
        try:
            moved = booking.appointment_reschedule(
                actor=request.user,
                appointment=appointment,
                starts_at=chosen["start"],
                provider=chosen["provider"],
                location=chosen["location"],
            )
        except SlotTaken:
            message, status, confirm = str(SlotTaken.default_message), 409, None
        except ValidationError as error:
            confirm.add_error(None, error)
        else:
            messages.success(
                request,
                _("Moved to %(when)s with %(provider)s.")
                % {
                    "when": _when(moved.starts_at),
                    "provider": moved.provider,
                },
            )
            return redirect(_board_url(moved.location, timezone.localtime(moved.starts_at).date()))
    record(
        actor=request.user,
        action="scheduling.booking_opened",
        category=CATEGORY,
        target=appointment,
        patient=appointment.patient,
    )
    search_data = {
        "appointment_type": str(appointment.appointment_type_id),
        "provider": data.get("provider", "") if "start" not in data else "",
        "location": data.get("location", "") if "start" not in data else "",
    }
    search = SlotSearchForm(search_data, fixed_type=appointment.appointment_type)
    pick_url = reverse("scheduling:reschedule", kwargs={"appointment_id": appointment.pk})
    context = {
        "title": _("Reschedule"),
        "appointment": appointment,
        "patient": appointment.patient,
        "confirm": confirm,
        "slots_url": reverse("scheduling:slots"),
        "hidden": {"appointment": str(appointment.pk)},
        **_picker(
            request,
            search,
            pick_url=pick_url,
            base={},
            appointment_type=appointment.appointment_type,
            message=message,
        ),
    }
    return render(request, "scheduling/reschedule.html", context, status=status)


@requires(Capability.MANAGE_SCHEDULE)
@require_GET
def slots(request: HttpRequest) -> HttpResponse:
    """The slot picker alone (htmx): for a booking (`patient`) or a move (`appointment`)."""
    appointment_type = None
    if request.GET.get("appointment"):
        appointment = appointment_get(actor=request.user, appointment_id=request.GET["appointment"])
        appointment_type = appointment.appointment_type
        pick_url = reverse("scheduling:reschedule", kwargs={"appointment_id": appointment.pk})
        base = {}
        search = SlotSearchForm(
            {**request.GET.dict(), "appointment_type": str(appointment_type.pk)},
            fixed_type=appointment_type,
        )
    else:
        patient = _booking_patient(request, request.GET)
        if patient is None:  # nobody to book for: the picker's "choose a type" state
            return render(request, "scheduling/_slot_picker.html", {"search": SlotSearchForm()})
        pick_url = reverse("scheduling:book")
        base = {"patient": str(patient.pk)}
        search = SlotSearchForm(request.GET if request.GET.get("appointment_type") else None)
    context = _picker(
        request, search, pick_url=pick_url, base=base, appointment_type=appointment_type
    )
    return render(request, "scheduling/_slot_picker.html", context)


# --- A provider's week -------------------------------------------------------------------------


@requires(Capability.VIEW_SCHEDULE)
@require_GET
def provider_week(request: HttpRequest, provider_id) -> HttpResponse:
    provider = provider_get(actor=request.user, provider_id=provider_id)
    day = _day(request, "week")
    monday = day - timedelta(days=day.weekday())
    week = appointment_provider_week(actor=request.user, provider=provider, monday=monday)
    record(
        actor=request.user,
        action="scheduling.provider_week_viewed",
        category=CATEGORY,
        target=provider,
        changes={"week": monday.isoformat()},
    )
    return render(
        request,
        "scheduling/provider_week.html",
        {
            "title": str(provider),
            "provider": provider,
            "week": week,
            "monday": monday,
            "sunday": monday + timedelta(days=6),
            "previous_week": monday - timedelta(days=7),
            "next_week": monday + timedelta(days=7),
            "this_week": timezone.localdate() - timedelta(days=timezone.localdate().weekday()),
            "today": timezone.localdate(),
        },
    )
