"""Audit trail figures: the cost of writing an event, alone and with 8 concurrent writers,
and `ambula audit verify` over a large chain.

Runs in a throw-away data directory (SQLite by default; set AMBULA_DATABASE_URL to a scratch
PostgreSQL database to measure that instead — its tables are filled, so never point it at a
real one).

    python bench/audit.py [--events 1000000] [--writes 2000]
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path


def setup(data_dir: Path) -> None:
    os.environ["AMBULA_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ambula.settings")
    os.environ["AMBULA_LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if os.environ.get("AMBULA_DATABASE_URL"):
        call_command("flush", interactive=False, verbosity=0)  # a scratch database, emptied


def write_latencies(count: int) -> list[float]:
    from django.db import connection

    from ambula.audit.services import record

    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        record(
            actor=None,
            username="bench",
            action="accounts.roles_changed",
            category="accounts",
            changes={"roles": {"old": ["nurse"], "new": ["physician"]}},
        )
        latencies.append((time.perf_counter() - started) * 1000)
    connection.close()
    return latencies


def report(label: str, latencies: list[float], seconds: float) -> None:
    ordered = sorted(latencies)
    p95 = ordered[int(0.95 * len(ordered))]
    print(
        f"{label:<34} {len(latencies) / seconds:8.0f} events/s   "
        f"p50 {statistics.median(ordered):6.2f} ms   p95 {p95:6.2f} ms"
    )


def bulk_fill(total: int) -> None:
    """Append events quickly: the same chain arithmetic as record(), written in batches."""
    from django.db import transaction
    from django.utils.timezone import now as timezone_now

    from ambula.audit.chain import mac_of
    from ambula.audit.models import AuditChainHead, AuditEvent

    head, _ = AuditChainHead.objects.get_or_create(pk=1)
    sequence, mac = head.sequence, head.mac
    batch = []
    while sequence < total:
        sequence += 1
        event = AuditEvent(
            sequence=sequence,
            occurred_at=timezone_now(),
            actor_username="bench",
            action="auth.signed_in",
            kind="login",
            category="authentication",
            outcome="success",
            ip_address="127.0.0.1",
            previous_mac=mac,
        )
        event.mac = mac = mac_of({**event.__dict__, "actor_id": None})
        batch.append(event)
        if len(batch) == 10_000 or sequence == total:
            with transaction.atomic():
                AuditEvent.objects.bulk_create(batch)
                AuditChainHead.objects.filter(pk=1).update(sequence=sequence, mac=mac)
            batch = []
            print(f"\r  filling: {sequence:,}/{total:,}", end="", file=sys.stderr)
    print(file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--writes", type=int, default=2000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ambula-bench-audit-") as directory:
        setup(Path(directory))
        from django.db import connection

        print(f"audit trail on {connection.vendor}")
        started = time.perf_counter()
        latencies = write_latencies(args.writes)
        report("record(), 1 writer", latencies, time.perf_counter() - started)

        per_writer = args.writes // 8
        results: list[list[float]] = [[] for _ in range(8)]
        threads = [
            threading.Thread(target=lambda i=i: results[i].extend(write_latencies(per_writer)))
            for i in range(8)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        report(
            "record(), 8 concurrent writers",
            [latency for result in results for latency in result],
            time.perf_counter() - started,
        )

        from ambula.audit import chain

        bulk_fill(args.events)
        started = time.perf_counter()
        verdict = chain.verify()
        seconds = time.perf_counter() - started
        print(
            f"verify {verdict.count:,} events: {seconds:.1f} s "
            f"({verdict.count / seconds:,.0f} events/s), intact={verdict.intact}"
        )


if __name__ == "__main__":
    main()
