"""Backup and restore: the real `ambula backup` / `ambula restore` in child processes, and the
archive format in process.

The promises under test: a restore brings back exactly what was backed up (rows, documents,
keys, secret key) into an installation that then serves; the archive is encrypted and private;
anything wrong (a wrong passphrase, one flipped byte, a truncated or foreign file, a non-empty
target, the other database engine) is refused with a clear message and changes nothing.
"""

import base64
import hashlib
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ambula.core import backup
from ambula.core.demo import DEMO_PASSWORD, DEMO_USERS
from ambula.core.demo_schedule import EXTRA_PROVIDERS
from ambula.testing.processes import run_ambula

PASSPHRASE = "correct horse battery staple"
POSTGRES_SERVER = os.environ.get(
    "AMBULA_TEST_POSTGRES_SERVER", "postgres://postgres@127.0.0.1:5432"
)
DOCUMENT_SIZE = 150 * 1024

# The demo's users: the sign-ins, and the bookable clinicians who have none.
DEMO_USERNAMES = sorted(
    [user.username for user in DEMO_USERS] + [username for _, username, *_ in EXTRA_PROVIDERS]
)


def restore(data_dir: Path, archive: Path, *args: str, **env: str):
    env.setdefault("AMBULA_BACKUP_PASSPHRASE", PASSPHRASE)
    return run_ambula(data_dir, "restore", str(archive), *args, **env)


def sqlite_counts(database: Path) -> dict[str, int]:
    connection = sqlite3.connect(database)
    try:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        count = 'SELECT count(*) FROM "{}"'  # names from the catalog, not from input
        return {t: connection.execute(count.format(t)).fetchone()[0] for t in tables}
    finally:
        connection.close()


