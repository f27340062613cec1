"""Encrypted model fields and blind indexes (ambula/core/fields.py), and what a dump reveals."""

import base64
import datetime
from pathlib import Path

import pytest
from django.core import checks
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import connection, models, transaction
from django.test.utils import isolate_apps

from ambula.accounts import mfa
from ambula.accounts.models import TOTPDevice
from ambula.accounts.tests.factories import UserFactory
from ambula.audit import services as audit
from ambula.core.encryption import KEYS_VARIABLE, DecryptionError
from ambula.core.fields import (
    BlindIndexField,
    Ciphertext,
    EncryptedFieldError,
    EncryptedTextField,
    blind_index_for,
    decrypt_values_to_plaintext,
    encrypt_plaintext_values,
    encrypted_fields,
    token_columns,
)
from ambula.testing.models import EncryptedSample

pytestmark = pytest.mark.django_db

BIRTH_DATE = datetime.date(1931, 7, 19)


@pytest.fixture(autouse=True)
def key_dir(settings, tmp_path, monkeypatch):
    """A key ring and a documents folder of this test's own."""
    monkeypatch.delenv(KEYS_VARIABLE, raising=False)
    settings.KEYS_DIR = tmp_path / "keys"
    settings.STORAGES = {
        **settings.STORAGES,
        "documents": {
            "BACKEND": "ambula.core.storage.EncryptedFileSystemStorage",
            "OPTIONS": {"location": tmp_path / "documents"},
        },
    }
    return settings.KEYS_DIR


def stored(model, pk, column: str):
    """The column's value as the database holds it."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {connection.ops.quote_name(column)} FROM {table} WHERE id = %s",
            [model._meta.pk.get_db_prep_value(pk, connection)],
        )
        return cursor.fetchone()[0]


def store(model, pk, column: str, value) -> None:
    """Write the column directly, as someone with access to the database could."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {connection.ops.quote_name(column)} = %s WHERE id = %s",
            [value, model._meta.pk.get_db_prep_value(pk, connection)],
        )


def sample(**values) -> EncryptedSample:
    row = EncryptedSample(**values)
    row.save()
    return row


# Round trips


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("note", "Patient reports chest pain."),
        ("note", ""),
        ("note", "Zoë, née Ångström — 患者 🩺"),
        ("note", "x" * 1_000_000),
        ("details", {"allergies": ["penicillin"], "smoker": False, "pack_years": 12.5}),
        ("details", ["a", 1, None, {"nested": {"deep": "ü"}}]),
        ("details", "a JSON string"),
        ("details", 0),
        ("details", {"rows": [{"i": index, "text": "y" * 100} for index in range(5000)]}),
        ("birth_date", BIRTH_DATE),
        ("birth_date", datetime.date(1, 1, 1)),
        ("ssn", "123-45-6789"),
    ],
)
def test_each_field_type_round_trips_through_the_database(field, value):
    row = sample(**{field: value})

    loaded = EncryptedSample.objects.get(pk=row.pk)

    assert getattr(loaded, field) == value
    assert stored(EncryptedSample, row.pk, field).startswith("enc1:k1:")


@pytest.mark.parametrize("field", ["note", "details", "birth_date", "ssn"])
def test_none_is_stored_as_null_not_encrypted(field):
    row = sample(**{field: None})

    assert stored(EncryptedSample, row.pk, field) is None
    assert getattr(EncryptedSample.objects.get(pk=row.pk), field) is None
    assert EncryptedSample.objects.filter(**{f"{field}__isnull": True}).get() == row


def test_a_date_given_as_text_is_parsed_and_a_bad_one_refused():
    row = sample(birth_date="1931-07-19")

    assert EncryptedSample.objects.get(pk=row.pk).birth_date == BIRTH_DATE
    with pytest.raises(ValidationError, match="invalid date format"):
        sample(birth_date="19/07/1931")


def test_changing_a_value_and_saving_again_stores_the_new_value():
    row = sample(note="first")
    loaded = EncryptedSample.objects.get(pk=row.pk)

    loaded.note = "second"
    loaded.save()

    assert EncryptedSample.objects.get(pk=row.pk).note == "second"


