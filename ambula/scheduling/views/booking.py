"""Booking with the slot picker, rescheduling and the slot picker alone (htmx)."""

from __future__ import annotations

from itertools import groupby
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from ambula.accounts.policy import Capability, require, requires
from ambula.audit.services import record
from ambula.patients.selectors import patient_get
from ambula.scheduling import booking
from ambula.scheduling.booking import SlotTaken
from ambula.scheduling.forms import BookingForm, OverbookForm, SlotChoiceForm, SlotSearchForm
from ambula.scheduling.selectors import appointment_get
from ambula.scheduling.slots import next_available
from ambula.scheduling.views.common import CATEGORY, board_url, when_text

SLOT_LIMIT = 24


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


def _appointment_to_move(request: HttpRequest, appointment_id):
    """The appointment, once its patient's record may be opened: a restricted record asks for
    emergency access first, as booking for the patient does."""
    appointment = appointment_get(actor=request.user, appointment_id=appointment_id)
    patient_get(actor=request.user, patient_id=appointment.patient_id)
    return appointment


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
    overbook = OverbookForm(
        request.POST if _is_overbook(request) else None,
        initial={"appointment_type": data.get("appointment_type")},
        prefix="overbook",  # its fields must not share ids with the slot search's
    )
    if _is_overbook(request):
        booked = _overbook(request, patient, overbook)
        if booked is not None:
            return booked
        status = 400
    elif request.method == "POST" and confirm is not None and confirm.is_valid():
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
                    "when": when_text(appointment.starts_at),
                },
            )
            return redirect(
                board_url(appointment.location, timezone.localtime(appointment.starts_at).date())
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
        "overbook": overbook,
        **_picker(
            request,
            search,
            pick_url=reverse("scheduling:book"),
            base={"patient": str(patient.pk)},
            message=message,
        ),
    }
    return render(request, "scheduling/book.html", context, status=status)


# --- Overbooking: a visit on top of the provider's others, from the booking page ---------------


def _is_overbook(request: HttpRequest) -> bool:
    return request.method == "POST" and "overbook" in request.POST


def _overbook(request: HttpRequest, patient, form: OverbookForm) -> HttpResponse | None:
    """Book with the reason and go to the board; None leaves the form's errors to show."""
    # The form is shown only to those who may overbook; a forged POST is refused outright.
    require(request.user, Capability.OVERBOOK)
    if not form.is_valid():
        return None
    chosen = form.cleaned_data
    try:
        appointment = booking.appointment_book(
            actor=request.user,
            patient=patient,
            provider=chosen["provider"],
            location=chosen["location"],
            appointment_type=chosen["appointment_type"],
            starts_at=form.starts_at(),
            overbook_reason=chosen["overbook_reason"],
        )
    except SlotTaken as error:  # overbooking still needs a free room and the equipment
        form.add_error(None, error.message)
        return None
    except ValidationError as error:
        form.add_error(None, error)
        return None
    messages.success(
        request,
        _("Overbooked %(patient)s with %(provider)s on %(when)s.")
        % {
            "patient": f"{patient.given_name} {patient.family_name}",
            "provider": appointment.provider,
            "when": when_text(appointment.starts_at),
        },
    )
    return redirect(
        board_url(appointment.location, timezone.localtime(appointment.starts_at).date())
    )


# --- Rescheduling and the slot picker alone ----------------------------------------------------


@requires(Capability.MANAGE_SCHEDULE)
@require_http_methods(["GET", "POST"])
def reschedule(request: HttpRequest, appointment_id) -> HttpResponse:
    appointment = _appointment_to_move(request, appointment_id)
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
                    "when": when_text(moved.starts_at),
                    "provider": moved.provider,
                },
            )
            return redirect(board_url(moved.location, timezone.localtime(moved.starts_at).date()))
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
        appointment = _appointment_to_move(request, request.GET["appointment"])
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
