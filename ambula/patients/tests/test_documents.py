import hashlib
import io
import os
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.utils.timezone import localdate
from PIL import Image
from pypdf import PdfWriter

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.core.errors import AccessDenied, NotFound
from ambula.core.storage import MAGIC, DecryptingReader, EncryptedFileSystemStorage
from ambula.patients.documents import (
    clean_original_name,
    document_file_open,
    document_strike,
    document_upload,
    documents_for_chart,
    download_name,
)
from ambula.patients.models import Document
from ambula.patients.tests.factories import registered_patient
from ambula.patients.views.documents import document_download

pytestmark = pytest.mark.django_db


# --- Real files, made here ---------------------------------------------------------------------


def pdf_bytes(*, password: str | None = None) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    if password:
        writer.encrypt(password)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def image_bytes(image_format: str, size=(40, 30), *, noise: bool = False) -> bytes:
    if noise:  # incompressible: a file of several 64 KiB records
        image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    else:
        image = Image.new("RGB", size, (20, 120, 110))
    buffer = io.BytesIO()
    image.save(buffer, image_format)
    return buffer.getvalue()


def upload(name: str, content: bytes, content_type: str = "application/pdf"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def stored_names() -> set[str]:
    return set(Document._meta.get_field("file").storage.names())


@pytest.fixture(autouse=True)
def storage(monkeypatch, tmp_path):
    """A documents folder of this test's own, so it can tell what was (not) written.

    The file field resolved its storage when the model was defined; swap it there.
    """
    storage = EncryptedFileSystemStorage(location=tmp_path / "documents")
    monkeypatch.setattr(Document._meta.get_field("file"), "storage", storage)
    return storage


@pytest.fixture
def nurse():
    return UserFactory(username="nurse1", full_name="Nora Nurse", roles=[Role.NURSE])


@pytest.fixture
def desk():
    return UserFactory(username="desk1", full_name="Dana Desk", roles=[Role.FRONT_DESK])


@pytest.fixture
def biller():
    return UserFactory(username="biller1", roles=[Role.BILLER])


@pytest.fixture
def patient(desk):
    return registered_patient(actor=desk)


def file_error(caught) -> tuple[str, str]:
    error = caught.value.error_dict["file"][0]
    return error.code, " ".join(ValidationError(error).messages)


# --- Services ----------------------------------------------------------------------------------


def test_a_pdf_is_stored_encrypted_and_comes_back_byte_for_byte(nurse, patient, storage):
    content = pdf_bytes()
    document = document_upload(
        actor=nurse,
        patient=patient,
        uploaded_file=upload("Cardiology letter.pdf", content),
        category="outside_records",
        title="  Cardiology   consult ",
        document_date=date(2024, 2, 29),
    )
    document.refresh_from_db()
    assert document.title == "Cardiology consult"
    assert (document.content_type, document.size) == ("application/pdf", len(content))
    assert document.sha256 == hashlib.sha256(content).hexdigest()
    assert document.original_name == "Cardiology letter.pdf"
    assert document.uploaded_by == nurse
    assert document.document_date == date(2024, 2, 29)
    # On disk: our header and ciphertext, under a random name that says nothing.
    raw = Path(storage.path(document.file.name)).read_bytes()
    assert raw.startswith(MAGIC)
    assert content not in raw and b"%PDF-" not in raw
    assert "Cardiology" not in document.file.name and str(patient.pk) not in document.file.name
    _document, stream = document_file_open(
        actor=nurse, patient=patient, document_id=document.pk, purpose="download"
    )
    with stream:
        assert stream.read() == content


def test_a_file_of_several_records_round_trips(nurse, patient):
    content = image_bytes("PNG", (300, 300), noise=True)
    assert len(content) > 3 * 64 * 1024
    document = document_upload(
        actor=nurse, patient=patient, uploaded_file=upload("x.png", content), category="imaging"
    )
    _document, stream = document_file_open(
        actor=nurse, patient=patient, document_id=document.pk, purpose="preview"
    )
    with stream:
        assert stream.read() == content


def test_uploading_is_audited_without_the_files_content(nurse, patient):
    document = document_upload(
        actor=nurse,
        patient=patient,
        uploaded_file=upload("labs.pdf", pdf_bytes()),
        category="lab_result",
        title="CBC",
    )
    event = AuditEvent.objects.get(action="patients.document_uploaded")
    assert (event.patient_id, event.category, event.kind) == (patient.pk, "documents", "create")
    assert (event.target_type, event.target_id) == ("patients.document", str(document.pk))
    assert changes_of(event) == {
        "category": "lab_result",
        "content_type": "application/pdf",
        "size": document.size,
    }


@pytest.mark.parametrize(
    ("image_format", "content_type", "extension"),
    [("PNG", "image/png", ".png"), ("JPEG", "image/jpeg", ".jpg"), ("WEBP", "image/webp", ".webp")],
)
def test_images_are_typed_by_their_content_not_their_name(
    nurse, patient, image_format, content_type, extension
):
    # Named and announced as a PDF; the bytes say otherwise, and the bytes win.
    document = document_upload(
        actor=nurse,
        patient=patient,
        uploaded_file=upload("scan.pdf", image_bytes(image_format), "application/pdf"),
        category="identification",
    )
    assert document.content_type == content_type
    assert download_name(document) == f"scan{extension}"


def test_the_title_defaults_to_the_category_and_the_date_to_today(nurse, patient):
    document = document_upload(
        actor=nurse,
        patient=patient,
        uploaded_file=upload("card.png", image_bytes("PNG")),
        category="insurance_card",
    )
    assert document.document_date == localdate()
    assert document.title == f"Insurance card, {localdate():%Y-%m-%d}"


def test_a_password_protected_pdf_is_accepted(nurse, patient):
    document = document_upload(
        actor=nurse,
        patient=patient,
        uploaded_file=upload("records.pdf", pdf_bytes(password="s3cret")),
        category="outside_records",
    )
    assert document.content_type == "application/pdf"


def test_text_named_like_a_pdf_is_refused(nurse, patient):
    with pytest.raises(ValidationError) as caught:
        document_upload(
            actor=nurse,
            patient=patient,
            uploaded_file=upload("results.pdf", b"Hemoglobin 13.5 g/dL\n", "application/pdf"),
            category="lab_result",
        )
    assert file_error(caught) == (
        "not_a_document",
        "This file is not a PDF or an image (PNG, JPEG, WebP).",
    )
    assert not Document.objects.exists()
    assert stored_names() == set()


@pytest.mark.parametrize(
    "content",
    [
        b"%PDF-1.7\n" + b"garbage " * 100,
        pdf_bytes()[:200],  # a real PDF cut short
    ],
    ids=["garbage", "truncated"],
)
def test_a_file_that_only_starts_like_a_pdf_is_refused(nurse, patient, content):
    with pytest.raises(ValidationError) as caught:
        document_upload(
            actor=nurse,
            patient=patient,
            uploaded_file=upload("scan.pdf", content),
            category="lab_result",
        )
    code, message = file_error(caught)
    assert code == "broken_pdf"
    assert "damaged or not really a PDF" in message
    assert not Document.objects.exists()


@pytest.mark.parametrize(
    "content",
    [
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 50,  # a PNG signature and nothing sound after it
        image_bytes("JPEG")[:40],  # a JPEG cut short
        b"GIF89a" + b"\x00" * 40,  # a real format we do not accept
        b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
        b"MZ\x90\x00",
    ],
    ids=["broken-png", "truncated-jpeg", "gif", "svg", "exe"],
)
def test_anything_but_a_sound_pdf_png_jpeg_or_webp_is_refused(nurse, patient, content):
    with pytest.raises(ValidationError) as caught:
        document_upload(
            actor=nurse,
            patient=patient,
            uploaded_file=upload("scan.png", content, "image/png"),
            category="imaging",
        )
    assert file_error(caught)[0] == "not_a_document"


def test_an_empty_file_is_refused(nurse, patient):
    with pytest.raises(ValidationError) as caught:
        document_upload(
            actor=nurse,
            patient=patient,
            uploaded_file=upload("empty.pdf", b""),
            category="referral",
        )
    assert file_error(caught) == ("empty_file", "The file is empty.")


@override_settings(DOCUMENT_MAX_BYTES=1024 * 1024)
def test_a_file_over_the_limit_is_refused_before_it_is_read(nurse, patient):
    content = pdf_bytes() + b"\n" * (1024 * 1024)
    with pytest.raises(ValidationError) as caught:
        document_upload(
            actor=nurse,
            patient=patient,
            uploaded_file=upload("big.pdf", content),
            category="outside_records",
        )
    code, message = file_error(caught)
    assert code == "file_too_large"
    assert message == "This file is 1 MB; documents can be at most 1 MB."
    assert stored_names() == set()
    # Exactly at the limit is fine.
    at_limit = pdf_bytes()
    at_limit += b"\n" * (1024 * 1024 - len(at_limit))
    document_upload(
        actor=nurse,
        patient=patient,
        uploaded_file=upload("limit.pdf", at_limit),
        category="outside_records",
    )


def test_the_default_limit_is_named_in_megabytes(nurse, patient):
    content = b"\x00" * (25 * 1024 * 1024 + 1)
    with pytest.raises(ValidationError) as caught:
        document_upload(
            actor=nurse,
            patient=patient,
            uploaded_file=upload("huge.pdf", content),
            category="other",
        )
    assert file_error(caught)[1] == "This file is 25 MB; documents can be at most 25 MB."


def test_the_document_date_cannot_be_in_the_future(nurse, patient):
    with pytest.raises(ValidationError) as caught:
        document_upload(
            actor=nurse,
            patient=patient,
            uploaded_file=upload("a.pdf", pdf_bytes()),
            category="referral",
            document_date=localdate() + timedelta(days=1),
        )
    assert "document_date" in caught.value.error_dict
    assert not Document.objects.exists()


def test_an_unknown_category_is_refused(nurse, patient):
    with pytest.raises(ValidationError) as caught:
        document_upload(
            actor=nurse,
            patient=patient,
            uploaded_file=upload("a.pdf", pdf_bytes()),
            category="tattoos",
        )
    assert "category" in caught.value.error_dict
    assert stored_names() == set()


@pytest.mark.parametrize(
    ("uploaded", "kept"),
    [
        ("C:\\Users\\dana\\Desktop\\card front.png", "card front.png"),
        ("../../etc/passwd", "passwd"),
        ("invoice\u202egnp.exe", "invoicegnp.exe"),  # a right-to-left override, dropped
        ("tab\tand\nnewline.pdf", "tab and newline.pdf"),
        ("...", "document.pdf"),
        ("", "document.pdf"),
        ("a" * 300 + ".pdf", "a" * 196 + ".pdf"),
    ],
)
def test_the_original_name_is_kept_plain_and_short(uploaded, kept):
    assert clean_original_name(uploaded, "application/pdf") == kept


@pytest.mark.parametrize(
    ("original_name", "content_type", "offered"),
    [
        ("Lab results.PDF", "application/pdf", "Lab results.pdf"),
        ("photo.jpeg", "image/jpeg", "photo.jpeg"),
        ("card.pdf", "image/png", "card.png"),
        ('say "hi"; rm -rf.pdf', "application/pdf", "say _hi_ rm -rf.pdf"),
        ("notes.txt", "application/pdf", "notes.txt.pdf"),
        ("José García.png", "image/png", "José García.png"),
    ],
)
def test_downloads_are_offered_under_a_safe_name_with_the_right_extension(
    original_name, content_type, offered
):
    document = Document(original_name=original_name, content_type=content_type)
    assert download_name(document) == offered


# --- Who may do what ---------------------------------------------------------------------------


def test_the_front_desk_files_cards_but_not_lab_results(desk, patient):
    card = document_upload(
        actor=desk,
        patient=patient,
        uploaded_file=upload("card.jpg", image_bytes("JPEG")),
        category="insurance_card",
    )
    with pytest.raises(AccessDenied):
        document_upload(
            actor=desk,
            patient=patient,
            uploaded_file=upload("labs.pdf", pdf_bytes()),
            category="lab_result",
        )
    assert list(Document.objects.all()) == [card]


@pytest.mark.parametrize("role", [Role.BILLER, Role.ADMIN, Role.PRIVACY_OFFICER])
def test_roles_without_edit_rights_cannot_upload_anything(patient, role):
    user = UserFactory(username="someone", roles=[role])
    with pytest.raises(AccessDenied):
        document_upload(
            actor=user,
            patient=patient,
            uploaded_file=upload("card.png", image_bytes("PNG")),
            category="insurance_card",
        )
    assert stored_names() == set()


def test_non_clinical_users_see_only_non_clinical_documents(nurse, desk, biller, patient):
    card = document_upload(
        actor=desk,
        patient=patient,
        uploaded_file=upload("card.png", image_bytes("PNG")),
        category="insurance_card",
    )
    labs = document_upload(
        actor=nurse,
        patient=patient,
        uploaded_file=upload("labs.pdf", pdf_bytes()),
        category="lab_result",
    )
    assert set(documents_for_chart(actor=nurse, patient=patient)) == {card, labs}
    assert documents_for_chart(actor=desk, patient=patient) == [card]
    assert documents_for_chart(actor=biller, patient=patient) == [card]
    with pytest.raises(NotFound):
        document_file_open(actor=desk, patient=patient, document_id=labs.pk, purpose="download")
    assert AuditEvent.objects.filter(action="patients.documents_viewed").count() == 3
    assert not AuditEvent.objects.filter(action="patients.document_downloaded").exists()


def test_a_struck_document_leaves_the_list_and_cannot_be_opened(nurse, desk, patient, storage):
    labs = document_upload(
        actor=nurse,
        patient=patient,
        uploaded_file=upload("labs.pdf", pdf_bytes()),
        category="lab_result",
    )
    with pytest.raises(AccessDenied):
        document_strike(actor=desk, document=labs)
    document_strike(actor=nurse, document=labs)
    assert documents_for_chart(actor=nurse, patient=patient) == []
    with pytest.raises(NotFound):
        document_file_open(actor=nurse, patient=patient, document_id=labs.pk, purpose="preview")
    with pytest.raises(ValidationError):
        document_strike(actor=nurse, document=labs)
    event = AuditEvent.objects.get(action="patients.document_struck")
    assert (event.patient_id, event.target_id) == (patient.pk, str(labs.pk))
    assert changes_of(event) == {"entered_in_error": {"old": False, "new": True}}
    # Kept on disk: the record of what was filed stays answerable.
    assert storage.exists(labs.file.name)


# --- Views -------------------------------------------------------------------------------------


def chart_url(patient) -> str:
    return f"/patients/{patient.pk}/"


def document_url(patient, document, suffix="") -> str:
    return f"/patients/{patient.pk}/documents/{document.pk}/{suffix}"


def test_upload_then_download_through_the_chart(client, sign_in, practice, nurse, patient):
    sign_in(client, nurse)
    content = pdf_bytes()
    response = client.post(
        f"/patients/{patient.pk}/documents/",
        {
            "file": upload("Discharge summary.pdf", content),
            "category": "outside_records",
            "title": "Discharge summary",
            "document_date": "2025-11-02",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == f"{chart_url(patient)}#documents-heading"
    document = Document.objects.get()

    chart = client.get(chart_url(patient)).content.decode()
    assert "Discharge summary" in chart and "2025-11-02" in chart and "Nora Nurse" in chart

    response = client.get(document_url(patient, document))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == content
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="Discharge summary.pdf"'
    assert response["Content-Length"] == str(len(content))
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Security-Policy"].startswith("default-src 'none'")
    event = AuditEvent.objects.get(action="patients.document_downloaded")
    assert (event.patient_id, event.actor, event.target_id) == (patient.pk, nurse, str(document.pk))


def test_the_download_streams_from_the_decrypting_reader(rf, nurse, patient):
    # Never read whole into memory: the response pulls 64 KiB records as it sends them.
    content = image_bytes("PNG", (300, 300), noise=True)
    document = document_upload(
        actor=nurse, patient=patient, uploaded_file=upload("x.png", content), category="imaging"
    )
    request = rf.get("/")
    request.user = nurse
    response = document_download(request, patient_id=patient.pk, document_id=document.pk)
    assert isinstance(response.file_to_stream, DecryptingReader)
    assert response.block_size == 64 * 1024
    assert b"".join(response.streaming_content) == content
    response.close()
    assert response.file_to_stream.closed


def test_preview_shows_the_file_inline_under_a_strict_policy(
    client, sign_in, practice, nurse, patient
):
    content = image_bytes("PNG")
    document = document_upload(
        actor=nurse, patient=patient, uploaded_file=upload("card.png", content), category="other"
    )
    sign_in(client, nurse)
    response = client.get(document_url(patient, document, "preview/"))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == content
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == 'inline; filename="card.png"'
    policy = response["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert response["X-Content-Type-Options"] == "nosniff"
    assert AuditEvent.objects.filter(
        action="patients.document_previewed", patient_id=patient.pk, kind="read"
    ).exists()


def test_a_non_ascii_name_is_offered_in_both_header_forms(
    client, sign_in, practice, nurse, patient
):
    document = document_upload(
        actor=nurse,
        patient=patient,
        uploaded_file=upload("Résumé médical.pdf", pdf_bytes()),
        category="outside_records",
    )
    sign_in(client, nurse)
    disposition = client.get(document_url(patient, document))["Content-Disposition"]
    assert disposition == "attachment; filename*=utf-8''R%C3%A9sum%C3%A9%20m%C3%A9dical.pdf"


def test_a_failed_upload_shows_the_chart_with_the_error(client, sign_in, practice, nurse, patient):
    sign_in(client, nurse)
    response = client.post(
        f"/patients/{patient.pk}/documents/",
        {"file": upload("x.pdf", b"not a pdf at all"), "category": "lab_result"},
    )
    assert response.status_code == 200
    form = response.context["document_form"]
    assert form.errors["file"] == ["This file is not a PDF or an image (PNG, JPEG, WebP)."]
    assert "This file is not a PDF or an image" in response.content.decode()
    assert not Document.objects.exists()


@override_settings(DOCUMENT_MAX_BYTES=64 * 1024)
def test_an_oversized_upload_through_the_chart_names_the_limit(
    client, sign_in, practice, nurse, patient
):
    sign_in(client, nurse)
    response = client.post(
        f"/patients/{patient.pk}/documents/",
        {
            "file": upload("big.png", image_bytes("PNG", (300, 300), noise=True)),
            "category": "other",
        },
    )
    assert response.status_code == 200
    (message,) = response.context["document_form"].errors["file"]
    assert message.replace("\xa0", " ").endswith("documents can be at most 64.0 KB.")
    assert not Document.objects.exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"category": "referral"}, "file"),
        ({"file": upload("e.pdf", b""), "category": "referral"}, "file"),
        ({"file": upload("a.png", image_bytes("PNG")), "category": ""}, "category"),
        ({"file": upload("a.png", image_bytes("PNG")), "category": "x"}, "category"),
        (
            {
                "file": upload("a.png", image_bytes("PNG")),
                "category": "other",
                "document_date": "9",
            },
            "document_date",
        ),
        (
            {
                "file": upload("a.png", image_bytes("PNG")),
                "category": "other",
                "document_date": (date.today() + timedelta(days=2)).isoformat(),
            },
            "document_date",
        ),
        (
            {"file": upload("a.png", image_bytes("PNG")), "category": "other", "title": "t" * 201},
            "title",
        ),
    ],
    ids=["no-file", "empty", "no-category", "bad-category", "bad-date", "future", "long-title"],
)
def test_bad_input_through_the_chart_writes_nothing(
    client, sign_in, practice, nurse, patient, data, field
):
    sign_in(client, nurse)
    response = client.post(f"/patients/{patient.pk}/documents/", data)
    assert response.status_code == 200
    assert field in response.context["document_form"].errors
    assert not Document.objects.exists()
    assert stored_names() == set()


