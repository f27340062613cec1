"""Time off, holidays and closures: the front desk blocks out time no one may book.

Blocking out time that holds booked appointments is refused by its service; the page then
lists those appointments and offers to go ahead.
"""

from __future__ import annotations

from datetime import time, timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from ambula.accounts.policy import Capability, requires
from ambula.scheduling import schedule_templates
from ambula.scheduling.selectors import exception_get, upcoming_exception_list
from ambula.scheduling.setup_forms import ExceptionForm
from ambula.scheduling.views.common import attempt_change, refusal_context


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


@requires(Capability.MANAGE_SCHEDULE)
@require_http_methods(["GET", "POST"])
def exceptions(request: HttpRequest) -> HttpResponse:
    form = ExceptionForm(
        request.POST or None,
        initial={"starts_on": timezone.localdate(), "ends_on": timezone.localdate()},
    )
    warning = None
    if form.is_valid():

        def change(allow_conflicts: bool) -> None:
            schedule_templates.schedule_exception_create(
                actor=request.user, exception=form.exception(), allow_conflicts=allow_conflicts
            )

        try:
            warning = attempt_change(request, change)
        except ValidationError as error:
            form.add_service_error(error)
        else:
            if warning is None:
                messages.success(request, _("Blocked out. No one can book that time."))
                return redirect("scheduling:setup_exceptions")
    moment = timezone.now()
    upcoming = list(upcoming_exception_list(actor=request.user, since=moment))
    for exception in upcoming:
        exception.period_text = period_text(exception.starts_at, exception.ends_at)
        # Removing a running one ends it now, so its button says so.
        exception.running = exception.starts_at < moment
    context = {"title": _("Time off & closures"), "form": form, "upcoming": upcoming}
    if warning is not None:
        target = form.cleaned_data["provider"] or form.cleaned_data["location"]
        context.update(refusal_context(request, warning, target=target))
    return render(request, "scheduling/setup/exceptions.html", context)


@requires(Capability.MANAGE_SCHEDULE)
@require_POST
def exception_delete(request: HttpRequest, exception_id) -> HttpResponse:
    exception = exception_get(actor=request.user, exception_id=exception_id)
    try:
        outcome = schedule_templates.schedule_exception_delete(
            actor=request.user, exception=exception
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        if outcome == "ended":
            messages.success(
                request,
                _(
                    "Ended now: the rest of that time can be booked again; the part already "
                    "passed stays on record."
                ),
            )
        else:
            messages.success(request, _("Removed: that time can be booked again."))
    return redirect("scheduling:setup_exceptions")
