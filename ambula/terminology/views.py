"""The code picker's search: an HTML fragment of matching ICD-10-CM codes.

Codes are public reference data, so a search is not audited; the chart's clinical users are
the ones who pick codes, so only they may ask.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from ambula.accounts.policy import Capability, requires
from ambula.terminology.selectors import MAX_QUERY_LENGTH, icd10_search

PICKER_RESULTS = 15


@requires(Capability.VIEW_CLINICAL_CHART)
@require_GET
def icd10_search_view(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:MAX_QUERY_LENGTH]
    codes = icd10_search(query, limit=PICKER_RESULTS) if query else []
    return render(request, "terminology/_icd10_results.html", {"query": query, "codes": codes})
