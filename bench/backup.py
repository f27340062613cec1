"""Seconds and sizes of `ambula backup` and `ambula restore` for a practice of ~100,000 patients.

Patients are not a model yet, so a scratch table `bench_patient_rows` stands in for them:
100,000 rows of synthetic, realistically sized text (~1 KB each: name, address, contacts, a
note), plus 200 documents of 100 KiB random bytes. Everything lives in a throw-away data
directory (and, for PostgreSQL, two scratch databases dropped at the end). Runs the real CLI;
bounded to a few minutes. Only 127.0.0.1 is contacted.

    python bench/backup.py [--rows 100000] [--documents 200] [--no-postgresql]
"""

import argparse
import os
import random
import secrets
import sqlite3
import tempfile
import time
from pathlib import Path

from ambula.core.backup import human_size
from ambula.testing.processes import run_ambula

PASSPHRASE = "bench passphrase, not a secret"  # noqa: S105
POSTGRES_SERVER = os.environ.get(
    "AMBULA_TEST_POSTGRES_SERVER", "postgres://postgres@127.0.0.1:5432"
)
TIMEOUT = 170
DOCUMENT_SIZE = 100 * 1024
GIVEN = "Ava Ben Chloe Diego Elena Farah Grace Hiro Imani Jonas Keiko Liam Maya Noah Omar"
FAMILY = "Alvarez Brooks Chen Dubois Evans Fischer Garcia Haddad Ivanova Jensen Kowalski"
STREETS = "Oak Maple River Lake Hill Cedar Pine Elm Park Washington Lincoln Sunset"
NOTE_WORDS = (
    "patient reports mild intermittent pain since last visit denies fever chills nausea "
    "vomiting history of hypertension well controlled on current medication follow up in "
    "weeks blood pressure today within normal limits advised diet exercise weight loss "
    "allergies reviewed no changes medication list reconciled refill requested lab results "
    "discussed cholesterol slightly elevated recheck fasting panel plan continue monitor"
)
COLUMNS = "mrn, family_name, given_name, birth_date, address, phone, email, note"


def patient_rows(count: int, seed: int = 7):
    """Yield synthetic patients (never real people), ~1 KB each."""
    generator = random.Random(seed)  # noqa: S311  (synthetic data, not security)
    given_names, family_names = GIVEN.split(" "), FAMILY.split(" ")
    streets, note_words = STREETS.split(" "), NOTE_WORDS.split(" ")
    for number in range(count):
        given, family = generator.choice(given_names), generator.choice(family_names)
        yield (
            f"MRN{number:08d}",
            family,
            given,
            f"19{generator.randint(30, 99)}-{generator.randint(1, 12):02d}-"
            f"{generator.randint(1, 28):02d}",
            f"{generator.randint(1, 9999)} {generator.choice(streets)} Street, Springfield, "
            f"IL 627{generator.randint(0, 99):02d}",
            f"(217) 555-{generator.randint(0, 9999):04d}",
            f"{given.lower()}.{family.lower()}{number}@example.invalid",
            " ".join(generator.choices(note_words, k=130)),
        )


def fill_documents(data_dir: Path, count: int) -> None:
    for number in range(count):
        folder = data_dir / "documents" / f"{number % 20:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"scan-{number:04d}.pdf").write_bytes(secrets.token_bytes(DOCUMENT_SIZE))


def timed(data_dir: Path, *args: str, **env: str) -> float:
    started = time.perf_counter()
    result = run_ambula(
        data_dir, *args, timeout=TIMEOUT, AMBULA_BACKUP_PASSPHRASE=PASSPHRASE, **env
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"ambula {args[0]} failed:\n{result.stdout}\n{result.stderr}")
    return seconds


def report(engine: str, database_size: int, archive: Path, backup: float, restore: float) -> None:
    print(
        f"{engine:<10} database {human_size(database_size):>10}   "
        f"archive {human_size(archive.stat().st_size):>10}   "
        f"backup {backup:5.1f} s   restore {restore:5.1f} s"
    )


def bench_sqlite(root: Path, rows: int, documents: int) -> None:
    source, target = root / "sqlite-source", root / "sqlite-target"
    run_ambula(source, "migrate", timeout=TIMEOUT)
    database = source / "ambula.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.execute(
            "CREATE TABLE bench_patient_rows (id INTEGER PRIMARY KEY, mrn TEXT, family_name TEXT, "
            "given_name TEXT, birth_date TEXT, address TEXT, phone TEXT, email TEXT, note TEXT)"
        )
        connection.executemany(
            f"INSERT INTO bench_patient_rows ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
            patient_rows(rows),
        )
    connection.close()
    fill_documents(source, documents)
    archive = root / "sqlite.ambula-backup"
    backup = timed(source, "backup", str(archive))
    restore = timed(target, "restore", str(archive))
    report("SQLite", database.stat().st_size, archive, backup, restore)


def bench_postgresql(root: Path, rows: int, documents: int) -> None:
    try:
        import psycopg

        admin = psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True, connect_timeout=5)
    except Exception as error:  # any reason to skip is reported, not raised
        print(f"PostgreSQL skipped: {error}")
        return
    suffix = secrets.token_hex(4)
    names = [f"ambula_backup_test_bench_src_{suffix}", f"ambula_backup_test_bench_dst_{suffix}"]
    source_url, target_url = (f"{POSTGRES_SERVER}/{name}" for name in names)
    try:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
        source = root / "pg-source"
        run_ambula(source, "migrate", timeout=TIMEOUT, AMBULA_DATABASE_URL=source_url)
        with psycopg.connect(source_url) as connection:
            connection.execute(
                "CREATE TABLE bench_patient_rows (id bigserial PRIMARY KEY, mrn text, "
                "family_name text, given_name text, birth_date text, address text, phone text, "
                "email text, note text)"
            )
            with connection.cursor().copy(
                f"COPY bench_patient_rows ({COLUMNS}) FROM STDIN"
            ) as copy:
                for row in patient_rows(rows):
                    copy.write_row(row)
            database_size = connection.execute(
                "SELECT pg_database_size(current_database())"
            ).fetchone()[0]
        fill_documents(source, documents)
        archive = root / "pg.ambula-backup"
        backup = timed(source, "backup", str(archive), AMBULA_DATABASE_URL=source_url)
        restore = timed(root / "pg-target", "restore", str(archive), AMBULA_DATABASE_URL=target_url)
        report("PostgreSQL", database_size, archive, backup, restore)
    finally:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--no-postgresql", action="store_true")
    args = parser.parse_args()
    print(
        f"{args.rows:,} synthetic patient rows (~1 KB each) and {args.documents} documents "
        f"of {human_size(DOCUMENT_SIZE)} random bytes"
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ambula-bench-") as directory:
        bench_sqlite(Path(directory), args.rows, args.documents)
        if not args.no_postgresql:
            bench_postgresql(Path(directory), args.rows, args.documents)
    print(f"total {time.perf_counter() - started:.0f} s, including making the data")


if __name__ == "__main__":
    main()
