"""`ambula keys`: status, rotation (resumable), re-encryption and retirement."""

import base64
import datetime
import io
import json
import os
import re

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from ambula import cli
from ambula.accounts import mfa
from ambula.accounts.models import TOTPDevice
from ambula.accounts.tests.factories import UserFactory
from ambula.audit import services as audit
from ambula.audit.models import AuditEvent
from ambula.core.encryption import KEYS_VARIABLE, key_ring, key_ring_add_key
from ambula.core.management.commands.keys import reencrypt
from ambula.testing.models import EncryptedSample

pytestmark = pytest.mark.django_db

ENCRYPTED_COLUMNS = {
    EncryptedSample: ["note", "details", "birth_date", "ssn"],
    TOTPDevice: ["key"],
}


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


def keys(*arguments: str) -> str:
    output = io.StringIO()
    call_command("keys", *arguments, stdout=output)
    return output.getvalue()


def stored_key_ids() -> list[str]:
    """The key id of every encrypted value, read straight from the tables."""
    key_ids = []
    with connection.cursor() as cursor:
        for model, columns in ENCRYPTED_COLUMNS.items():
            for column in columns:
                cursor.execute(
                    f"SELECT {connection.ops.quote_name(column)} "
                    f"FROM {connection.ops.quote_name(model._meta.db_table)}"
                )
                key_ids += [value.split(":")[1] for (value,) in cursor.fetchall() if value]
    return key_ids


def make_samples(count: int) -> list[EncryptedSample]:
    rows = []
    for number in range(count):
        row = EncryptedSample(
            note=f"note {number}",
            details={"number": number},
            birth_date=datetime.date(1950, 1, 1) + datetime.timedelta(days=number),
            ssn=f"123-45-{number:04d}",
        )
        row.save()
        rows.append(row)
    return rows


def assert_samples_read_back(rows) -> None:
    for row in rows:
        loaded = EncryptedSample.objects.get(pk=row.pk)
        assert (loaded.note, loaded.details, loaded.birth_date, loaded.ssn) == (
            row.note,
            row.details,
            row.birth_date,
            row.ssn,
        )


# Status


def test_status_counts_values_per_key_and_field():
    make_samples(3)
    mfa.totp_enrolment_start(user=UserFactory())
    storages["documents"].save("a.pdf", ContentFile(b"a"))
    key_ring_add_key()
    make_samples(1)

    output = keys("status")

    assert f"Keys from: {key_ring().path}" in output
    assert "Active key: k2" in output
    # The total is the sum over fields and documents: 3 rows x 4 fields, 1 secret, 1 document,
    # and whatever the audit trail recorded while the user was created.
    k1_total = sum(int(count) for count in re.findall(r"k1 (\d+)", output))
    assert k1_total >= 14
    assert f"  k1: {k1_total}\n" in output
    assert "  k2: 4  (active)" in output
    assert "testing.encryptedsample.note: k1 3, k2 1" in output
    assert "accounts.totpdevice.key: k1 1" in output
    assert "audit.auditevent.changes: " in output
    assert "(append-only: never re-encrypted)" in output
    assert f"documents in {storages['documents'].location}: k1 1" in output


def test_status_warns_of_values_under_unknown_keys_and_plaintext():
    [row] = make_samples(1)
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(EncryptedSample._meta.db_table)
        pk = EncryptedSample._meta.pk.get_db_prep_value(row.pk, connection)
        for column, value in [("note", "plain"), ("ssn", "enc1:k7:" + "A" * 40)]:
            cursor.execute(f"UPDATE {table} SET {column} = %s WHERE id = %s", [value, pk])

    output = keys("status")

    assert "k7: 1  (NOT IN THE KEY RING: unreadable)" in output
    assert "not encrypted: 1" in output


# Rotation


def test_rotate_puts_every_value_and_document_under_a_new_key():
    rows = make_samples(5)
    device = mfa.totp_enrolment_start(user=UserFactory())
    secret = device.key
    documents = storages["documents"]
    name = documents.save("a.pdf", ContentFile(b"scan"))
    updated_at = {row.pk: EncryptedSample.objects.get(pk=row.pk).updated_at for row in rows}

    output = keys("rotate")

    assert "Added key k2" in output
    assert "testing.encryptedsample: 5 of 5 rows re-encrypted" in output
    assert "Every rewritable value is under k2." in output
    assert set(stored_key_ids()) == {"k2"}
    assert len(stored_key_ids()) == 5 * 4 + 1
    assert documents.key_usage() == {"k2": 1}
    assert_samples_read_back(rows)
    assert TOTPDevice.objects.get(pk=device.pk).key == secret
    with documents.open(name) as document:
        assert document.read() == b"scan"
    # Re-encryption is not an edit: the rows' own timestamps stay.
    for row in rows:
        assert EncryptedSample.objects.get(pk=row.pk).updated_at == updated_at[row.pk]


def test_an_interrupted_rotation_resumes_without_adding_a_key():
    rows = make_samples(7)
    key_ring_add_key()

    first = reencrypt(batch_size=2, max_batches=2)

    assert not first.complete
    assert first.rows["testing.encryptedsample"] == 4
    assert sorted(stored_key_ids()) == ["k1"] * 12 + ["k2"] * 16

    output = keys("rotate", "--resume", "--batch-size", "2")

    assert "Added key" not in output
    assert "testing.encryptedsample: 2 of 3 rows re-encrypted" in output
    assert "testing.encryptedsample: 3 of 3 rows re-encrypted" in output
    assert set(stored_key_ids()) == {"k2"}
    assert key_ring().key_ids == ["k1", "k2"]
    assert_samples_read_back(rows)


