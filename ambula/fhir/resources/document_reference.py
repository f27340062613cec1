"""DocumentReference: the scanned and uploaded files in a patient's record (US Core
DocumentReference). Read-only.

The attachment is a link to the application's own download page, not the bytes: that page
checks the reader's session, decrypts as it streams and audits the download. The type is the
LOINC document code where one says what the category means, else "unknown" with the
category's words; the category itself travels in the practice's own code system.

Who sees which document follows the chart: clinicians every category, the front desk and
others who see demographics only the non-clinical ones (insurance cards, IDs, consents...).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Q
from django.urls import reverse

from ambula.accounts.policy import Capability
from ambula.fhir.mapper import US_CORE, ResourceMapper, instant, reference
from ambula.fhir.registry import register
from ambula.fhir.resources.chart_common import always, concept, day_text, including_deleted
from ambula.fhir.search_params import DateParam, FunctionParam, ReferenceParam, TokenParam
from ambula.patients.documents import categories_visible_to
from ambula.patients.models import Document

LOINC = "http://loinc.org"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
CATEGORY_SYSTEM = "urn:ambula:document-category"
FORMAT_SYSTEM = "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode"
Category = Document.Category

# LOINC document types for the categories that have a plain one.
TYPES = {
    Category.LAB_RESULT: ("11502-2", "Laboratory report"),
    Category.IMAGING: ("18748-4", "Diagnostic imaging study"),
    Category.REFERRAL: ("57133-1", "Referral note"),
    Category.CONSENT: ("59284-0", "Consent Document"),
    Category.OUTSIDE_RECORDS: ("11503-0", "Medical records"),
}


def _type(name: str, modifier: str, value: str) -> Q:
    system, bar, code = value.rpartition("|")
    categories: list[str] = []
    if not bar or system in ("", LOINC):
        categories += [category for category, (loinc, _) in TYPES.items() if loinc == code]
    if code == "unknown" and (not bar or system in ("", DATA_ABSENT)):
        categories += [category for category in Category.values if category not in TYPES]
    condition = Q(category__in=categories)
    return ~condition if modifier == "not" else condition


def _status(name: str, modifier: str, value: str) -> Q:
    # Only current documents are found; struck-out ones read as deleted.
    return always((value.rpartition("|")[2] == "current") != (modifier == "not"))


@register
class DocumentReferenceMapper(ResourceMapper):
    resource_type = "DocumentReference"
    model = Document
    profiles = (US_CORE + "us-core-documentreference",)
    read_capability = Capability.VIEW_DEMOGRAPHICS
    patient_path = "patient"
    search_params = {
        "patient": ReferenceParam(
            field="patient_id", targets=("Patient",), documentation="Whose record."
        ),
        "subject": ReferenceParam(field="patient_id", targets=("Patient",)),
        "category": TokenParam(
            field="category",
            system=CATEGORY_SYSTEM,
            codes={value: value for value in Category.values},
            documentation=f"The practice's document category ({CATEGORY_SYSTEM}).",
        ),
        "type": FunctionParam(
            function=_type,
            param_type="token",
            accepted_modifiers=("not",),
            documentation="LOINC document type, or unknown.",
        ),
        "date": DateParam(field="created_at", documentation="When the document was filed."),
        "period": DateParam(
            field="document_date", is_date=True, documentation="The document's own date."
        ),
        "status": FunctionParam(function=_status, param_type="token", accepted_modifiers=("not",)),
    }
    sort_fields = {"date": "created_at", "period": "document_date"}
    default_order = ("-document_date", "-created_at", "pk")

    def queryset(self):
        return Document.objects.filter(entered_in_error=False).select_related("patient")

    def visible(self, user, queryset):
        return queryset.filter(category__in=categories_visible_to(user))

    def get(self, resource_id: str) -> Document:
        return including_deleted(Document.objects.select_related("patient"), self, resource_id)

    def is_deleted(self, obj: Document) -> bool:
        return obj.entered_in_error

    def to_fhir(self, document: Document) -> dict:
        label = document.get_category_display()
        if document.category in TYPES:
            code, display = TYPES[document.category]
            document_type = concept(LOINC, code, display)
        else:
            document_type = concept(DATA_ABSENT, "unknown", "Unknown")
        document_type["text"] = str(label)
        url = settings.BASE_URL + reverse(
            "patients:document_download",
            kwargs={"patient_id": document.patient_id, "document_id": document.pk},
        )
        resource: dict[str, Any] = {
            "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{document.pk}"}],
            "status": "entered-in-error" if document.entered_in_error else "current",
            "type": document_type,
            "category": [concept(CATEGORY_SYSTEM, document.category, str(label))],
            "subject": reference("Patient", document.patient_id),
            "date": instant(document.created_at),
            "description": document.title,
            "content": [
                {
                    "attachment": {
                        "contentType": document.content_type,
                        "url": url,
                        "size": document.size,
                        "title": document.title,
                        "creation": day_text(document.document_date),
                    },
                    "format": {
                        "system": FORMAT_SYSTEM,
                        "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient",
                        "display": "mimeType Sufficient",
                    },
                }
            ],
            "context": {"period": {"start": day_text(document.document_date)}},
        }
        return resource