def test_a_saved_value_is_reencrypted_with_a_fresh_nonce():
    row = sample(note="same")
    before = stored(EncryptedSample, row.pk, "note")

    EncryptedSample.objects.get(pk=row.pk).save()

    after = stored(EncryptedSample, row.pk, "note")
    assert after != before
    assert EncryptedSample.objects.get(pk=row.pk).note == "same"


def test_a_loaded_value_is_decrypted_only_when_read_and_then_kept():
    row = sample(note="lazy")
    loaded = EncryptedSample.objects.get(pk=row.pk)

    assert isinstance(loaded.__dict__["note"], Ciphertext)
    assert loaded.note == "lazy"
    assert loaded.__dict__["note"] == "lazy"


def test_a_deferred_field_is_loaded_and_decrypted_on_access():
    row = sample(note="deferred", ssn="123-45-6789")

    loaded = EncryptedSample.objects.only("id").get(pk=row.pk)

    assert loaded.get_deferred_fields() >= {"note", "ssn"}
    assert loaded.note == "deferred"
    assert loaded.ssn == "123-45-6789"


def test_values_list_gives_ciphertext_not_plaintext():
    row = sample(note="private")

    [value] = EncryptedSample.objects.filter(pk=row.pk).values_list("note", flat=True)

    assert isinstance(value, Ciphertext)
    assert "private" not in repr(value)
    assert repr(value) == "<Ciphertext under k1>"


def test_full_clean_validates_the_plaintext():
    row = EncryptedSample(note="fine", details={"ok": True}, birth_date=BIRTH_DATE)
    row.full_clean()

    row.details = {"not json": object()}
    with pytest.raises(ValidationError, match="valid JSON"):
        row.full_clean()


# Binding to row and column


def test_a_token_copied_to_another_row_does_not_decrypt():
    alice = sample(note="Alice's diagnosis")
    bob = sample(note="Bob's diagnosis")

    store(EncryptedSample, bob.pk, "note", stored(EncryptedSample, alice.pk, "note"))

    loaded = EncryptedSample.objects.get(pk=bob.pk)
    with pytest.raises(DecryptionError, match=rf"testing.encryptedsample.note of row {bob.pk}"):
        loaded.note  # noqa: B018
    assert EncryptedSample.objects.get(pk=alice.pk).note == "Alice's diagnosis"


def test_a_token_copied_to_another_column_does_not_decrypt():
    row = sample(note="a note", ssn="123-45-6789")

    store(EncryptedSample, row.pk, "note", stored(EncryptedSample, row.pk, "ssn"))

    with pytest.raises(DecryptionError, match="another row or column"):
        EncryptedSample.objects.get(pk=row.pk).note  # noqa: B018


def test_an_authenticator_secret_copied_to_another_device_does_not_decrypt():
    first = mfa.totp_enrolment_start(user=UserFactory())
    second = mfa.totp_enrolment_start(user=UserFactory())

    store(TOTPDevice, second.pk, "key", stored(TOTPDevice, first.pk, "key"))

    with pytest.raises(DecryptionError):
        TOTPDevice.objects.get(pk=second.pk).key  # noqa: B018


def test_a_flipped_character_in_a_stored_value_is_detected():
    row = sample(details={"dose": "5 mg"})
    token = stored(EncryptedSample, row.pk, "details")
    middle = len(token) // 2
    flipped = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]

    store(EncryptedSample, row.pk, "details", flipped)

    with pytest.raises(DecryptionError):
        EncryptedSample.objects.get(pk=row.pk).details  # noqa: B018


def test_plaintext_written_into_an_encrypted_column_is_not_trusted():
    row = sample(ssn="123-45-6789")

    store(EncryptedSample, row.pk, "ssn", "999-99-9999")

    with pytest.raises(DecryptionError, match="malformed"):
        EncryptedSample.objects.get(pk=row.pk).ssn  # noqa: B018


# What cannot work on ciphertext is refused