def test_a_sound_file_sent_with_a_bad_form_must_be_chosen_again(
    client, sign_in, practice, nurse, patient
):
    sign_in(client, nurse)
    response = client.post(
        f"/patients/{patient.pk}/documents/",
        {"file": upload("scan.png", image_bytes("PNG")), "category": ""},
    )
    assert response.context["document_form"].errors["category"] == ["Choose a category."]
    assert "Choose “scan.png” again before you upload" in response.content.decode()
    # Not when the file itself was the problem: its own error says what to do.
    response = client.post(
        f"/patients/{patient.pk}/documents/",
        {"file": upload("scan.png", b"text"), "category": "other"},
    )
    assert "again before you upload" not in response.content.decode()


def test_the_front_desk_is_offered_only_the_categories_it_may_file(
    client, sign_in, practice, desk, patient
):
    sign_in(client, desk)
    html = client.get(chart_url(patient)).content.decode()
    assert 'enctype="multipart/form-data"' in html
    assert 'accept=".pdf,image/png,image/jpeg,image/webp"' in html
    assert 'value="insurance_card"' in html and 'value="lab_result"' not in html
    response = client.post(
        f"/patients/{patient.pk}/documents/",
        {"file": upload("labs.pdf", pdf_bytes()), "category": "lab_result"},
    )
    assert response.status_code == 200
    assert "category" in response.context["document_form"].errors
    assert not Document.objects.exists()


