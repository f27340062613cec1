"""Patient record figures with a large practice: registration rate, search, quick search, chart.

Fills a throw-away data directory (SQLite by default; set AMBULA_DATABASE_URL to a scratch
PostgreSQL database to measure that instead: its tables are emptied and filled, so never point
it at a real one) with --patients synthetic patients, then measures:

- registration through `patient_register` (duplicate check, MRN counter, audit event);
- name-prefix search through `patient_search` (service level, audited as in production);
- the top bar's quick search and the chart page over HTTP, against `ambula serve`.

    python bench/patients.py [--patients 100000] [--registrations 1000] [--queries 400]
"""

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _http import line, measure_http, signed_in_cookie  # beside this file

from ambula.testing.processes import ambula_process, free_port, wait_for

GIVEN = "Maria James Aisha Wei Sofia Daniel Priya Mateo Grace Kwame Elena Omar Hannah Luca Mei "
GIVEN += "Tomás Zainab Noah Ingrid Rafael Chloé Jonas Amara Felix Yara Ravi Lena Idris Nora Emil"
FAMILY = "Alvarez Bennett Chen Okafor Novak Haddad Kim Larsen Moreau Nakamura O'Brien Patel "
FAMILY += "Quinn Rossi Schmidt Tanaka Usman Vargas Walsh Yilmaz Müller García Nguyen Kowalski "
FAMILY += "Dubois Ivanova Santos Jensen Fischer Costa Mendes Lindqvist Farouk Brennan Ødegaard"
SYLLABLES = ["", "son", "berg", "ez", "ini", "ova", "man", "ley", "ski", "ton", "ard", "elli"]
PASSWORD = "bench-practice-password"  # noqa: S105  (a throw-away benchmark database)


