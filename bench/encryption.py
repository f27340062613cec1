"""Throughput of encryption at rest: values, encrypted model fields, and encrypted documents.

Runs in a throw-away data directory (its own key ring and SQLite database, with the test
models installed), so it touches nothing real. Bounded in time: each figure is measured for
about --seconds (default 1), about 12 s in all including the migrations.

    python bench/encryption.py [--seconds 1.0]
"""

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable

DOCUMENT_BYTES = 10 * 1024 * 1024
MEBIBYTE = 1024 * 1024


def measure(operation: Callable[[], None], seconds: float) -> tuple[int, float]:
    """Run the operation repeatedly for about `seconds` (at least once); return (count, time)."""
    count, started = 0, time.perf_counter()
    while True:
        operation()
        count += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return count, elapsed


def bench_values(seconds: float) -> None:
    from ambula.core.encryption import decrypt, encrypt

    aad = b"testing_encryptedsample.note.01900000-0000-7000-8000-000000000000"
    print(f"{'values':<28}{'values/s':>14}{'MB/s':>10}")
    for label, size in [("100 B", 100), ("10 KiB", 10 * 1024)]:
        plaintext = os.urandom(size)
        token = encrypt(plaintext, aad=aad)
        for verb, operation in [
            ("encrypt", lambda plaintext=plaintext: encrypt(plaintext, aad=aad)),
            ("decrypt", lambda token=token: decrypt(token, aad=aad)),
        ]:
            count, elapsed = measure(operation, seconds)
            rate = count / elapsed
            print(f"  {verb} {label:<18}{rate:>14,.0f}{rate * size / MEBIBYTE:>10.1f}")


def bench_fields(seconds: float) -> None:
    import datetime

    from ambula.testing.models import EncryptedSample

    def save_and_load() -> None:
        row = EncryptedSample(
            note="Patient reports intermittent chest pain on exertion." * 2,
            details={"allergies": ["penicillin"], "smoker": False},
            birth_date=datetime.date(1961, 3, 14),
        )
        row.save()
        loaded = EncryptedSample.objects.get(pk=row.pk)
        assert (loaded.note, loaded.details, loaded.birth_date) == (
            row.note,
            row.details,
            row.birth_date,
        )

    count, elapsed = measure(save_and_load, seconds)
    print(f"{'model, 3 encrypted fields':<28}{'rows/s':>14}")
    print(f"  {'save + load (SQLite)':<26}{count / elapsed:>14,.0f}")


def bench_documents(seconds: float, location: str) -> None:
    from django.core.files.base import ContentFile

    from ambula.core.storage import CHUNK_BYTES, EncryptedFileSystemStorage

    storage = EncryptedFileSystemStorage(location=location, max_bytes=DOCUMENT_BYTES)
    data = os.urandom(DOCUMENT_BYTES)
    names = []

    def write() -> None:
        names.append(storage.save("scan.pdf", ContentFile(data)))

    def read() -> None:
        with storage.open(names[0]) as document:
            while document.read(CHUNK_BYTES):
                pass

    print(f"{'documents (10 MiB)':<28}{'MB/s':>14}")
    for verb, operation in [("write", write), ("read", read)]:
        count, elapsed = measure(operation, seconds)
        print(f"  {verb:<26}{count * DOCUMENT_BYTES / MEBIBYTE / elapsed:>14.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per figure")
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="ambula-bench-")
    for variable in ("AMBULA_DATABASE_URL", "AMBULA_ENCRYPTION_KEYS"):
        os.environ.pop(variable, None)
    os.environ.update(
        AMBULA_DATA_DIR=data_dir,
        AMBULA_TESTING="1",  # installs ambula.testing, whose model has encrypted fields
        AMBULA_LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="ambula.settings",
    )
    try:
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        bench_values(args.seconds)
        bench_fields(args.seconds)
        bench_documents(args.seconds, os.path.join(data_dir, "bench-documents"))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
