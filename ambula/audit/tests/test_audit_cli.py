"""`ambula audit verify` and `ambula audit anchor`, run as the real command on a file database."""

import sqlite3
import subprocess
import sys

import pytest

from ambula.testing.processes import ambula_env, run_ambula

WRITERS, PER_WRITER = 6, 20

# Concurrent writers on a real SQLite file, each appending to the chain.
WRITER_SCRIPT = f"""
import threading
import django
django.setup()
from django.db import connection
from ambula.audit.services import record

failures = []

def write():
    try:
        for _ in range({PER_WRITER}):
            record(actor=None, action="auth.signed_in", category="authentication")
    except Exception as error:
        failures.append(repr(error))
    finally:
        connection.close()

threads = [threading.Thread(target=write) for _ in range({WRITERS})]
for thread in threads: thread.start()
for thread in threads: thread.join()
print("failures", failures)
"""


@pytest.fixture
def data_dir(tmp_path):
    data_dir = tmp_path / "data"
    # The demo writes events of its own; a few patients are enough for that.
    assert run_ambula(data_dir, "demo", "--patients", "5").returncode == 0
    return data_dir


def database(data_dir):
    return sqlite3.connect(data_dir / "ambula.sqlite3")


def test_verify_passes_an_intact_trail(data_dir):
    result = run_ambula(data_dir, "audit", "verify")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: ")
    count = database(data_dir).execute("SELECT count(*) FROM audit_auditevent").fetchone()[0]
    assert f"OK: {count} events, head " in result.stdout


def test_verify_names_the_changed_event(data_dir):
    connection = database(data_dir)
    connection.execute("DROP TRIGGER audit_event_no_update")  # what an attacker would do first
    connection.execute("UPDATE audit_auditevent SET actor_username = 'mallory' WHERE sequence = 3")
    connection.commit()
    result = run_ambula(data_dir, "audit", "verify")
    assert result.returncode == 1
    assert "BROKEN at event 3: event 3 was changed" in result.stderr


def test_anchor_appends_the_head_and_verify_uses_it(data_dir):
    first = run_ambula(data_dir, "audit", "anchor")
    assert first.returncode == 0, first.stderr
    line = first.stdout.splitlines()[0]
    _, sequence, mac = line.split()
    anchors = (data_dir / "audit-anchors.txt").read_text().splitlines()
    assert anchors == [line]
    assert len(mac) == 64

    connection = database(data_dir)
    connection.execute("DROP TRIGGER audit_event_no_delete")
    connection.execute("DELETE FROM audit_auditevent WHERE sequence >= ?", [int(sequence) - 1])
    connection.execute(
        "UPDATE audit_auditchainhead SET sequence = ?", [int(sequence) - 2]
    )  # the attacker also rewinds the head
    connection.commit()
    result = run_ambula(data_dir, "audit", "verify")
    assert result.returncode == 1
    assert f"events from {int(sequence) - 1} on were deleted" in result.stderr


def test_concurrent_writers_on_sqlite_keep_one_chain(data_dir):
    result = subprocess.run(
        [sys.executable, "-c", WRITER_SCRIPT],
        env=ambula_env(data_dir, DJANGO_SETTINGS_MODULE="ambula.settings"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "failures []" in result.stdout
    verify = run_ambula(data_dir, "audit", "verify")
    assert verify.returncode == 0, verify.stderr
    sequences = [
        row[0]
        for row in database(data_dir).execute(
            "SELECT sequence FROM audit_auditevent ORDER BY sequence"
        )
    ]
    assert sequences == list(range(1, len(sequences) + 1))
    assert len(sequences) >= WRITERS * PER_WRITER


def test_the_audit_key_lives_outside_the_database(data_dir):
    key_file = data_dir / "keys" / "audit.key"
    assert key_file.exists()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    key = key_file.read_text().strip()
    dump = "\n".join(database(data_dir).iterdump())
    assert key not in dump


def test_verify_fails_when_the_triggers_were_removed_and_advises_anchors(data_dir):
    intact = run_ambula(data_dir, "audit", "verify")
    assert "No anchors in" in intact.stdout
    connection = database(data_dir)
    connection.execute("DROP TRIGGER audit_event_no_delete")
    connection.commit()
    result = run_ambula(data_dir, "audit", "verify")
    assert result.returncode == 1
    assert "no longer refuses changes" in result.stderr
