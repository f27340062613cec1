from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from ambula import __version__
from ambula.accounts.policy import Capability, public, requires
from ambula.core import health
from ambula.core.errors import NotFound
from ambula.core.forms import PracticeSecurityForm
from ambula.core.selectors import practice_get
from ambula.core.services import SECURITY_SETTINGS, practice_security_update
from ambula.scheduling.selectors import location_list


@public
@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Tell a load balancer whether this process can serve: database up, migrations applied."""
    database = health.database_reachable()
    migrations = database and health.migrations_applied()
    healthy = database and migrations
    return JsonResponse(
        {
            "status": "ok" if healthy else "unavailable",
            "database": "ok" if database else "unreachable",
            "migrations": "ok" if migrations else "pending",
            "version": __version__,
        },
        status=200 if healthy else 503,
    )


@requires(Capability.STAFF_APP)
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "core/home.html",
        {"title": _("Home"), "locations": location_list(actor=request.user)},
    )


@requires(Capability.MANAGE_PRACTICE)
@require_http_methods(["GET", "POST"])
def practice_security(request: HttpRequest) -> HttpResponse:
    practice = practice_get()
    if practice is None:
        raise NotFound
    form = PracticeSecurityForm(
        request.POST if request.method == "POST" else None,
        initial={name: getattr(practice, name) for name in SECURITY_SETTINGS},
    )
    if form.is_valid():
        try:
            practice_security_update(actor=request.user, practice=practice, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("Security settings saved."))
            return redirect("core:practice_security")
    return render(
        request, "core/practice_security.html", {"title": _("Security settings"), "form": form}
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return render(
        request,
        "core/error.html",
        {
            "title": _("This form has expired"),
            "detail": _(
                "For your security the page was open too long or was sent from elsewhere. "
                "Go back, reload the page and try again."
            ),
        },
        status=403,
    )
