"""The waitlist pages: the queue, putting a patient on it, and booking a freed slot from it.

Sending offers to patients is the reminders' work; here the staff see who a freed slot suits
and book it for one of them through `waitlist_claim` (the first claim wins).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ambula.accounts.policy import Capability, can, requires, visible
from ambula.audit.services import batched, record
from ambula.patients.selectors import patient_get
from ambula.scheduling import waitlist as service
from ambula.scheduling.availability import problems_with
from ambula.scheduling.booking import SlotTaken
from ambula.scheduling.models import Appointment, WaitlistEntry
from ambula.scheduling.selectors import appointment_get
from ambula.scheduling.views.common import CATEGORY, board_url, when_text
from ambula.scheduling.waitlist_forms import (
    ClaimForm,
    SlotForm,
    WaitlistFilterForm,
    WaitlistForm,
    WithdrawForm,
    weekday_choices,
)

# --- Reads -------------------------------------------------------------------------------------


def _waiting(actor) -> QuerySet[WaitlistEntry]:
    """Waiting entries in queue order (oldest first), with what the list shows."""
    return (
        visible(actor, Capability.VIEW_SCHEDULE, WaitlistEntry.objects.all())
        .filter(status=WaitlistEntry.Status.WAITING)
        .select_related(
            "patient",
            "appointment_type",
            "created_by",
            "current_appointment__provider__user",
            "current_appointment__location",
        )
        .prefetch_related("providers__user", "locations")
        .order_by("created_at")
    )


def _with_day_names(entries: list[WaitlistEntry]) -> list[WaitlistEntry]:
    names = dict(weekday_choices())
    for entry in entries:
        entry.day_names = [names[day] for day in entry.weekdays]
    return entries


def _audit_shown(actor, entries: list[WaitlistEntry], **changes) -> None:
    """One read event per patient shown, written together (one turn at the chain head)."""
    with batched():
        for entry in entries:
            record(
                actor=actor,
                action="scheduling.waitlist_viewed",
                category=CATEGORY,
                target=entry,
                patient_id=entry.patient_id,
                changes=changes or None,
            )


def _patient_name(patient) -> str:
    return f"{patient.given_name} {patient.family_name}"


# --- The queue ---------------------------------------------------------------------------------


@requires(Capability.VIEW_SCHEDULE)
@require_GET
def waitlist(request: HttpRequest) -> HttpResponse:
    filters = WaitlistFilterForm(request.GET or None)
    entries = _waiting(request.user)
    if filters.is_valid():
        if filters.cleaned_data["appointment_type"]:
            entries = entries.filter(appointment_type=filters.cleaned_data["appointment_type"])
        if filters.cleaned_data["location"]:
            # An entry with no locations takes any, so it stays in every location's list.
            entries = entries.filter(
                Q(locations=None) | Q(locations=filters.cleaned_data["location"])
            ).distinct()
    entries = _with_day_names(list(entries))
    _audit_shown(request.user, entries)
    return render(
        request,
        "scheduling/waitlist.html",
        {
            "title": _("Waitlist"),
            "entries": entries,
            "filters": filters,
            "filtered": filters.is_bound and any(request.GET.get(key) for key in filters.fields),
        },
    )


@requires(Capability.MANAGE_SCHEDULE)
@require_POST
def withdraw(request: HttpRequest) -> HttpResponse:
    form = WithdrawForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("That waitlist entry was not found."))
        return redirect("scheduling:waitlist")
    entry = form.cleaned_data["entry"]
    try:
        service.waitlist_withdraw(actor=request.user, entry=entry)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            _("%(patient)s is off the waitlist.") % {"patient": _patient_name(entry.patient)},
        )
    return redirect("scheduling:waitlist")


# --- Putting a patient on the waitlist ---------------------------------------------------------


def _source(request: HttpRequest, data) -> tuple[object | None, Appointment | None]:
    """The patient to add and, from an appointment ("wants an earlier time"), that visit."""
    if data.get("appointment"):
        appointment = appointment_get(actor=request.user, appointment_id=data["appointment"])
        # The visit's patient is opened as the chart link would be: a restricted record needs
        # a care relationship or emergency access here too.
        patient = patient_get(
            actor=request.user, patient_id=appointment.patient_id, check_restriction=True
        )
        return patient, appointment
    if data.get("patient"):
        patient = patient_get(
            actor=request.user, patient_id=data["patient"], check_restriction=True
        )
        return patient, None
    return None, None


@requires(Capability.MANAGE_SCHEDULE)
@require_http_methods(["GET", "POST"])
def add(request: HttpRequest) -> HttpResponse:
    data = request.POST if request.method == "POST" else request.GET
    patient, appointment = _source(request, data)
    if patient is None:
        messages.info(request, _("Open the patient's chart and choose “Book an appointment”."))
        return redirect("patients:search")
    if appointment is not None and appointment.status != Appointment.Status.SCHEDULED:
        messages.error(request, _("Only a scheduled appointment can be moved earlier."))
        return redirect(
            board_url(appointment.location, timezone.localtime(appointment.starts_at).date())
        )
    if request.method == "POST":
        form = WaitlistForm(request.POST)
    else:
        chosen_type = (
            appointment.appointment_type_id if appointment else data.get("appointment_type")
        )
        form = WaitlistForm(initial={"appointment_type": chosen_type})
    if appointment is not None:
        # Moving a visit earlier keeps its kind.
        form.fields["appointment_type"].disabled = True
        form.fields["appointment_type"].initial = appointment.appointment_type
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            service.waitlist_add(
                actor=request.user,
                patient=patient,
                current_appointment=appointment,
                **form.cleaned_data,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(
                request,
                _("%(patient)s is on the waitlist for %(type)s.")
                % {
                    "patient": _patient_name(patient),
                    "type": form.cleaned_data["appointment_type"].name,
                },
            )
            return redirect("scheduling:waitlist")
    if request.method == "POST":
        status = 400
    record(
        actor=request.user,
        action="scheduling.waitlist_form_opened",
        category=CATEGORY,
        target=appointment or patient,
        patient=patient,
    )
    return render(
        request,
        "scheduling/waitlist_add.html",
        {
            "title": _("Add to the waitlist"),
            "patient": patient,
            "appointment": appointment,
            "form": form,
        },
        status=status,
    )


# --- A freed slot: who wants it, and booking it for one of them --------------------------------


def slot_url(appointment: Appointment) -> str:
    """The page listing who the appointment's time would suit."""
    query = {
        "provider": str(appointment.provider_id),
        "location": str(appointment.location_id),
        "start": appointment.starts_at.isoformat(),
        "appointment_type": str(appointment.appointment_type_id),
    }
    return f"{reverse('scheduling:waitlist_slot')}?{urlencode(query)}"


