"""Error pages in the product's own layout, each with a way back."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _


def _error(request: HttpRequest, status: int, title: str, detail: str) -> HttpResponse:
    return render(request, "core/error.html", {"title": title, "detail": detail}, status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error(request, 400, _("Bad request"), _("The request could not be understood."))


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error(
        request,
        403,
        _("You do not have access to this page"),
        _("Ask your practice administrator if you need it for your work."),
    )


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error(
        request, 404, _("Page not found"), _("The address may be mistyped or out of date.")
    )


def server_error(request: HttpRequest) -> HttpResponse:
    # Rendered without the request context: the failure may lie in what a context needs.
    from django.template import loader

    template = loader.get_template("core/server_error.html")
    return HttpResponse(template.render(), status=500)
