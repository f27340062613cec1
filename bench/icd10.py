"""ICD-10-CM figures: loading the full code set, and the code picker's search latency.

Runs in a throw-away data directory (SQLite by default; set AMBULA_DATABASE_URL, or pass
--database-url, to a scratch PostgreSQL database to measure that instead — its tables are
emptied and filled, so never point it at a real one).

    python bench/icd10.py [--rounds 3] [--database-url postgres://...]
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

CODE_QUERIES = [
    "E11", "e11.9", "E119", "e11.65", "I10", "i1", "J45", "J45.909", "S72", "s72.001a",
    "M54.5", "m545", "Z00.00", "F41.1", "F32", "K21.9", "N39.0", "R51", "G43.909", "Z23",
    "O09", "C50.9", "A0", "T78.40", "H66.9",
]  # fmt: skip
WORD_QUERIES = [
    "diab", "diabetes", "type 2 diab", "type 1 diabetes mellitus", "hypertens",
    "essential hypertension", "fracture", "fracture femur", "fract neck femur", "asthma",
    "chronic kidney", "ckd", "pneumonia", "depress", "major depressive", "anxiety",
    "back pain", "low back pain", "migraine", "otitis media", "urinary tract infection",
    "obesity", "hyperlipid", "copd", "heart failure", "atrial fib", "osteoarthritis knee",
    "sprain ankle", "laceration hand", "burn", "pregnancy", "covid", "vitamin d", "anemia",
    "hypothyroid", "gastro reflux", "dermatitis", "conjunctivitis", "sinusitis",
    "bronchitis", "cellulitis leg", "open wound", "encounter", "screening", "sézary",
    "abdominal pain", "chest pain", "headache", "cough", "fever", "nausea vomit",
    "unspecified", "left", "of", "injury", "diabetes with hyperglycemia", "a1c", "xyzzy",
    "hepatitis c", "type 2 diabetes mellitus without complications", "acute bronchitis",
    "urinary incontinence", "insomnia", "gout", "rheumatoid arthritis", "psoriasis",
    "hypokalemia", "tobacco use", "nicotine dependence", "alcohol abuse", "dementia",
    "parkinson", "epilepsy", "glaucoma", "cataract", "hearing loss", "tinnitus", "vertigo",
]  # fmt: skip
# A clinician typing into the picker: one request per key after the first two.
TYPED = ["hypertension", "diabetes mellitus", "fracture of femur", "pneumonia", "E11.65"]


def query_mix() -> list[str]:
    typed = [word[:length] for word in TYPED for length in range(2, len(word) + 1)]
    mix = CODE_QUERIES + WORD_QUERIES + typed
    mix += [query.upper() for query in WORD_QUERIES[:40]]
    return mix


def setup(data_dir: Path, database_url: str | None) -> None:
    os.environ["AMBULA_DATA_DIR"] = str(data_dir)
    if database_url:
        os.environ["AMBULA_DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ambula.settings")
    os.environ["AMBULA_LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if os.environ.get("AMBULA_DATABASE_URL"):
        call_command("flush", interactive=False, verbosity=0)  # a scratch database, emptied


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="passes over the query mix")
    parser.add_argument("--database-url", help="a scratch PostgreSQL database (emptied!)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ambula-bench-icd10-") as directory:
        setup(Path(directory), args.database_url)
        from django.db import connection

        from ambula.terminology.icd10 import icd10_load_package
        from ambula.terminology.selectors import icd10_search

        print(f"ICD-10-CM on {connection.vendor}")
        started = time.perf_counter()
        release = icd10_load_package()
        print(
            f"load {release.code_count:,} codes ({release.release}): "
            f"{time.perf_counter() - started:.1f} s"
        )

        queries = query_mix()
        for query in queries:
            icd10_search(query)  # warm the caches: a running server has them warm
        latencies: dict[str, list[float]] = {query: [] for query in queries}
        cpu_times: list[float] = []
        for _ in range(args.rounds):
            for query in queries:
                started, started_cpu = time.perf_counter(), time.process_time()
                icd10_search(query)
                latencies[query].append((time.perf_counter() - started) * 1000)
                cpu_times.append((time.process_time() - started_cpu) * 1000)
        every = sorted(latency for values in latencies.values() for latency in values)
        cpu_times.sort()
        print(
            f"search, {len(queries)} queries x {args.rounds}: "
            f"p50 {statistics.median(every):.1f} ms   p95 {percentile(every, 0.95):.1f} ms   "
            f"max {every[-1]:.1f} ms"
        )
        if connection.vendor == "sqlite":
            # On a shared machine the wall clock counts others' work too; the CPU time does not
            # (SQLite runs in this process, so its work is all here).
            print(
                f"  CPU time: p50 {statistics.median(cpu_times):.1f} ms   "
                f"p95 {percentile(cpu_times, 0.95):.1f} ms"
            )
        slowest = sorted(latencies, key=lambda query: -statistics.median(latencies[query]))[:5]
        print("slowest: " + ", ".join(
            f"{query!r} {statistics.median(latencies[query]):.1f} ms" for query in slowest
        ))  # fmt: skip
        connection.close()


if __name__ == "__main__":
    main()