@pytest.mark.parametrize(
    "lookup",
    [
        {"note": "x"},
        {"note__icontains": "x"},
        {"note__in": ["x"]},
        {"birth_date__year": 1931},
        {"birth_date__gt": BIRTH_DATE},
        {"details__allergies": "penicillin"},
        {"details__allergies__0": "penicillin"},
        {"note": None},
    ],
)
def test_filtering_on_an_encrypted_field_is_refused(lookup):
    with pytest.raises(EncryptedFieldError, match="is encrypted"):
        list(EncryptedSample.objects.filter(**lookup))


def test_queryset_update_with_plaintext_is_refused():
    row = sample(note="before")

    refused = pytest.raises(EncryptedFieldError, match="set it on an instance and save")
    with refused, transaction.atomic():
        EncryptedSample.objects.filter(pk=row.pk).update(note="after")
    with pytest.raises(EncryptedFieldError), transaction.atomic():
        EncryptedSample.objects.bulk_update([row], ["note"])

    assert EncryptedSample.objects.get(pk=row.pk).note == "before"
    EncryptedSample.objects.filter(pk=row.pk).update(note=None)
    assert stored(EncryptedSample, row.pk, "note") is None


def test_a_value_is_not_encrypted_before_its_row_has_a_primary_key():
    # As for a model whose key the database assigns on insert (BaseModel's is set in Python).
    row = EncryptedSample(note="no key yet")
    row.id = None

    with pytest.raises(EncryptedFieldError, match="primary key, which is not set"):
        EncryptedSample._meta.get_field("note").pre_save(row, add=True)


@isolate_apps("ambula.testing")
def test_system_checks_catch_fields_that_cannot_work():
    class IndexedSecret(models.Model):  # noqa: DJ008
        secret = EncryptedTextField(db_index=True)
        secret_index = BlindIndexField(source="missing", purpose="")

        class Meta:
            app_label = "testing"

    error_ids = {error.id for error in IndexedSecret.check() if error.level >= checks.ERROR}

    # E102: an auto-increment key is only known after the insert, too late for the AAD.
    assert {"ambula.E101", "ambula.E102", "ambula.E103", "ambula.E104"} <= error_ids


# The authenticator secret


def test_an_authenticator_secret_is_stored_encrypted_and_reads_as_hex():
    device = mfa.totp_enrolment_start(user=UserFactory())
    secret = device.key

    assert len(bytes.fromhex(secret)) == mfa.TOTP_KEY_BYTES
    assert stored(TOTPDevice, device.pk, "key").startswith("enc1:k1:")
    assert secret not in stored(TOTPDevice, device.pk, "key")
    reloaded = TOTPDevice.objects.get(pk=device.pk)
    assert reloaded.key == secret
    assert mfa.totp_secret_for_display(device=reloaded).replace(" ", "") == base64.b32encode(
        bytes.fromhex(secret)
    ).decode().rstrip("=")


def test_existing_plaintext_secrets_are_encrypted_by_the_migration_helper():
    device = mfa.totp_enrolment_start(user=UserFactory())
    secret = device.key
    store(TOTPDevice, device.pk, "key", secret)  # as enrolled before the field was encrypted

    assert encrypt_plaintext_values(TOTPDevice, "key") == 1
    assert encrypt_plaintext_values(TOTPDevice, "key") == 0

    assert stored(TOTPDevice, device.pk, "key").startswith("enc1:")
    assert TOTPDevice.objects.get(pk=device.pk).key == secret
    assert decrypt_values_to_plaintext(TOTPDevice, "key") == 1
    assert stored(TOTPDevice, device.pk, "key") == secret


# Blind indexes


def test_a_blind_index_finds_a_row_by_its_normalised_value():
    patient = sample(ssn="123-45-6789")
    sample(ssn="987-65-4321")
    sample(ssn=None)

    for typed in ["123-45-6789", "123456789", " 123 45 6789 "]:
        index = blind_index_for(EncryptedSample, "ssn_index", typed)
        assert EncryptedSample.objects.get(ssn_index=index) == patient
    missing = blind_index_for(EncryptedSample, "ssn_index", "111-11-1111")
    assert not EncryptedSample.objects.filter(ssn_index=missing).exists()


