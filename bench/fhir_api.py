"""(Named fhir_api, not fhir: this directory is on sys.path and would hide fhir.resources.)

FHIR API figures with 100,000 patients and a year of appointments: Patient read, Patient
search by name, Appointment search by patient and date, and a read/search/create mix with 8
concurrent clients over HTTP.

Fills a throw-away data directory (SQLite by default; `--database postgres`, or
AMBULA_DATABASE_URL, for the scratch PostgreSQL database `ambula_bench`: its tables are
flushed and filled, so never point it at a real one) with the patients of bench/patients.py
and the appointments of bench/scheduling.py, spread over all the patients. Bulk seeding sends
no signals, so version 1 of every seeded Patient and Appointment is written in bulk too, as the
API would have stamped it: reads and searches then measure the steady state, not first renders.

Every request carries a real bearer token (user/*.cruds, front desk) and is audited as in
production. Reads are measured in-process through Django's test client (server side, no
network) and over HTTP against `ambula serve`.

    python bench/fhir_api.py [--database sqlite|postgres] [--patients 100000] [--seconds 20]
"""

import argparse
import http.client
import json
import os
import random
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _http import line, percentile  # beside this file
from patients import FAMILY, GIVEN, bulk_fill  # the patients benchmark's seeding
from scheduling import fill as fill_schedule  # the scheduling benchmark's seeding
from scheduling import setup

from ambula.testing.processes import ambula_process, free_port, wait_for

POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/ambula_bench"
SCOPES = "user/*.cruds"
FHIR_JSON = "application/fhir+json"


def choose_database(name: str) -> None:
    if name == "postgres" and not os.environ.get("AMBULA_DATABASE_URL"):
        os.environ["AMBULA_DATABASE_URL"] = POSTGRES_URL
    url = os.environ.get("AMBULA_DATABASE_URL", "")
    if url == POSTGRES_URL:
        import psycopg

        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
        ) as admin:
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = 'ambula_bench'")
            if exists.fetchone() is None:
                admin.execute("CREATE DATABASE ambula_bench")


def backfill_versions(resource_type: str) -> int:
    """Version 1 of every record, exactly as the API's first render would stamp it."""
    from django.db import transaction

    from ambula.fhir.models import ResourceVersion
    from ambula.fhir.registry import mapper_for
    from ambula.fhir.versions import digest_of

    mapper = mapper_for(resource_type)
    batch, written = [], 0
    for obj in mapper.queryset().order_by("pk").iterator(chunk_size=2000):
        resource = {
            "resourceType": resource_type,
            "id": mapper.resource_id(obj),
            **mapper.to_fhir(obj),
        }
        batch.append(
            ResourceVersion(
                resource_type=resource_type,
                resource_id=resource["id"],
                version=1,
                recorded_at=mapper.last_updated(obj),
                digest=digest_of(resource),
                content=resource,
            )
        )
        if len(batch) == 2000:
            with transaction.atomic():
                ResourceVersion.objects.bulk_create(batch, ignore_conflicts=True)
            written += len(batch)
            batch = []
    with transaction.atomic():
        ResourceVersion.objects.bulk_create(batch, ignore_conflicts=True)
    return written + len(batch)


def seed(patient_count: int, fill_ratio: float):
    from ambula.core.services import practice_create
    from ambula.patients.models import Patient

    practice_create(actor=None, name="Benchmark Practice", mfa_required=False)
    bulk_fill(patient_count)
    patients = list(Patient.objects.only("pk"))
    clerk, _patients, _visit, _providers, count = fill_schedule(fill_ratio, patients)
    versions = backfill_versions("Patient") + backfill_versions("Appointment")
    return clerk, [patient.pk for patient in patients], count, versions


def name_searches(count: int) -> list[str]:
    """Name searches a front desk types: a family-name prefix, or a prefix with a given name."""
    chooser = random.Random(3)  # noqa: S311  (synthetic data)
    given, family = GIVEN.split(), FAMILY.split()
    paths = []
    for _ in range(count):
        surname = chooser.choice(family)
        if chooser.random() < 0.6:
            query = {"name": surname[: chooser.randint(3, 6)]}
        else:
            query = {"family": surname[: chooser.randint(3, 6)], "given": chooser.choice(given)}
        paths.append("/fhir/Patient?" + urlencode(query))
    return paths


def appointment_searches(count: int) -> list[str]:
    """A patient's appointments in one month of the seeded year."""
    from ambula.scheduling.models import Appointment

    chooser = random.Random(5)  # noqa: S311
    rows = list(Appointment.objects.order_by("?").values_list("patient_id", "starts_at")[:count])
    paths = []
    for patient_id, starts_at in rows:
        first = starts_at.date().replace(day=1) - timedelta(days=chooser.randrange(0, 20))
        last = first + timedelta(days=31)
        query = [("patient", str(patient_id)), ("date", f"ge{first}"), ("date", f"lt{last}")]
        paths.append("/fhir/Appointment?" + urlencode(query))
    return paths


def in_process(label: str, paths: list[str], token: str) -> None:
    """Through Django's test client: the server's own time, without sockets."""
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_ACCEPT": FHIR_JSON}
    for path in paths[:10]:
        client.get(path, **headers)
    latencies = []
    for path in paths:
        begun = time.perf_counter()
        response = client.get(path, **headers)
        latencies.append((time.perf_counter() - begun) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"GET {path} answered {response.status_code}: {response.content!r}")
    print(line(label, latencies))


