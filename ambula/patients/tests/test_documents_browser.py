import io
import re
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect
from pypdf import PdfWriter

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import TEST_PASSWORD, UserFactory
from ambula.core.storage import EncryptedFileSystemStorage
from ambula.patients.models import Document
from ambula.patients.tests.factories import registered_patient

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def storage(monkeypatch, tmp_path):
    storage = EncryptedFileSystemStorage(location=tmp_path / "documents")
    monkeypatch.setattr(Document._meta.get_field("file"), "storage", storage)
    return storage


def pdf_bytes() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 80), (15, 118, 110)).save(buffer, "PNG")
    return buffer.getvalue()


def sign_in(page, live_server, user):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


def test_upload_a_pdf_then_download_it(page, live_server, practice, tmp_path):
    nurse = UserFactory(username="nurse1", full_name="Nora Nurse", roles=[Role.NURSE])
    patient = registered_patient(actor=nurse)
    content = pdf_bytes()
    scan = tmp_path / "Cardiology letter.pdf"
    scan.write_bytes(content)

    sign_in(page, live_server, nurse)
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    section = page.get_by_role("region", name="Documents")
    expect(section.get_by_text("No documents yet")).to_be_visible()

    section.get_by_label("File").set_input_files(scan)
    section.get_by_label("Category").select_option(label="Outside records")
    section.get_by_label("Title").fill("Cardiology consult")
    section.get_by_role("button", name="Upload").click()

    expect(page.get_by_role("status")).to_contain_text("“Cardiology consult” uploaded.")
    row = section.get_by_role("row").filter(has_text="Cardiology consult")
    expect(row).to_contain_text("Outside records")
    expect(row).to_contain_text("PDF")
    expect(row).to_contain_text("Nora Nurse")
    expect(row).to_contain_text("Cardiology letter.pdf")

    with page.expect_download() as download_info:
        row.get_by_role("link", name="Download").click()
    download = download_info.value
    assert download.suggested_filename == "Cardiology letter.pdf"
    assert Path(download.path()).read_bytes() == content

    # Preview: the browser's own PDF viewer, in a new tab, under the preview's strict policy.
    with page.context.expect_page() as preview_info:
        row.get_by_role("link", name="Preview").click()
    preview = preview_info.value
    expect(preview).to_have_url(re.compile(rf"/documents/{Document.objects.get().pk}/preview/$"))
    # Chromium draws PDFs in its viewer extension's frame; a refused <embed> would leave none.
    for _attempt in range(50):
        if any(frame.url.startswith("chrome-extension://") for frame in preview.frames):
            break
        preview.wait_for_timeout(100)
    assert any(frame.url.startswith("chrome-extension://") for frame in preview.frames)
    assert page.console_errors == []


def test_a_wrong_file_is_refused_with_the_reason_in_the_form(page, live_server, practice, tmp_path):
    desk = UserFactory(username="desk1", roles=[Role.FRONT_DESK])
    patient = registered_patient(actor=desk)
    fake = tmp_path / "insurance card.pdf"
    fake.write_text("This is not a scan.")

    sign_in(page, live_server, desk)
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    section = page.get_by_role("region", name="Documents")
    expect(section.get_by_label("Category").locator("option", has_text="Lab result")).to_have_count(
        0
    )
    section.get_by_label("File").set_input_files(fake)
    section.get_by_label("Category").select_option(label="Insurance card")
    section.get_by_role("button", name="Upload").click()

    expect(
        section.get_by_text("This file is not a PDF or an image (PNG, JPEG, WebP).")
    ).to_be_visible()
    assert not Document.objects.exists()
    assert page.console_errors == []


def test_preview_opens_the_image_in_a_new_tab_without_policy_errors(
    page, live_server, practice, tmp_path
):
    desk = UserFactory(username="desk1", roles=[Role.FRONT_DESK])
    patient = registered_patient(actor=desk)
    card = tmp_path / "card.png"
    card.write_bytes(png_bytes())

    sign_in(page, live_server, desk)
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    section = page.get_by_role("region", name="Documents")
    section.get_by_label("File").set_input_files(card)
    section.get_by_label("Category").select_option(label="Insurance card")
    section.get_by_role("button", name="Upload").click()
    row = section.get_by_role("row").filter(has_text="Insurance card")

    # A bare image has no <link rel="icon">, so the browser asks for /favicon.ico, which the
    # application does not serve; that 404 is not what this test is about.
    page.context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    # Listening before the tab opens: a refused style or image is logged while it loads.
    preview_errors = []
    page.context.on(
        "page",
        lambda tab: tab.on(
            "console",
            lambda message: message.type == "error" and preview_errors.append(message.text),
        ),
    )
    with page.context.expect_page() as preview_info:
        row.get_by_role("link", name="Preview").click()
    preview = preview_info.value
    preview.wait_for_load_state()
    image = preview.locator("img")
    expect(image).to_be_visible()
    assert image.evaluate("element => element.naturalWidth") == 120
    assert preview_errors == []
    assert page.console_errors == []
