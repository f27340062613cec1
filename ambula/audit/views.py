"""Audit trail pages for the privacy officer and administrators. Reading them is audited too."""

import csv

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from ambula.accounts.policy import Capability, requires
from ambula.audit.forms import AuditFilterForm, DisclosuresForm
from ambula.audit.selectors import (
    SORTABLE_COLUMNS,
    audit_event_get,
    audit_event_list,
    disclosures_for_patient,
)
from ambula.audit.services import changes_of, record

PAGE_SIZE = 50
CSV_COLUMNS = [
    "sequence",
    "occurred_at",
    "actor_username",
    "actor_roles",
    "action",
    "kind",
    "category",
    "outcome",
    "target_type",
    "target_id",
    "patient_id",
    "ip_address",
    "request_id",
    "changed_fields",
]


def _as_recorded(filters: dict) -> dict:
    """The filters as the audit event of a search or export keeps them."""
    return {"filters": {name: str(value) for name, value in filters.items()}}


@requires(Capability.VIEW_AUDIT)
@require_GET
def events(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    filters = form.filters() if form.is_valid() else {}
    sort = request.GET.get("sort", "-sequence")
    matching = audit_event_list(actor=request.user, sort=sort, **filters)
    page = Paginator(matching, PAGE_SIZE).get_page(request.GET.get("page"))
    record(
        actor=request.user,
        action="audit.searched",
        category="audit",
        changes=_as_recorded(filters),
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "audit/events.html",
        {
            "title": _("Audit trail"),
            "form": form,
            "page": page,
            "sort": sort if sort.removeprefix("-") in SORTABLE_COLUMNS else "-sequence",
            "query": query.urlencode(),
            "query_without_sort": _without(query, "sort"),
        },
    )


def _without(query, key: str) -> str:
    copy = query.copy()
    copy.pop(key, None)
    return copy.urlencode()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _spreadsheet_safe(value) -> str:
    """A cell a spreadsheet will not run: usernames of failed sign-ins are anyone's text."""
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


class _Echo:
    def write(self, value):
        return value


@requires(Capability.VIEW_AUDIT)
@require_GET
def export(request: HttpRequest) -> HttpResponse:
    """Every matching event as CSV, streamed; the export itself is an audit event."""
    form = AuditFilterForm(request.GET or None)
    if request.GET and not form.is_valid():
        return render(
            request,
            "audit/events.html",
            {"title": _("Audit trail"), "form": form, "page": None},
            status=400,
        )
    filters = form.filters() if form.is_bound else {}
    matching = audit_event_list(actor=request.user, sort="sequence", **filters)
    record(
        actor=request.user,
        action="audit.exported",
        category="audit",
        changes=_as_recorded(filters),
    )
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(CSV_COLUMNS)
        for event in matching.iterator(chunk_size=2000):
            yield writer.writerow([_spreadsheet_safe(cell) for cell in _csv_cells(event)])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit-trail.csv"'
    return response


def _csv_cells(event) -> list:
    cells = []
    for name in CSV_COLUMNS:
        if name == "occurred_at":
            cells.append(localtime(event.occurred_at).isoformat())
        elif name == "changed_fields":
            cells.append(";".join(event.changed_fields))
        else:
            cells.append(getattr(event, name) or "")
    return cells


@requires(Capability.VIEW_AUDIT)
@require_GET
def event_detail(request: HttpRequest, event_id) -> HttpResponse:
    event = audit_event_get(actor=request.user, event_id=event_id)
    # The details may hold old and new values of patient data: reading them is recorded.
    record(actor=request.user, action="audit.event_viewed", category="audit", target=event)
    return render(
        request,
        "audit/event_detail.html",
        {
            "title": _("Audit event %(sequence)s") % {"sequence": event.sequence},
            "event": event,
            "changes": changes_of(event),
        },
    )


@requires(Capability.VIEW_AUDIT)
@require_GET
def disclosures(request: HttpRequest) -> HttpResponse:
    """The accounting of disclosures for one patient (HIPAA 164.528): six years back."""
    form = DisclosuresForm(request.GET or None)
    found = None
    if form.is_valid():
        patient_id = form.cleaned_data["patient_id"]
        found = disclosures_for_patient(actor=request.user, patient_id=patient_id)
        record(
            actor=request.user,
            action="audit.disclosures_viewed",
            category="audit",
            patient_id=patient_id,
        )
    return render(
        request,
        "audit/disclosures.html",
        {"title": _("Accounting of disclosures"), "form": form, "disclosures": found},
    )