def test_the_front_desk_can_neither_see_nor_open_a_lab_result(
    client, sign_in, practice, nurse, desk, patient
):
    labs = document_upload(
        actor=nurse,
        patient=patient,
        uploaded_file=upload("labs.pdf", pdf_bytes()),
        category="lab_result",
        title="Lipid panel",
    )
    sign_in(client, desk)
    assert "Lipid panel" not in client.get(chart_url(patient)).content.decode()
    assert client.get(document_url(patient, labs)).status_code == 404
    assert client.get(document_url(patient, labs, "preview/")).status_code == 404
    assert client.post(document_url(patient, labs, "entered-in-error/")).status_code == 404
    assert not AuditEvent.objects.filter(action="patients.document_downloaded").exists()
    labs.refresh_from_db()
    assert not labs.entered_in_error


def test_a_biller_sees_the_card_but_cannot_upload(client, sign_in, practice, desk, biller, patient):
    card = document_upload(
        actor=desk,
        patient=patient,
        uploaded_file=upload("card.png", image_bytes("PNG")),
        category="insurance_card",
        title="Blue Cross card",
    )
    sign_in(client, biller)
    html = client.get(chart_url(patient)).content.decode()
    assert "Blue Cross card" in html
    assert "Upload a document" not in html and "Entered in error" not in html
    assert client.get(document_url(patient, card)).status_code == 200
    response = client.post(
        f"/patients/{patient.pk}/documents/",
        {"file": upload("card2.png", image_bytes("PNG")), "category": "insurance_card"},
    )
    assert response.status_code == 403
    assert Document.objects.count() == 1


