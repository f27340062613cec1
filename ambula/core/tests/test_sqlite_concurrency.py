"""On SQLite, concurrent writers must queue behind each other, never fail with 'locked'."""

import subprocess
import sys

from ambula.testing.processes import ambula_env, run_ambula

WRITERS = 8

# Each writer reads, pauses while holding its transaction, then writes: the read-then-write
# shape that fails with "database is locked" under SQLite's default DEFERRED transactions.
WRITER_SCRIPT = f"""
import threading, time
import django
django.setup()
from django.db import connection, transaction
from ambula.scheduling.models import Location
from ambula.scheduling.services import location_create

failures = []

def write(number):
    try:
        with transaction.atomic():
            Location.objects.count()
            time.sleep(0.05)
            location_create(
                actor=None, name=f"Site {{number}}", address_line="1 Main St",
                city="Springfield", state="IL", postal_code="62701",
            )
    except Exception as error:
        failures.append(repr(error))
    finally:
        connection.close()

threads = [threading.Thread(target=write, args=(n,)) for n in range({WRITERS})]
for thread in threads: thread.start()
for thread in threads: thread.join()
print("journal", connection.cursor().execute("PRAGMA journal_mode").fetchone()[0])
print("locations", Location.objects.count())
print("failures", failures)
"""


def test_concurrent_writers_queue_instead_of_failing(tmp_path):
    data_dir = tmp_path / "data"
    assert run_ambula(data_dir, "migrate").returncode == 0
    result = subprocess.run(
        [sys.executable, "-c", WRITER_SCRIPT],
        env=ambula_env(data_dir, DJANGO_SETTINGS_MODULE="ambula.settings"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "journal wal" in result.stdout
    assert f"locations {WRITERS}" in result.stdout
    assert "failures []" in result.stdout