def setup(data_dir: Path) -> None:
    os.environ["AMBULA_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ambula.settings")
    os.environ["AMBULA_LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)  # as `ambula serve` expects
    if os.environ.get("AMBULA_DATABASE_URL"):
        call_command("flush", interactive=False, verbosity=0)  # a scratch database, emptied


def synthetic_people(count: int, seed: int) -> list[dict]:
    chooser = random.Random(seed)  # noqa: S311  (synthetic data, no secrets)
    given, family = GIVEN.split(), FAMILY.split()
    people = []
    for _ in range(count):
        people.append(
            {
                "given_name": chooser.choice(given),
                "family_name": chooser.choice(family) + chooser.choice(SYLLABLES),
                "date_of_birth": date(1930, 1, 1) + timedelta(days=chooser.randrange(33_000)),
                "administrative_sex": chooser.choice("FM"),
                "mobile_phone": f"(217) 555-{chooser.randrange(10_000):04d}",
            }
        )
    return people


def bulk_fill(count: int) -> None:
    """Insert patients in batches: the same derived fields and MRNs as registration makes."""
    from django.db import transaction

    from ambula.patients.models import MrnCounter, Patient, digits_only, search_form
    from ambula.patients.mrn import mrn_from_number

    counter, _ = MrnCounter.objects.get_or_create(pk=1)
    batch = []
    for person in synthetic_people(count, seed=1):
        counter.last_number += 1
        patient = Patient(mrn=mrn_from_number(counter.last_number), **person)
        patient.search_family_name = search_form(patient.family_name)
        patient.search_given_name = search_form(patient.given_name)
        patient.phone_digits = digits_only(patient.mobile_phone)
        batch.append(patient)
        if len(batch) == 5000:
            with transaction.atomic():
                Patient.objects.bulk_create(batch)
            batch = []
    with transaction.atomic():
        Patient.objects.bulk_create(batch)
        counter.save()


def fill_charts(users: dict, patients: list) -> None:
    """Give some patients a full record: what a chart of a long-time patient holds."""
    from ambula.patients.models import (
        Allergy,
        Coverage,
        HistoryEntry,
        Medication,
        Payer,
        Problem,
        SocialHistory,
    )

    payer = Payer.objects.create(name="Prairie Health Plan", payer_id="AMB01")
    problems = [
        ("E11.9", "Type 2 diabetes mellitus without complications"),
        ("I10", "Essential (primary) hypertension"),
        ("E78.5", "Hyperlipidemia, unspecified"),
        ("J45.909", "Unspecified asthma, uncomplicated"),
        ("K21.9", "Gastro-esophageal reflux disease without esophagitis"),
    ]
    for number, patient in enumerate(patients):
        Coverage.objects.create(patient=patient, payer=payer, member_id=f"W{number:09d}")
        for code, description in problems:
            Problem.objects.create(patient=patient, code=code, description=description)
        for substance in ("Penicillin", "Latex", "Sulfa drugs"):
            Allergy.objects.create(patient=patient, substance=substance, severity="moderate")
        for name in ("Metformin", "Lisinopril", "Atorvastatin", "Albuterol", "Omeprazole"):
            Medication.objects.create(patient=patient, name=name, dose="10 mg", frequency="daily")
        HistoryEntry.objects.create(patient=patient, kind="surgical", condition="Appendectomy")
        HistoryEntry.objects.create(
            patient=patient, kind="family", condition="Heart disease", relation="father"
        )
        SocialHistory.objects.create(patient=patient, occupation="Teacher")


def measure_registration(clerk, count: int) -> None:
    from ambula.patients.services import patient_register

    people = synthetic_people(count, seed=2)
    latencies = []
    started = time.perf_counter()
    for person in people:
        begun = time.perf_counter()
        patient_register(actor=clerk, allow_duplicate=True, **person)
        latencies.append((time.perf_counter() - begun) * 1000)
    seconds = time.perf_counter() - started
    print(line(f"registration ({count / seconds:,.0f} patients/s)", latencies))


def search_queries(count: int) -> list[str]:
    chooser = random.Random(3)  # noqa: S311
    given, family = GIVEN.split(), FAMILY.split()
    queries = []
    for _ in range(count):
        kind = chooser.random()
        surname = chooser.choice(family).lower()
        if kind < 0.4:
            queries.append(surname[: chooser.randint(2, 5)])
        elif kind < 0.8:
            queries.append(f"{surname[:4]}, {chooser.choice(given)[:2].lower()}")
        else:
            queries.append(f"{chooser.choice(given)} {surname[:3]}")
    return queries


def measure_search(clerk, queries: list[str]) -> None:
    from ambula.patients.selectors import patient_search

    for query in queries[:20]:
        patient_search(actor=clerk, query=query)  # warm the caches
    latencies = []
    for query in queries:
        begun = time.perf_counter()
        patient_search(actor=clerk, query=query)
        latencies.append((time.perf_counter() - begun) * 1000)
    print(line("name-prefix search, service (audited)", latencies))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--registrations", type=int, default=1_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--charts", type=int, default=200)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ambula-bench-") as directory:
        data_dir = Path(directory) / "data"
        setup(data_dir)
        from urllib.parse import quote

        from django.db import connection

        from ambula.accounts.roles import Role
        from ambula.accounts.services import user_create
        from ambula.core.services import practice_create
        from ambula.patients.models import Patient

        database = connection.vendor
        practice_create(actor=None, name="Benchmark Practice", mfa_required=False)
        users = {
            role: user_create(
                actor=None,
                username=role.value,
                email=f"{role.value}@bench.ambula.invalid",
                full_name=f"Bench {role.label}",
                roles=[role],
                password=PASSWORD,
            )
            for role in (Role.FRONT_DESK, Role.PHYSICIAN)
        }
        started = time.perf_counter()
        bulk_fill(args.patients)
        charts = list(Patient.objects.order_by("?")[: args.charts])
        fill_charts(users, charts)
        print(
            f"{database}: {args.patients:,} patients filled in "
            f"{time.perf_counter() - started:.1f} s ({args.charts} with a full chart)"
        )
        measure_registration(users[Role.FRONT_DESK], args.registrations)
        queries = search_queries(args.queries)
        measure_search(users[Role.FRONT_DESK], queries)
        desk_cookie = signed_in_cookie(Role.FRONT_DESK.value, PASSWORD)
        doctor_cookie = signed_in_cookie(Role.PHYSICIAN.value, PASSWORD)
        connection.close()

        port = free_port()
        database_url = os.environ.get("AMBULA_DATABASE_URL", "")
        extra = {"AMBULA_DATABASE_URL": database_url} if database_url else {}
        with ambula_process(
            data_dir, "serve", "--port", str(port), AMBULA_LOG_LEVEL="WARNING", **extra
        ):
            wait_for(f"http://127.0.0.1:{port}/healthz")
            quick = [f"/patients/?q={quote(query)}" for query in queries]
            measure_http(port, "quick search over HTTP (htmx fragment)", quick, desk_cookie, True)
            chart_paths = [f"/patients/{patient.pk}/" for patient in charts] * 2
            measure_http(
                port,
                "chart page over HTTP (physician, full chart)",
                chart_paths,
                doctor_cookie,
                False,
            )


if __name__ == "__main__":
    main()