def test_anonymous_users_are_sent_to_sign_in(client, practice, nurse, patient):
    document = document_upload(
        actor=nurse,
        patient=patient,
        uploaded_file=upload("a.pdf", pdf_bytes()),
        category="referral",
    )
    for response in (
        client.get(document_url(patient, document)),
        client.get(document_url(patient, document, "preview/")),
        client.post(
            f"/patients/{patient.pk}/documents/",
            {"file": upload("b.pdf", pdf_bytes()), "category": "referral"},
        ),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    assert Document.objects.count() == 1


def test_another_patients_document_is_not_found_through_this_patients_url(
    client, sign_in, practice, nurse, desk, patient
):
    other = registered_patient(actor=desk)
    theirs = document_upload(
        actor=nurse,
        patient=other,
        uploaded_file=upload("a.pdf", pdf_bytes()),
        category="referral",
    )
    sign_in(client, nurse)
    assert client.get(document_url(patient, theirs)).status_code == 404
    assert client.get(document_url(patient, theirs, "preview/")).status_code == 404
    assert client.post(document_url(patient, theirs, "entered-in-error/")).status_code == 404
    assert client.get(document_url(other, theirs)).status_code == 200


def test_striking_through_the_chart(client, sign_in, practice, desk, patient):
    card = document_upload(
        actor=desk,
        patient=patient,
        uploaded_file=upload("card.png", image_bytes("PNG")),
        category="insurance_card",
        title="Wrong patient's card",
    )
    sign_in(client, desk)
    response = client.post(document_url(patient, card, "entered-in-error/"))
    assert response.status_code == 302
    card.refresh_from_db()
    assert card.entered_in_error
    html = client.get(chart_url(patient)).content.decode()
    assert "marked entered in error" in html  # the message
    assert "No documents yet" in html
    assert client.get(document_url(patient, card)).status_code == 404


def test_the_chart_lists_documents_and_records_the_read(client, sign_in, practice, nurse, patient):
    document_upload(
        actor=nurse,
        patient=patient,
        uploaded_file=upload("big.png", image_bytes("PNG", (300, 300), noise=True)),
        category="imaging",
        title="Chest X-ray report",
    )
    sign_in(client, nurse)
    html = client.get(chart_url(patient)).content.decode()
    assert "Chest X-ray report" in html and "Imaging report" in html and "PNG" in html
    assert "KB" in html  # human-readable size
    assert 'href="#documents-heading"' in html
    assert AuditEvent.objects.filter(
        action="patients.documents_viewed", patient_id=patient.pk, actor=nurse
    ).exists()


def test_the_empty_section_says_what_to_do(client, sign_in, practice, desk, patient):
    sign_in(client, desk)
    html = client.get(chart_url(patient)).content.decode()
    assert "No documents yet" in html and "Upload a document" in html
