"""The chart's documents: upload, download, preview in the browser, strike out."""

from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from ambula.accounts.policy import Capability, requires
from ambula.core.storage import CHUNK_BYTES
from ambula.patients.document_forms import DocumentUploadForm
from ambula.patients.documents import (
    document_file_open,
    document_get,
    document_strike,
    document_upload,
    download_name,
)
from ambula.patients.selectors import patient_get
from ambula.patients.views.chart import render_chart

# A file opened in its own tab: the browser's image or PDF viewer may draw it (Chromium's
# image page uses inline styles; its PDF viewer is an <embed> of the same URL), nothing runs.
PREVIEW_POLICY = "; ".join(
    [
        "default-src 'none'",
        "img-src 'self'",
        "style-src 'unsafe-inline'",
        "object-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
# A download is saved, not shown; should a browser show it anyway, it is a sandbox.
DOWNLOAD_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"


def _chart_url(patient) -> str:
    return reverse("patients:chart", kwargs={"patient_id": patient.pk}) + "#documents-heading"


@requires(Capability.EDIT_DEMOGRAPHICS)
@require_POST
def document_upload_view(request: HttpRequest, patient_id) -> HttpResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    form = DocumentUploadForm(request.POST, request.FILES, actor=request.user)
    if form.is_valid():
        try:
            document = document_upload(
                actor=request.user,
                patient=patient,
                uploaded_file=form.cleaned_data["file"],
                category=form.cleaned_data["category"],
                title=form.cleaned_data["title"],
                document_date=form.cleaned_data["document_date"],
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("“%(title)s” uploaded.") % {"title": document.title})
            return redirect(_chart_url(patient))
    return render_chart(request, patient, document_form=form)


def _add_errors(form: DocumentUploadForm, error: ValidationError) -> None:
    """Put the service's errors on the form's fields; the rest above the form."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, errors in error.error_dict.items():
        form.add_error(field if field in form.fields else NON_FIELD_ERRORS, errors)


@requires(Capability.VIEW_DEMOGRAPHICS)
@require_GET
def document_download(request: HttpRequest, patient_id, document_id) -> FileResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    document, stream = document_file_open(
        actor=request.user, patient=patient, document_id=document_id, purpose="download"
    )
    return _file_response(document, stream, as_attachment=True, policy=DOWNLOAD_POLICY)


@requires(Capability.VIEW_DEMOGRAPHICS)
@require_GET
def document_preview(request: HttpRequest, patient_id, document_id) -> FileResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    document, stream = document_file_open(
        actor=request.user, patient=patient, document_id=document_id, purpose="preview"
    )
    return _file_response(document, stream, as_attachment=False, policy=PREVIEW_POLICY)


def _file_response(document, stream, *, as_attachment: bool, policy: str) -> FileResponse:
    # The stream decrypts as it is read: the file is never held in memory whole.
    response = FileResponse(
        stream,
        as_attachment=as_attachment,
        filename=download_name(document),
        content_type=document.content_type,
    )
    response.block_size = CHUNK_BYTES
    response["Content-Length"] = str(stream.size)
    response["Content-Security-Policy"] = policy
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    # Other sites may not embed it with <img> or <object>, even with the user's cookies.
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    return response


@requires(Capability.EDIT_DEMOGRAPHICS)
@require_POST
def document_strike_view(request: HttpRequest, patient_id, document_id) -> HttpResponse:
    patient = patient_get(actor=request.user, patient_id=patient_id)
    document = document_get(actor=request.user, patient=patient, document_id=document_id)
    try:
        document_strike(actor=request.user, document=document)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request, _("“%(title)s” marked entered in error.") % {"title": document.title}
        )
    return redirect(_chart_url(patient))