def test_reencrypt_with_a_batch_limit_says_how_to_continue():
    make_samples(3)
    key_ring_add_key()

    output = keys("reencrypt", "--batch-size", "1", "--max-batches", "1")

    assert "Stopped after --max-batches" in output
    assert sorted(stored_key_ids()) == ["k1"] * 8 + ["k2"] * 4
    keys("reencrypt")
    assert set(stored_key_ids()) == {"k2"}


def test_rotating_twice_leaves_everything_under_the_newest_key():
    rows = make_samples(2)

    keys("rotate")
    keys("rotate")

    assert key_ring().key_ids == ["k1", "k2", "k3"]
    assert set(stored_key_ids()) == {"k3"}
    assert_samples_read_back(rows)


def test_a_value_that_cannot_be_decrypted_stops_rotation_with_its_row():
    good, bad = make_samples(2)
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(EncryptedSample._meta.db_table)
        cursor.execute(
            f"UPDATE {table} SET note = (SELECT note FROM {table} WHERE id = %s) WHERE id = %s",
            [
                EncryptedSample._meta.pk.get_db_prep_value(good.pk, connection),
                EncryptedSample._meta.pk.get_db_prep_value(bad.pk, connection),
            ],
        )

    with pytest.raises(CommandError, match=rf"testing.encryptedsample.note of row {bad.pk}"):
        keys("rotate")


def test_the_audit_trail_is_counted_but_never_rewritten():
    event = audit.record(
        actor=None, action="auth.sign_in_failed", category="authentication", changes={"a": 1}
    )
    assert event.changes.startswith("enc1:k1:")

    keys("rotate")

    output = keys("status")
    # The rotation is itself an audit event, written under the new key.
    expected = "audit.auditevent.changes: k1 1, k2 1  (append-only: never re-encrypted)"
    assert expected in output
    rotated = type(event).objects.get(action="encryption.key_rotated")
    assert audit.changes_of(rotated) == {"active_key": "k2"}
    assert audit.changes_of(type(event).objects.get(pk=event.pk)) == {"a": 1}
    with pytest.raises(CommandError, match=r"audit\.auditevent\.changes: 1\. Append-only"):
        keys("retire", "k1")


# Retirement


def test_retire_refuses_a_key_still_in_use_then_removes_it():
    rows = make_samples(2)
    storages["documents"].save("a.pdf", ContentFile(b"a"))
    key_ring_add_key()

    with pytest.raises(CommandError, match=r"k1 still encrypts testing\.encryptedsample\.note: 2;"):
        keys("retire", "k1")
    with pytest.raises(CommandError, match=r"documents in .*: 1\."):
        keys("retire", "k1")
    assert key_ring().key_ids == ["k1", "k2"]

    keys("reencrypt")
    output = keys("retire", "k1")

    assert "Retired k1" in output
    assert key_ring().key_ids == ["k2"]
    assert "k1" not in json.loads(key_ring().path.read_text())["keys"]
    assert_samples_read_back(rows)
    retired = AuditEvent.objects.get(action="encryption.key_retired")
    assert audit.changes_of(retired) == {"retired_key": "k1"}


def test_retire_refuses_the_active_key_and_unknown_keys():
    key_ring()

    with pytest.raises(CommandError, match="k1 is the active key"):
        keys("retire", "k1")
    with pytest.raises(CommandError, match="There is no key k4"):
        keys("retire", "k4")


# Keys from the environment


def environment_keys(active: str, *key_ids: str, index_key: str | None = None) -> dict:
    return {
        "active": active,
        "keys": {key_id: base64.b64encode(os.urandom(32)).decode() for key_id in key_ids},
        "index_key": index_key or base64.b64encode(os.urandom(32)).decode(),
    }


def test_rotate_refuses_keys_from_the_environment_and_says_what_to_do(monkeypatch):
    monkeypatch.setenv(KEYS_VARIABLE, json.dumps(environment_keys("k1", "k1")))

    with pytest.raises(CommandError, match="come from AMBULA_ENCRYPTION_KEYS") as refused:
        keys("rotate")

    assert "Edit the variable" in str(refused.value)
    assert "ambula keys reencrypt" in str(refused.value)


def test_reencrypt_follows_a_new_key_added_to_the_environment(monkeypatch):
    document = environment_keys("k1", "k1")
    monkeypatch.setenv(KEYS_VARIABLE, json.dumps(document))
    rows = make_samples(2)
    document["keys"]["k2"] = base64.b64encode(os.urandom(32)).decode()
    document["active"] = "k2"
    monkeypatch.setenv(KEYS_VARIABLE, json.dumps(document))

    keys("reencrypt")

    assert set(stored_key_ids()) == {"k2"}
    assert_samples_read_back(rows)
    assert "the AMBULA_ENCRYPTION_KEYS variable" in keys("status")


# The `ambula keys` command line


def test_the_ambula_command_runs_keys(capsys):
    make_samples(1)

    cli.main(["keys", "status"])

    assert "Active key: k1" in capsys.readouterr().out


def test_the_ambula_command_reports_a_refusal_as_an_error(capsys):
    key_ring()

    with pytest.raises(SystemExit) as exited:
        cli.main(["keys", "retire", "k1"])

    assert exited.value.code == 2
    assert "ambula: k1 is the active key" in capsys.readouterr().err


def test_the_ambula_command_passes_options_through():
    arguments = cli.build_parser().parse_args(["keys", "rotate", "--resume", "--batch-size", "9"])

    assert arguments.handler is cli.keys
    assert arguments.arguments == ["rotate", "--resume", "--batch-size", "9"]
