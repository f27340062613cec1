"""What the schedule pages share: the day and location a page is about, the board's URL, a
visit's time in a message, and going ahead with a change that would affect booked appointments.

Such a change (a block, time off, a closure) is refused by its service; the page then lists
those appointments and offers to go ahead. The confirmation names the appointments it covers,
so a change that would affect others asks again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from urllib.parse import urlencode

from django.http import HttpRequest
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.dateparse import parse_date

from ambula.audit.services import record
from ambula.scheduling.models import Location
from ambula.scheduling.schedule_templates import TemplateChange
from ambula.scheduling.selectors import appointment_list_by_ids, location_list

CATEGORY = "schedule"


def requested_day(request: HttpRequest, name: str = "date") -> date:
    return parse_date(request.GET.get(name, "") or "") or timezone.localdate()


def requested_location(request: HttpRequest) -> Location | None:
    locations = list(location_list(actor=request.user))
    wanted = request.GET.get("location", "")
    return next((loc for loc in locations if str(loc.pk) == wanted), None) or (
        locations[0] if locations else None
    )


def board_url(location: Location | None, day: date) -> str:
    query = {"location": str(location.pk)} if location is not None else {}
    query["date"] = day.isoformat()
    return f"{reverse('scheduling:day_board')}?{urlencode(query)}"


def when_text(moment: datetime) -> str:
    """A visit's time for a message, in the practice's zone and the user's language."""
    return formats.date_format(timezone.localtime(moment), "D j M, H:i")


def attempt_change(request: HttpRequest, change: Callable[[bool], object]) -> TemplateChange | None:
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


def refusal_context(request: HttpRequest, refusal: TemplateChange, *, target) -> dict:
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