def offer_notice(request: HttpRequest, freed: Appointment) -> None:
    """Tell the staff, after a visit's time is freed, how many waiting patients want it."""
    if freed.starts_at <= timezone.now():
        return
    count = len(
        service.waitlist_matches(
            provider=freed.provider,
            location=freed.location,
            appointment_type=freed.appointment_type,
            starts_at=freed.starts_at,
        )
    )
    if not count:
        return
    text = ngettext(
        "%(count)d patient on the waitlist wants this time.",
        "%(count)d patients on the waitlist want this time.",
        count,
    ) % {"count": count}
    messages.info(
        request,
        format_html('{} <a href="{}">{}</a>', text, slot_url(freed), _("See who and book")),
    )


def _slot_page(request: HttpRequest, slot: dict, *, message: str = "", status: int = 200):
    entries = _with_day_names(
        service.waitlist_matches(
            provider=slot["provider"],
            location=slot["location"],
            appointment_type=slot["appointment_type"],
            starts_at=slot["start"],
        )
    )
    _audit_shown(request.user, entries, slot=slot["start"].isoformat())
    problems = problems_with(
        provider=slot["provider"],
        location=slot["location"],
        appointment_type=slot["appointment_type"],
        starts_at=slot["start"],
    )
    return render(
        request,
        "scheduling/waitlist_slot.html",
        {
            "title": _("Book a freed slot"),
            "slot": slot,
            "entries": entries,
            "problems": problems,
            "message": message,
            "can_claim": can(request.user, Capability.MANAGE_SCHEDULE) and not problems,
            "board_url": board_url(slot["location"], timezone.localtime(slot["start"]).date()),
        },
        status=status,
    )


def _bad_slot(request: HttpRequest) -> HttpResponse:
    messages.error(request, _("That slot link is incomplete or out of date."))
    return redirect("scheduling:waitlist")


@requires(Capability.VIEW_SCHEDULE)
@require_GET
def slot(request: HttpRequest) -> HttpResponse:
    form = SlotForm(request.GET)
    if not form.is_valid():
        return _bad_slot(request)
    return _slot_page(request, form.cleaned_data)


def _claimed_message(entry: WaitlistEntry, booked: Appointment) -> str:
    facts = {
        "patient": _patient_name(entry.patient),
        "when": when_text(booked.starts_at),
        "provider": booked.provider,
    }
    if booked.rescheduled_from_id:
        facts["old"] = when_text(booked.rescheduled_from.starts_at)
        return (
            _("Moved %(patient)s's appointment from %(old)s to %(when)s with %(provider)s.") % facts
        )
    return _("Booked %(patient)s with %(provider)s on %(when)s, from the waitlist.") % facts


@requires(Capability.MANAGE_SCHEDULE)
@require_POST
def claim(request: HttpRequest) -> HttpResponse:
    form = ClaimForm(request.POST)
    if not form.is_valid():
        return _bad_slot(request)
    slot, entry = form.cleaned_data, form.cleaned_data["entry"]
    if entry.status == WaitlistEntry.Status.WAITING and entry not in service.waitlist_matches(
        provider=slot["provider"],
        location=slot["location"],
        appointment_type=slot["appointment_type"],
        starts_at=slot["start"],
    ):
        message = _("This time does not suit what %(patient)s asked for.") % {
            "patient": _patient_name(entry.patient)
        }
        return _slot_page(request, slot, message=message, status=400)
    try:
        booked = service.waitlist_claim(
            actor=request.user,
            entry=entry,
            provider=slot["provider"],
            location=slot["location"],
            starts_at=slot["start"],
        )
    except SlotTaken:
        return _slot_page(request, slot, message=str(SlotTaken.default_message), status=409)
    except ValidationError as error:
        return _slot_page(request, slot, message=" ".join(error.messages), status=400)
    messages.success(request, _claimed_message(entry, booked))
    if booked.rescheduled_from_id:
        # The patient's old time is free now, and may suit someone else on the list.
        offer_notice(request, booked.rescheduled_from)
    return redirect(board_url(booked.location, timezone.localtime(booked.starts_at).date()))