def fingerprint(data_dir: Path) -> dict[str, str]:
    """Every file's digest; the database by its contents, since opening it may checkpoint."""
    prints = {}
    for path in sorted(data_dir.rglob("*")):
        name = path.relative_to(data_dir).as_posix()
        if path.is_dir():
            prints[name] = "directory"
        elif not name.startswith("ambula.sqlite3"):
            prints[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    database = data_dir / "ambula.sqlite3"
    if database.exists():
        connection = sqlite3.connect(database)
        dump = "\n".join(connection.iterdump())
        connection.close()
        prints["ambula.sqlite3 (contents)"] = hashlib.sha256(dump.encode()).hexdigest()
    prints["beside the data directory"] = " ".join(
        sorted(p.name for p in data_dir.parent.iterdir())
    )
    return prints


def add_documents(data_dir: Path) -> dict[str, bytes]:
    documents = {
        "2024/05/scan-0001.pdf": secrets.token_bytes(DOCUMENT_SIZE),
        "2024/06/referral letter.pdf": secrets.token_bytes(4096),
        "empty.txt": b"",
    }
    for name, content in documents.items():
        path = data_dir / "documents" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return documents


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """Data dir A: migrated, the demo practice, documents; and a backup of it made by the CLI."""
    root = tmp_path_factory.mktemp("source")
    data_dir = root / "a"
    demo = run_ambula(data_dir, "demo", "--patients", "20")  # migrates, then loads the demo
    assert demo.returncode == 0, demo.stderr
    documents = add_documents(data_dir)
    # The demo's own documents (scanned insurance cards) are in the store too.
    stored = sorted(
        str(path.relative_to(data_dir / "documents"))
        for path in (data_dir / "documents").rglob("*")
        if path.is_file()
    )
    assert len(stored) > len(documents)
    archive = root / "a.ambula-backup"
    result = run_ambula(data_dir, "backup", str(archive), AMBULA_BACKUP_PASSPHRASE=PASSPHRASE)
    assert result.returncode == 0, result.stderr
    return {
        "data_dir": data_dir,
        "archive": archive,
        "documents": documents,
        "stored": stored,
        "result": result,
    }


@pytest.fixture(scope="module")
def populated(source, tmp_path_factory):
    """An installation with data of its own: A's, plus a table, a document and a secret key
    that A does not have (copied per test by `occupied_target`)."""
    data_dir = tmp_path_factory.mktemp("populated") / "t"
    shutil.copytree(source["data_dir"], data_dir)
    with sqlite3.connect(data_dir / "ambula.sqlite3") as connection:
        connection.execute("CREATE TABLE local_only (note TEXT)")
        connection.execute("INSERT INTO local_only VALUES ('only here')")
    connection.close()
    (data_dir / "documents" / "kept.txt").write_text("this installation's own document")
    (data_dir / "secret_key").write_text(secrets.token_urlsafe(64) + "\n")
    return data_dir


@pytest.fixture
def occupied_target(populated, tmp_path):
    target = tmp_path / "occupied" / "data"
    shutil.copytree(populated, target)
    return target


# --- the SQLite round trip --------------------------------------------------------------------


def test_round_trip_into_an_empty_installation_restores_everything_and_it_serves(source, tmp_path):
    a, b = source["data_dir"], tmp_path / "b"
    result = restore(b, source["archive"])
    assert result.returncode == 0, result.stderr
    assert "every count matches the backup" in result.stdout
    assert f"{len(source['stored'])} files" in result.stdout  # the documents

    assert sqlite_counts(b / "ambula.sqlite3") == sqlite_counts(a / "ambula.sqlite3")
    assert sqlite_counts(b / "ambula.sqlite3")["accounts_user"] == len(DEMO_USERNAMES)
    for name in ("secret_key", "keys/encryption.json", "keys/audit.key"):
        assert (b / name).read_bytes() == (a / name).read_bytes(), name
        assert (b / name).stat().st_mode & 0o777 == 0o600, name
    for name, content in source["documents"].items():
        assert (b / "documents" / name).read_bytes() == content
    assert not list(tmp_path.glob(".ambula-restore-*")), "the staging directory is removed"

    migrations = run_ambula(b, "manage", "showmigrations")
    assert migrations.returncode == 0, migrations.stderr
    assert "[X] 0001_initial" in migrations.stdout
    assert "[ ]" not in migrations.stdout
    verified = run_ambula(b, "audit", "verify")  # the trail, its key and the restore's own event
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("OK: ")
    script = (
        "from django.contrib.auth import authenticate; "
        "from ambula.accounts.models import User; "
        "print(sorted(User.objects.values_list('username', flat=True))); "
        f"print(authenticate(username='physician', password={DEMO_PASSWORD!r}) is not None)"
    )
    shell = run_ambula(b, "manage", "shell", "-c", script)
    assert shell.returncode == 0, shell.stderr
    usernames, signs_in = shell.stdout.strip().splitlines()[-2:]
    assert usernames == str(DEMO_USERNAMES)
    assert signs_in == "True"


def test_archive_is_private_encrypted_and_the_backup_says_what_it_did(source):
    archive = source["archive"]
    assert archive.stat().st_mode & 0o777 == 0o600
    data = archive.read_bytes()
    assert data.startswith(backup.MAGIC)
    full_name = next(user.full_name for user in DEMO_USERS if user.username == "physician")
    assert full_name.encode() not in data
    assert (source["data_dir"] / "secret_key").read_bytes().strip() not in data
    scan = source["documents"]["2024/05/scan-0001.pdf"]
    assert scan[5000:5064] not in data, "random bytes survive gzip: only encryption hides them"
    assert not list(archive.parent.glob(".*.partial"))

    output = source["result"].stdout
    assert f"Backup written to {archive}" in output
    assert re.search(r"database   sqlite, [\d,]+ tables, [\d,]+ rows", output)
    assert f"documents  {len(source['stored'])} files" in output
    assert "keys       2 files and the secret_key file" in output
    assert " s." in output  # the duration
    assert PASSPHRASE not in output + source["result"].stderr


def test_manifest_records_versions_migrations_row_counts_and_a_checksum_per_member(
    source, tmp_path
):
    unlocked = backup.archive_unlock(source["archive"], backup.KeySource(passphrase=PASSPHRASE))
    manifest = backup.archive_extract(unlocked, tmp_path)
    assert manifest["format_version"] == backup.FORMAT_VERSION
    assert manifest["ambula_version"]
    assert manifest["created_at"].endswith("Z")
    assert manifest["database"]["vendor"] == "sqlite"
    assert ["accounts", "0001_initial"] in manifest["migrations"]
    live = sqlite_counts(source["data_dir"] / "ambula.sqlite3")
    # The live trail has one event more: "backup.created", written after the snapshot.
    assert manifest["row_counts"] == live | {"audit_auditevent": live["audit_auditevent"] - 1}
    members = {member["name"]: member for member in manifest["members"]}
    assert set(members) == {
        "secret_key",
        "keys/audit.key",
        "keys/encryption.json",
        "database/ambula.sqlite3",
        *(f"documents/{name}" for name in source["stored"]),
    }
    scan = members["documents/2024/05/scan-0001.pdf"]
    assert scan["size"] == DOCUMENT_SIZE
    assert (
        scan["sha256"] == hashlib.sha256(source["documents"]["2024/05/scan-0001.pdf"]).hexdigest()
    )


# --- refusals: a clear message, a non-zero exit, and the target unchanged ----------------------


def flip_byte(data: bytes, offset: int) -> bytes:
    changed = bytearray(data)
    changed[offset] ^= 0x01
    return bytes(changed)


CORRUPTIONS = {
    "flipped first byte": (lambda data: flip_byte(data, 0), "is not an Ambula backup"),
    "flipped header byte": (lambda data: flip_byte(data, 30), "Wrong passphrase"),
    "flipped middle byte": (lambda data: flip_byte(data, len(data) // 2), "is damaged"),
    "flipped last byte": (lambda data: flip_byte(data, len(data) - 1), "is damaged"),
    "truncated": (lambda data: data[: len(data) * 2 // 3], "is truncated"),
    "random file": (lambda data: secrets.token_bytes(len(data)), "is not an Ambula backup"),
    "empty file": (lambda data: b"", "is not an Ambula backup"),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_a_damaged_or_foreign_file_is_refused_even_with_force_and_changes_nothing(
    source, occupied_target, tmp_path, corruption
):
    damage, message = CORRUPTIONS[corruption]
    archive = tmp_path / "damaged.ambula-backup"
    archive.write_bytes(damage(source["archive"].read_bytes()))
    before = fingerprint(occupied_target)
    result = restore(occupied_target, archive, "--force")
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert fingerprint(occupied_target) == before


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AMBULA_BACKUP_PASSPHRASE": "a wrong but long passphrase"}, "Wrong passphrase"),
        ({"AMBULA_BACKUP_PASSPHRASE": ""}, "No passphrase or key given"),
        ({"AMBULA_BACKUP_PASSPHRASE": "too short"}, "too short: use at least 12 characters"),
    ],
    ids=["wrong passphrase", "missing passphrase", "too-short passphrase"],
)
def test_a_wrong_missing_or_short_passphrase_is_refused_and_changes_nothing(
    source, occupied_target, env, message
):
    before = fingerprint(occupied_target)
    result = restore(occupied_target, source["archive"], "--force", **env)
    assert result.returncode != 0
    assert message in result.stderr
    assert fingerprint(occupied_target) == before


def test_backup_refuses_a_missing_or_short_passphrase(source, tmp_path):
    missing = run_ambula(source["data_dir"], "backup", str(tmp_path / "x.backup"))
    assert missing.returncode != 0
    assert "No passphrase or key given" in missing.stderr
    short = tmp_path / "short"
    short.write_text("eleven char\n")
    refused = run_ambula(
        source["data_dir"], "backup", str(tmp_path / "x.backup"), "--passphrase-file", str(short)
    )
    assert refused.returncode != 0
    assert "too short" in refused.stderr
    assert list(tmp_path.iterdir()) == [short]


def test_a_non_empty_installation_is_refused_without_force_and_replaced_with_it(
    source, occupied_target
):
    before = fingerprint(occupied_target)
    refused = restore(occupied_target, source["archive"])
    assert refused.returncode != 0
    assert "This installation is not empty" in refused.stderr
    assert "--force" in refused.stderr
    assert fingerprint(occupied_target) == before

    forced = restore(occupied_target, source["archive"], "--force")
    assert forced.returncode == 0, forced.stderr
    a = source["data_dir"]
    assert sqlite_counts(occupied_target / "ambula.sqlite3") == sqlite_counts(a / "ambula.sqlite3")
    assert (occupied_target / "secret_key").read_bytes() == (a / "secret_key").read_bytes()
    assert not (occupied_target / "documents" / "kept.txt").exists()
    check = sqlite3.connect(occupied_target / "ambula.sqlite3")
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    check.close()


def test_restore_exits_non_zero_when_row_counts_differ_from_the_manifest(source, tmp_path):
    key = backup.KeySource(passphrase=PASSPHRASE)
    staging = tmp_path / "staging"
    staging.mkdir()
    manifest = backup.archive_extract(backup.archive_unlock(source["archive"], key), staging)
    manifest["row_counts"]["accounts_user"] += 1
    tampered = tmp_path / "tampered.ambula-backup"
    with backup.ArchiveWriter(tampered, key) as archive:
        for member in manifest["members"]:
            archive.add_file(member["name"], staging / member["name"])
        archive.finish({key: value for key, value in manifest.items() if key != "members"})

    result = restore(tmp_path / "b", tampered)
    assert result.returncode != 0
    users = len(DEMO_USERNAMES)
    mismatch = f"MISMATCH accounts_user: backup {users + 1} rows, restored {users} rows"
    assert mismatch in result.stderr
    assert "Row counts differ from the backup's in 1 table" in result.stderr


# --- consistency while the application writes; key files --------------------------------------

WRITER = """
import os, sqlite3, sys
database, stop = sys.argv[1:]
connection = sqlite3.connect(database, timeout=20, isolation_level=None)
connection.execute("PRAGMA journal_mode=WAL")
written = 0
while not os.path.exists(stop):
    connection.execute("BEGIN IMMEDIATE")
    for _ in range(10):
        connection.execute("INSERT INTO busy_rows (body) VALUES (randomblob(1500))")
    connection.execute("COMMIT")
    written += 10
    print(written, flush=True)
"""


def test_a_backup_taken_while_rows_are_inserted_is_consistent(tmp_path):
    data_dir = tmp_path / "busy"
    assert run_ambula(data_dir, "migrate").returncode == 0
    database = data_dir / "ambula.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE busy_rows (id INTEGER PRIMARY KEY, body BLOB)")
        connection.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000) "
            "INSERT INTO busy_rows (body) SELECT randomblob(1500) FROM n"
        )
    connection.close()
    key_file = tmp_path / "backup.key"
    made = run_ambula(data_dir, "backup", "--new-key-file", str(key_file))
    assert made.returncode == 0, made.stderr
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(base64.b64decode(key_file.read_text())) == 32

    stop = tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(database), str(stop)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert int(writer.stdout.readline()) > 0  # writing before the backup starts
        archive = tmp_path / "busy.ambula-backup"
        made = run_ambula(data_dir, "backup", str(archive), "--key-file", str(key_file))
        assert made.returncode == 0, made.stderr
        time.sleep(0.3)
    finally:
        stop.touch()
        written = int(writer.communicate(timeout=30)[0].split()[-1])
    assert writer.returncode == 0

    restored = tmp_path / "restored"
    result = restore(restored, archive, "--key-file", str(key_file), AMBULA_BACKUP_PASSPHRASE="")
    assert result.returncode == 0, result.stderr
    connection = sqlite3.connect(restored / "ambula.sqlite3")
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = connection.execute("SELECT count(*) FROM busy_rows").fetchone()[0]
    connection.close()
    assert 4000 < rows < 4000 + written, "a snapshot from while the writer ran"


def test_new_key_file_never_overwrites_and_a_passphrase_cannot_open_a_key_archive(tmp_path):
    key_file = tmp_path / "backup.key"
    key_file.write_text("precious\n")
    result = run_ambula(tmp_path / "data", "backup", "--new-key-file", str(key_file))
    assert result.returncode != 0
    assert "already exists" in result.stderr
    assert key_file.read_text() == "precious\n"


# --- PostgreSQL -------------------------------------------------------------------------------


@pytest.fixture
def postgresql_urls():
    """Two scratch databases, dropped afterwards, or a skip when no server runs."""
    psycopg = pytest.importorskip("psycopg")
    if not (shutil.which("pg_dump") and shutil.which("pg_restore") and shutil.which("psql")):
        pytest.skip("the PostgreSQL client tools (pg_dump, pg_restore, psql) are not installed")
    try:
        admin = psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError:
        pytest.skip(f"no PostgreSQL server at {POSTGRES_SERVER}")
    suffix = secrets.token_hex(4)
    names = [f"ambula_backup_test_src_{suffix}", f"ambula_backup_test_dst_{suffix}"]
    try:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
        yield [f"{POSTGRES_SERVER}/{name}" for name in names]
    finally:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def postgresql_counts(url: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(url) as connection:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        ]
        return {
            table: connection.execute(f'SELECT count(*) FROM public."{table}"').fetchone()[0]
            for table in tables
        }


def test_postgresql_round_trip_refuses_a_non_empty_database_and_force_is_all_or_nothing(
    postgresql_urls, tmp_path
):
    import psycopg

    def execute(url: str, statement: str) -> None:
        with psycopg.connect(url) as connection:
            connection.execute(statement)

    source_url, target_url = postgresql_urls
    a, b = tmp_path / "a", tmp_path / "b"
    demo = run_ambula(a, "demo", "--patients", "20", AMBULA_DATABASE_URL=source_url)
    assert demo.returncode == 0, demo.stderr
    # A schema besides public: restored with the rest, and later a clash --force cannot clear.
    execute(source_url, "CREATE SCHEMA reports; CREATE TABLE reports.summary (id int)")
    archive = tmp_path / "pg.ambula-backup"
    made = run_ambula(
        a,
        "backup",
        str(archive),
        AMBULA_DATABASE_URL=source_url,
        AMBULA_BACKUP_PASSPHRASE=PASSPHRASE,
    )
    assert made.returncode == 0, made.stderr
    assert "postgresql" in made.stdout

    restored = restore(b, archive, AMBULA_DATABASE_URL=target_url)
    assert restored.returncode == 0, restored.stderr
    source_counts = postgresql_counts(source_url)
    assert source_counts["accounts_user"] == len(DEMO_USERNAMES)
    assert postgresql_counts(target_url) == source_counts
    for name in ("secret_key", "keys/encryption.json", "keys/audit.key"):
        assert (b / name).read_bytes() == (a / name).read_bytes(), name
    migrations = run_ambula(b, "manage", "showmigrations", AMBULA_DATABASE_URL=target_url)
    assert migrations.returncode == 0, migrations.stderr
    assert "[ ]" not in migrations.stdout
    verified = run_ambula(b, "audit", "verify", AMBULA_DATABASE_URL=target_url)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("OK: ")

    refused = restore(b, archive, AMBULA_DATABASE_URL=target_url)
    assert refused.returncode != 0
    assert "is not empty" in refused.stderr
    assert postgresql_counts(target_url) == source_counts

    # --force drops and recreates public in the restore's transaction, so when the restore
    # fails (schema reports exists in the target too) the drop is rolled back with it...
    execute(
        target_url, "CREATE TABLE public.local_only (id int); INSERT INTO local_only VALUES (1)"
    )
    failed = restore(b, archive, "--force", AMBULA_DATABASE_URL=target_url)
    assert failed.returncode != 0
    assert "failed and was rolled back" in failed.stderr
    assert 'schema "reports" already exists' in failed.stderr
    assert postgresql_counts(target_url) == source_counts | {"local_only": 1}

    # ...and when it succeeds, what only the target had is gone.
    execute(target_url, "DROP SCHEMA reports CASCADE")
    forced = restore(b, archive, "--force", AMBULA_DATABASE_URL=target_url)
    assert forced.returncode == 0, forced.stderr
    assert postgresql_counts(target_url) == source_counts

    into_sqlite = restore(tmp_path / "sqlite", archive)
    assert into_sqlite.returncode != 0
    assert "holds a PostgreSQL database but this installation uses SQLite" in into_sqlite.stderr
    assert not (tmp_path / "sqlite" / "ambula.sqlite3").exists()


def test_a_sqlite_backup_is_refused_by_a_postgresql_installation(source, postgresql_urls, tmp_path):
    target_url = postgresql_urls[1]
    result = restore(tmp_path / "b", source["archive"], AMBULA_DATABASE_URL=target_url)
    assert result.returncode != 0
    assert "holds a SQLite database but this installation uses PostgreSQL" in result.stderr
    assert "not supported" in result.stderr
    assert postgresql_counts(target_url) == {}
    assert not list((tmp_path / "b" / "documents").iterdir())


# --- the archive format, in process -----------------------------------------------------------

KEY = backup.KeySource(key=bytes(range(32)))
SMALL_CHUNK = 256


def write_archive(path: Path, payload: bytes, *, key_source=KEY) -> Path:
    with backup.ArchiveWriter(path, key_source, chunk_size=SMALL_CHUNK) as archive:
        archive.add_bytes("documents/payload.bin", payload)
        archive.finish({"format_version": backup.FORMAT_VERSION})
    return path


def split_frames(data: bytes) -> tuple[bytes, list[bytes]]:
    header, rest, frames = data[: backup.HEADER.size], data[backup.HEADER.size :], []
    while rest:
        _, length = backup.FRAME.unpack_from(rest)
        end = backup.FRAME.size + backup.NONCE_SIZE + length
        frames.append(rest[:end])
        rest = rest[end:]
    return header, frames


def extract(path: Path, key_source=KEY) -> dict:
    with tempfile.TemporaryDirectory() as staging:
        return backup.archive_extract(backup.archive_unlock(path, key_source), Path(staging))


@pytest.fixture
def small_archive(tmp_path):
    return write_archive(tmp_path / "small.ambula-backup", secrets.token_bytes(3000))


def test_a_stream_of_many_chunks_round_trips(tmp_path):
    payload = secrets.token_bytes(5000)
    path = write_archive(tmp_path / "many.ambula-backup", payload)
    _, frames = split_frames(path.read_bytes())
    assert len(frames) > 10
    with tempfile.TemporaryDirectory() as staging:
        manifest = backup.archive_extract(backup.archive_unlock(path, KEY), Path(staging))
        assert (Path(staging) / "documents" / "payload.bin").read_bytes() == payload
    assert manifest["members"][0]["size"] == 5000


@pytest.mark.parametrize(
    ("rearrange", "message"),
    [
        (lambda frames: frames[:-1], "is truncated"),  # cut exactly at a chunk boundary
        (lambda frames: [frames[1], frames[0], *frames[2:]], "failed its integrity check"),
        (lambda frames: [*frames, frames[-1]], "data follows its final chunk"),
        (lambda frames: [*frames[:3], b"\x01" + frames[3][1:]], "failed its integrity check"),
    ],
    ids=["dropped final chunk", "swapped chunks", "appended chunk", "final flag moved earlier"],
)
def test_truncation_and_reordering_of_chunks_are_detected(small_archive, rearrange, message):
    header, frames = split_frames(small_archive.read_bytes())
    small_archive.write_bytes(header + b"".join(rearrange(frames)))
    with pytest.raises(backup.DamagedBackupError, match=message):
        extract(small_archive)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(position=st.floats(min_value=0, max_value=1, exclude_max=True), bit=st.integers(0, 7))
def test_any_flipped_bit_anywhere_is_refused(small_archive, position, bit):
    data = bytearray(small_archive.read_bytes())
    data[int(position * len(data))] ^= 1 << bit
    with tempfile.TemporaryDirectory() as directory:
        damaged = Path(directory) / "damaged"
        damaged.write_bytes(data)
        with pytest.raises(backup.BackupError):
            extract(damaged)


def test_the_wrong_key_or_kind_of_secret_is_told_apart_from_damage(small_archive):
    with pytest.raises(backup.WrongKeyError, match="Wrong key"):
        backup.archive_unlock(small_archive, backup.KeySource(key=bytes(32)))
    with pytest.raises(backup.WrongKeyError, match="give that instead"):
        backup.archive_unlock(small_archive, backup.KeySource(passphrase=PASSPHRASE))


def test_a_newer_format_and_absurd_scrypt_costs_are_refused_before_any_work(tmp_path):
    header = backup.Header(
        kind=backup.KIND_PASSPHRASE, log2_n=30, r=8, p=1, chunk_size=1024, salt=bytes(16)
    ).pack()
    costly = tmp_path / "costly"
    costly.write_bytes(header)
    with pytest.raises(backup.DamagedBackupError, match=r"header .* is damaged"):
        backup.archive_unlock(costly, backup.KeySource(passphrase=PASSPHRASE))
    newer = tmp_path / "newer"
    newer.write_bytes(backup.MAGIC + (2).to_bytes(2, "big") + bytes(40))
    with pytest.raises(backup.BackupError, match="format 2; this Ambula reads format 1"):
        backup.archive_unlock(newer, KEY)


@pytest.mark.parametrize(
    "name", ["../outside", "/etc/passwd", "documents/../../x", "elsewhere/x", "documents//x"]
)
def test_members_outside_the_known_folders_are_refused(name, tmp_path):
    with pytest.raises(backup.DamagedBackupError, match="unexpected member"):
        backup._member_path(name, tmp_path / "archive")


def test_key_sources_from_files_and_the_environment(tmp_path):
    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_text(f"  {PASSPHRASE}\n")
    from_file = backup.key_source_from_options(passphrase_file=passphrase_file, environ={})
    from_environment = backup.key_source_from_options(
        environ={backup.PASSPHRASE_VARIABLE: f"  {PASSPHRASE}"}
    )
    header = backup.Header(backup.KIND_PASSPHRASE, 10, 8, 1, 1024, bytes(16))
    assert from_file.master_key(header) == from_environment.master_key(header)
    assert PASSPHRASE not in repr(from_file)

    key_file = tmp_path / "backup.key"
    backup.key_file_create(key_file)
    assert backup.key_source_from_options(key_file=key_file, environ={}).kind == (
        backup.KIND_KEY_FILE
    )
    with pytest.raises(backup.BackupError, match="already exists"):
        backup.key_file_create(key_file)
    key_file.write_text("not base64!")
    with pytest.raises(backup.BackupError, match="does not hold a backup key"):
        backup.key_source_from_options(key_file=key_file, environ={})
    with pytest.raises(backup.BackupError, match="not both"):
        backup.key_source_from_options(
            passphrase_file=passphrase_file, key_file=key_file, environ={}
        )


def sqlite_installation(tmp_path: Path) -> tuple[Path, dict]:
    data_dir = tmp_path / "data"
    (data_dir / "documents").mkdir(parents=True)
    database = data_dir / "ambula.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
        connection.executemany("INSERT INTO notes VALUES (?)", [("a",), ("b",)])
    connection.close()
    (data_dir / "documents" / "one.txt").write_text("one")
    return data_dir, {"ENGINE": "django.db.backends.sqlite3", "NAME": database}


def test_backup_refuses_to_write_inside_the_data_directory(tmp_path):
    data_dir, database = sqlite_installation(tmp_path)
    with pytest.raises(backup.BackupError, match="outside the data directory"):
        backup.backup_create(
            output=data_dir / "documents" / "x.backup",
            key_source=KEY,
            data_dir=data_dir,
            database=database,
        )


def test_a_failed_backup_leaves_no_file_behind(tmp_path, monkeypatch):
    data_dir, database = sqlite_installation(tmp_path)
    output = tmp_path / "out" / "x.backup"
    output.parent.mkdir()

    def failing_finish(self, manifest):
        raise OSError("disk full")

    monkeypatch.setattr(backup.ArchiveWriter, "finish", failing_finish)
    with pytest.raises(OSError, match="disk full"):
        backup.backup_create(output=output, key_source=KEY, data_dir=data_dir, database=database)
    assert list(output.parent.iterdir()) == []
    assert sorted(p.name for p in data_dir.iterdir()) == ["ambula.sqlite3", "documents"]


def test_in_process_round_trip_with_a_key(tmp_path):
    data_dir, database = sqlite_installation(tmp_path)
    output = tmp_path / "x.backup"
    made = backup.backup_create(output=output, key_source=KEY, data_dir=data_dir, database=database)
    assert (made.rows, made.documents, made.secret_key) == (2, 1, False)
    target = tmp_path / "target"
    (target / "documents").mkdir(parents=True)
    restored = backup.backup_restore(
        archive=output,
        key_source=KEY,
        data_dir=target,
        database={**database, "NAME": target / "ambula.sqlite3"},
    )
    assert restored.mismatches == []
    assert (target / "documents" / "one.txt").read_text() == "one"
    assert restored.expected == {"notes": 2}
