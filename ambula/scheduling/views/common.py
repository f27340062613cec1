"""What the schedule pages share: the day and location a page is about, and the board's URL."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date

from ambula.scheduling.models import Location
from ambula.scheduling.selectors import location_list

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
