"""Patient documents: upload a scan or a PDF into encrypted storage, list, open, strike.

What a file is gets decided by its bytes, never by its name or the browser's claim: a PDF
must start with ``%PDF-`` and open in pypdf; an image must be a PNG, JPEG or WebP that
Pillow recognises and verifies. Anything else is refused before a byte is stored.

Who may do what depends on the category: the front desk files what it scans at the desk
(insurance cards, IDs, consents, referrals, other papers); lab results, imaging and outside
records are clinical, for clinicians only, and hidden from those who may not see the
clinical chart.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import date
from pathlib import PurePosixPath
from typing import IO, Literal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.template.defaultfilters import date as format_date
from django.template.defaultfilters import filesizeformat
from django.utils.timezone import localdate
from django.utils.translation import gettext_lazy as _
from PIL import Image, UnidentifiedImageError
from pypdf import PasswordType, PdfReader

from ambula.accounts.models import User
from ambula.accounts.policy import Capability, can, require
from ambula.audit.services import record
from ambula.core.errors import NotFound
from ambula.core.storage import DEFAULT_MAX_BYTES
from ambula.patients.models import Document, Patient, document_path

CATEGORY = "documents"
Category = Document.Category

# What the front desk scans and files; everything else is clinical.
DEMOGRAPHIC_CATEGORIES = frozenset(
    {
        Category.INSURANCE_CARD,
        Category.IDENTIFICATION,
        Category.CONSENT,
        Category.REFERRAL,
        Category.OTHER,
    }
)

ORIGINAL_NAME_MAX = 200
MEBIBYTE = 1024 * 1024


PDF = "application/pdf"
# The content types we accept, with their file name extensions (the first is the one a
# download gets when its name has none of them).
EXTENSIONS = {
    PDF: (".pdf",),
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "image/webp": (".webp",),
}
_KNOWN_SUFFIXES = {suffix for suffixes in EXTENSIONS.values() for suffix in suffixes}
# Pillow's format names for the images we accept, with their content types.
IMAGE_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
# For the file picker: a hint to the browser, not a check (the bytes are checked).
ACCEPT = ".pdf,image/png,image/jpeg,image/webp"

NOT_A_DOCUMENT = _("This file is not a PDF or an image (PNG, JPEG, WebP).")


# --- Who may see and file which categories ------------------------------------------------------


def categories_visible_to(actor: User) -> list[str]:
    """The categories the actor may see: all for clinicians, the non-clinical ones otherwise."""
    if can(actor, Capability.VIEW_CLINICAL_CHART):
        return list(Category.values)
    if can(actor, Capability.VIEW_DEMOGRAPHICS):
        return [value for value in Category.values if value in DEMOGRAPHIC_CATEGORIES]
    return []


def categories_editable_by(actor: User) -> list[str]:
    """The categories the actor may upload (and strike out)."""
    if can(actor, Capability.EDIT_CLINICAL_CHART):
        return list(Category.values)
    if can(actor, Capability.EDIT_DEMOGRAPHICS):
        return [value for value in Category.values if value in DEMOGRAPHIC_CATEGORIES]
    return []


def capability_to_edit(category: str) -> Capability:
    """The capability needed to file or strike a document of this category."""
    if category in DEMOGRAPHIC_CATEGORIES:
        return Capability.EDIT_DEMOGRAPHICS
    return Capability.EDIT_CLINICAL_CHART


# --- Reading a file's bytes -------------------------------------------------------------------


def max_document_bytes() -> int:
    return getattr(settings, "DOCUMENT_MAX_BYTES", DEFAULT_MAX_BYTES)


def size_in_words(size: int) -> str:
    """A size the way people say it: "25 MB", "1.5 MB"; below 1 MiB as Django says it."""
    if size < MEBIBYTE:
        return str(filesizeformat(size))
    megabytes = f"{size / MEBIBYTE:.1f}".removesuffix(".0")
    return _("%(megabytes)s MB") % {"megabytes": megabytes}


def sniff_content_type(uploaded_file: IO[bytes]) -> str:
    """Return the file's content type as its bytes show it, or raise ValidationError.

    The file must be seekable (Django's uploaded files are: in memory, or a temporary file).
    """
    uploaded_file.seek(0)
    head = uploaded_file.read(8)
    uploaded_file.seek(0)
    if head.startswith(b"%PDF-"):
        _check_pdf(uploaded_file)
        return PDF
    return _image_content_type(uploaded_file)


def _check_pdf(uploaded_file: IO[bytes]) -> None:
    try:
        reader = PdfReader(uploaded_file)
        # Passworded PDFs are kept as they are (a patient's own records often come that way);
        # the rest must have a page tree pypdf can walk.
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            return
        if len(reader.pages) < 1:
            raise ValueError("no pages")
    except Exception:  # pypdf raises many kinds of error on a broken file; all mean "refuse"
        raise ValidationError(
            _("This file starts like a PDF but is damaged or not really a PDF."),
            code="broken_pdf",
        ) from None
    finally:
        uploaded_file.seek(0)


def _image_content_type(uploaded_file: IO[bytes]) -> str:
    try:
        with Image.open(uploaded_file, formats=list(IMAGE_FORMATS)) as image:
            image_format = image.format
            # verify() checks the structure (PNG chunk checksums, ...) without decoding pixels.
            image.verify()
    except Image.DecompressionBombError:
        raise ValidationError(
            _("This image has too many pixels to open safely."), code="image_too_large"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ValidationError(NOT_A_DOCUMENT, code="not_a_document") from None
    finally:
        uploaded_file.seek(0)
    if image_format not in IMAGE_FORMATS:
        raise ValidationError(NOT_A_DOCUMENT, code="not_a_document")
    return IMAGE_FORMATS[image_format]


def _sha256_of(uploaded_file: File) -> str:
    digest = hashlib.sha256()
    for chunk in uploaded_file.chunks():
        digest.update(chunk)
    uploaded_file.seek(0)
    return digest.hexdigest()


# --- Names ------------------------------------------------------------------------------------


def clean_original_name(name: str, content_type: str) -> str:
    """The uploaded file's own name, as a plain printable base name of at most 200 characters.

    Kept only to show and to offer on download; never used on disk. Control and format
    characters (a right-to-left override can disguise "cod.exe" as "exe.doc") are dropped.
    """
    base_name = re.split(r"[\\/]", name or "")[-1]
    characters = []
    for character in unicodedata.normalize("NFC", base_name):
        kind = unicodedata.category(character)
        if kind.startswith("Z") or character.isspace():
            characters.append(" ")
        elif not kind.startswith("C"):
            characters.append(character)
    printable = " ".join("".join(characters).split()).strip(" .")
    if not printable:
        printable = "document" + EXTENSIONS[content_type][0]
    if len(printable) > ORIGINAL_NAME_MAX:
        suffix = PurePosixPath(printable).suffix
        suffix = suffix if len(suffix) <= 10 else ""
        printable = printable[: ORIGINAL_NAME_MAX - len(suffix)].rstrip(" .") + suffix
    return printable


def download_name(document: Document) -> str:
    """A file name safe to offer in Content-Disposition, with the extension its content has."""
    extensions = EXTENSIONS.get(document.content_type, EXTENSIONS[PDF])
    path = PurePosixPath(document.original_name or "document")
    suffix = path.suffix.lower()
    stem = path.stem if suffix in _KNOWN_SUFFIXES else path.name
    stem = re.sub(r"[^\w\-. ()]+", "_", stem).strip(" ._")[:150] or "document"
    return stem + (suffix if suffix in extensions else extensions[0])


# --- Services ---------------------------------------------------------------------------------


def document_upload(
    *,
    actor: User,
    patient: Patient,
    uploaded_file: File,
    category: str,
    title: str = "",
    document_date: date | None = None,
) -> Document:
    """Check the file by its content, store it encrypted and file it in the patient's record."""
    require(actor, capability_to_edit(category))
    today = localdate()
    document_date = document_date or today
    if document_date > today:
        raise ValidationError(
            {
                "document_date": ValidationError(
                    _("The document's date cannot be in the future."), code="future_date"
                )
            }
        )
    content_type = _checked_content_type(uploaded_file)
    document = Document(
        patient=patient,
        category=category,
        title=" ".join(title.split()),
        document_date=document_date,
        original_name=clean_original_name(getattr(uploaded_file, "name", ""), content_type),
        content_type=content_type,
        size=uploaded_file.size,
        sha256=_sha256_of(uploaded_file),
        uploaded_by=actor,
    )
    if not document.title:
        label = Category(category).label if category in Category.values else category
        document.title = _("%(category)s, %(date)s") % {
            "category": label,
            "date": format_date(document_date, "Y-m-d"),
        }
    document.full_clean(exclude=["file"])
    # The file is written first (encrypted, under a random name), then the row. Should the row
    # fail, the file goes too; callers do not wrap this in a longer transaction, which could
    # roll the row back after the file is already kept.
    try:
        with transaction.atomic():
            document.file.save(document_path(document, ""), uploaded_file, save=False)
            document.save()
            record(
                actor=actor,
                action="patients.document_uploaded",
                category=CATEGORY,
                target=document,
                patient=patient,
                changes={"category": category, "content_type": content_type, "size": document.size},
            )
    except ValidationError as error:
        _delete_stored(document)
        if hasattr(error, "error_dict"):
            raise
        # The storage's own size check, for a file that grew past its announced size.
        raise ValidationError({"file": error.error_list}) from None
    except BaseException:
        _delete_stored(document)
        raise
    return document


def _checked_content_type(uploaded_file: File) -> str:
    size = getattr(uploaded_file, "size", None)
    limit = max_document_bytes()
    if size is None:
        raise ValidationError(
            {"file": ValidationError(_("The file's size could not be read."), code="no_size")}
        )
    if size == 0:
        raise ValidationError({"file": ValidationError(_("The file is empty."), code="empty_file")})
    if size > limit:
        raise ValidationError(
            {
                "file": ValidationError(
                    _("This file is %(size)s; documents can be at most %(limit)s."),
                    code="file_too_large",
                    params={"size": size_in_words(size), "limit": size_in_words(limit)},
                )
            }
        )
    try:
        return sniff_content_type(uploaded_file)
    except ValidationError as error:
        raise ValidationError({"file": error.error_list}) from None


def _delete_stored(document: Document) -> None:
    # A file written for a row that was never saved (the row's transaction failed).
    if document.file.name:
        document.file.storage.delete(document.file.name)


@transaction.atomic
def document_strike(*, actor: User, document: Document) -> Document:
    """Mark a document entered in error (the wrong patient, a bad scan); it leaves the list.

    The file is kept: what was in the record, and who saw it, must stay answerable.
    """
    require(actor, capability_to_edit(document.category))
    document = Document.objects.select_for_update().get(pk=document.pk)
    if document.entered_in_error:
        raise ValidationError(
            _("This document was already marked entered in error."), code="already_struck"
        )
    document.entered_in_error = True
    document.save(update_fields=["entered_in_error", "updated_at"])
    record(
        actor=actor,
        action="patients.document_struck",
        category=CATEGORY,
        target=document,
        patient_id=document.patient_id,
        changes={"entered_in_error": {"old": False, "new": True}},
    )
    return document


# --- Readers ----------------------------------------------------------------------------------


def documents_for_chart(*, actor: User, patient: Patient) -> list[Document]:
    """The patient's documents the actor may see, newest first (the read is audited)."""
    require(actor, Capability.VIEW_DEMOGRAPHICS)
    documents = list(
        patient.documents.filter(
            entered_in_error=False, category__in=categories_visible_to(actor)
        ).select_related("uploaded_by")
    )
    record(actor=actor, action="patients.documents_viewed", category=CATEGORY, patient=patient)
    return documents


def document_get(*, actor: User, patient: Patient, document_id) -> Document:
    """One of the patient's documents, or NotFound whether missing, struck or not for the actor."""
    try:
        return patient.documents.get(
            pk=document_id, entered_in_error=False, category__in=categories_visible_to(actor)
        )
    except (Document.DoesNotExist, ValueError, ValidationError):
        raise NotFound from None


def document_file_open(
    *, actor: User, patient: Patient, document_id, purpose: Literal["download", "preview"]
) -> tuple[Document, IO[bytes]]:
    """The document and a stream of its decrypted bytes; the read is audited.

    The stream decrypts one 64 KiB record at a time: serve it as it is, never read it whole.
    The caller closes it (a FileResponse does).
    """
    require(actor, Capability.VIEW_DEMOGRAPHICS)
    document = document_get(actor=actor, patient=patient, document_id=document_id)
    stream = document.file.storage.open(document.file.name).file
    try:
        record(
            actor=actor,
            action=(
                "patients.document_downloaded"
                if purpose == "download"
                else "patients.document_previewed"
            ),
            category=CATEGORY,
            target=document,
            patient=patient,
        )
    except BaseException:
        stream.close()
        raise
    return document, stream
