from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ambula import __version__
from ambula.core import health
from ambula.scheduling.selectors import location_list


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


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "core/home.html",
        {"title": _("Home"), "locations": location_list(actor=request.user)},
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