def over_http(port: int, label: str, paths: list[str], token: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Accept": FHIR_JSON, "Host": "127.0.0.1"}
    for path in paths[:10]:
        connection.request("GET", path, headers=headers)
        connection.getresponse().read()
    latencies = []
    for path in paths:
        begun = time.perf_counter()
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        latencies.append((time.perf_counter() - begun) * 1000)
        if response.status != 200:
            raise SystemExit(f"GET {path} answered {response.status}")
    connection.close()
    print(line(label, latencies))


def new_patient(chooser: random.Random, number: int) -> bytes:
    given = GIVEN.split()
    born = (
        f"{chooser.randint(1935, 2020)}-{chooser.randint(1, 12):02d}-{chooser.randint(1, 28):02d}"
    )
    resource = {
        "resourceType": "Patient",
        "name": [
            # A family name no seeded patient shares: the duplicate check (same birth date,
            # similar name) would rightly answer 409 to a random twin of the 100,000.
            {"family": f"Newcomb{number}", "given": [chooser.choice(given)]}
        ],
        "gender": chooser.choice(["female", "male"]),
        "birthDate": born,
    }
    return json.dumps(resource).encode()


def mix(port: int, token: str, patient_ids: list, searches: list[str], seconds: float) -> None:
    """8 clients, each on its own keep-alive connection: 60% read, 30% search, 10% create."""
    counts = {"read": 0, "search": 0, "create": 0}
    latencies: dict[str, list[float]] = {kind: [] for kind in counts}
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {token}", "Accept": FHIR_JSON, "Host": "127.0.0.1"}

    def client(number: int) -> None:
        chooser = random.Random(100 + number)  # noqa: S311
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        sent = 0
        while time.perf_counter() < deadline:
            draw = chooser.random()
            if draw < 0.6:
                kind, method, path, body = "read", "GET", None, None
                path = f"/fhir/Patient/{chooser.choice(patient_ids)}"
            elif draw < 0.9:
                kind, method, path, body = "search", "GET", chooser.choice(searches), None
            else:
                sent += 1
                kind, method, path = "create", "POST", "/fhir/Patient"
                body = new_patient(chooser, number * 1_000_000 + sent)
            extra = {"Content-Type": FHIR_JSON} if body else {}
            begun = time.perf_counter()
            try:
                connection.request(method, path, body=body, headers=headers | extra)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as error:
                status = repr(error)
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            elapsed = (time.perf_counter() - begun) * 1000
            with lock:
                counts[kind] += 1
                latencies[kind].append(elapsed)
                if not isinstance(status, int) or status >= 300:
                    errors.append(f"{method} {path}: {status}")
        connection.close()

    threads = [threading.Thread(target=client, args=(number,)) for number in range(8)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    total = sum(counts.values())
    print(
        f"mix over HTTP, 8 clients, {elapsed:.0f} s: {total / elapsed:6.0f} requests/s, "
        f"{len(errors)} errors ({counts['read']} reads, {counts['search']} searches, "
        f"{counts['create']} creates)"
    )
    for kind, values in latencies.items():
        if values:
            print(f"   {kind:<8} p95 {percentile(values, 0.95):6.1f} ms")
    if errors:
        print("   first error:", errors[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--fill", type=float, default=0.6)
    parser.add_argument("--reads", type=int, default=1_000)
    parser.add_argument("--searches", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    choose_database(args.database)

    with tempfile.TemporaryDirectory(prefix="ambula-bench-fhir-") as directory:
        data_dir = Path(directory)
        setup(data_dir)
        from django.db import connection

        from ambula.smart.testing import issue_token

        started = time.perf_counter()
        clerk, patient_ids, appointments, versions = seed(args.patients, args.fill)
        print(
            f"FHIR on {connection.vendor}: {len(patient_ids):,} patients, {appointments:,} "
            f"appointments ({args.fill:.0%} of a year) filled in "
            f"{time.perf_counter() - started:.0f} s, with version 1 of each written in bulk "
            f"({versions:,} versions: reads below are steady state, not first renders)"
        )
        token = issue_token(clerk, SCOPES)
        print(f"token: {SCOPES} for a front-desk user, issued directly (smart.testing.issue_token)")
        chooser = random.Random(9)  # noqa: S311
        reads = [f"/fhir/Patient/{chooser.choice(patient_ids)}" for _ in range(args.reads)]
        names = name_searches(args.searches)
        visits = appointment_searches(args.searches)

        in_process("Patient read, in-process (goal p95 < 20)", reads, token)
        in_process("Patient search by name, in-process (< 50)", names, token)
        in_process("Appointment search, patient+month, in-proc", visits, token)
        connection.close()

        port = free_port()
        extra = {"AMBULA_TIME_ZONE": os.environ["AMBULA_TIME_ZONE"]}
        if os.environ.get("AMBULA_DATABASE_URL"):
            extra["AMBULA_DATABASE_URL"] = os.environ["AMBULA_DATABASE_URL"]
        with ambula_process(
            data_dir, "serve", "--port", str(port), AMBULA_LOG_LEVEL="WARNING", **extra
        ):
            wait_for(f"http://127.0.0.1:{port}/healthz")
            over_http(port, "Patient read over HTTP", reads, token)
            over_http(port, "Patient search by name over HTTP", names, token)
            over_http(port, "Appointment search, patient+month, HTTP", visits, token)
            mix(port, token, patient_ids, names, args.seconds)


if __name__ == "__main__":
    main()