def test_a_blind_index_follows_its_source_and_is_null_without_one():
    row = sample(ssn="123-45-6789")
    first_index = stored(EncryptedSample, row.pk, "ssn_index")

    row.ssn = "987-65-4321"
    row.save()
    assert stored(EncryptedSample, row.pk, "ssn_index") != first_index
    assert row.ssn_index == blind_index_for(EncryptedSample, "ssn_index", "987654321")

    row.ssn = None
    row.save()
    assert stored(EncryptedSample, row.pk, "ssn_index") is None


def test_blind_index_for_needs_a_blind_index_field():
    with pytest.raises(TypeError, match="not a BlindIndexField"):
        blind_index_for(EncryptedSample, "ssn", "123")


# Where the tokens are


def test_every_encrypted_column_is_known_and_the_audit_trail_is_never_rewritten():
    columns = {column.label: column.rewritable for column in token_columns()}

    assert [field.name for field in encrypted_fields(EncryptedSample)] == [
        "note",
        "details",
        "birth_date",
        "ssn",
    ]
    assert columns["accounts.totpdevice.key"] is True
    assert columns["testing.encryptedsample.note"] is True
    assert columns["audit.auditevent.changes"] is False


# The dump test: nothing a marker was stored as shows in the database or on disk


def encodings_of(marker: bytes) -> list[bytes]:
    """The marker, and how it would look hex or base64 encoded at any byte alignment."""
    found = [marker, marker.hex().encode()]
    for alignment in range(3):
        encoded = base64.b64encode(b"\0" * alignment + marker)
        # Drop the groups that mix in the padding bytes; what is left depends on the marker only.
        core = encoded[4 if alignment else 0 : -4]
        found += [core, core.replace(b"+", b"-").replace(b"/", b"_")]
    return found


def dump_database() -> bytes:
    parts = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                for value in row:
                    raw = bytes(value) if isinstance(value, bytes | memoryview) else None
                    parts.append(raw if raw is not None else str(value).encode())
    return b"\n".join(parts)


def dump_files(folder: Path) -> bytes:
    return b"\n".join(path.read_bytes() for path in folder.rglob("*") if path.is_file())


def test_a_dump_of_the_database_and_documents_reveals_no_plaintext(settings):
    note, diagnosis = "MARKER-NOTE-Quokka-5521", "MARKER-JSON-Axolotl-8830"
    ssn, audit_detail = "987-65-4329", "MARKER-AUDIT-Narwhal-1187"
    document = b"MARKER-DOC-Pangolin-3317 " * 5000
    row = sample(note=note, details={"diagnosis": diagnosis}, birth_date=BIRTH_DATE, ssn=ssn)
    device = mfa.totp_enrolment_start(user=UserFactory())
    audit.record(
        actor=None,
        action="auth.sign_in_failed",
        category="authentication",
        target=row,
        changes={"ssn": audit_detail},
    )
    documents = storages["documents"]
    name = documents.save("jane-doe-hiv-results.pdf", ContentFile(document))
    markers = [
        note.encode(),
        diagnosis.encode(),
        ssn.encode(),
        ssn.replace("-", "").encode(),
        audit_detail.encode(),
        BIRTH_DATE.isoformat().encode(),
        BIRTH_DATE.strftime("%Y%m%d").encode(),
        device.key.encode(),
        bytes.fromhex(device.key),
        base64.b32encode(bytes.fromhex(device.key)).rstrip(b"="),
        document[:40],
        b"jane-doe",
    ]

    database, files = dump_database(), dump_files(Path(documents.location))

    assert str(row.pk).encode() in database or row.pk.hex.encode() in database  # it did dump
    assert files and len(files) > len(document)
    for marker in markers:
        for encoded in encodings_of(marker):
            assert encoded not in database, marker
            assert encoded not in files, marker
    # Everything is still there for those with the keys.
    assert EncryptedSample.objects.get(pk=row.pk).details == {"diagnosis": diagnosis}
    with documents.open(name) as stored_document:
        assert stored_document.read() == document


def test_the_dump_test_would_see_plaintext():
    row = sample(note="x")
    marker = "MARKER-PLAIN-Okapi-4242"

    store(EncryptedSample, row.pk, "note", marker)

    assert marker.encode() in dump_database()
