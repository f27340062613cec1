"""A provider's week."""

from __future__ import annotations

from datetime import timedelta

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from ambula.accounts.policy import Capability, requires
from ambula.audit.services import record
from ambula.scheduling.selectors import appointment_provider_week, provider_get
from ambula.scheduling.views.common import CATEGORY, requested_day

# --- A provider's week -------------------------------------------------------------------------


@requires(Capability.VIEW_SCHEDULE)
@require_GET
def provider_week(request: HttpRequest, provider_id) -> HttpResponse:
    provider = provider_get(actor=request.user, provider_id=provider_id)
    day = requested_day(request, "week")
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
