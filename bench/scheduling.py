"""Scheduling figures: next-available search over a busy year, the day board with 300
appointments over HTTP, and booking throughput with 8 concurrent clerks on distinct and on
contended slots, with a double-booking count.

Runs in a throw-away data directory (SQLite by default; set AMBULA_DATABASE_URL to a scratch
PostgreSQL database to measure that instead — its tables are flushed and filled, so never
point it at a real one).

    python bench/scheduling.py [--searches 200] [--fill 0.6] [--boards 200]
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _http import measure_http, signed_in_cookie  # beside this file

from ambula.testing.processes import ambula_process, free_port, wait_for

PROVIDERS, LOCATIONS, WEEKS = 30, 3, 52
PASSWORD = "bench-practice-password"  # noqa: S105  (a throw-away benchmark database)


def setup(data_dir: Path) -> None:
    os.environ["AMBULA_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ambula.settings")
    os.environ["AMBULA_LOG_LEVEL"] = "WARNING"
    os.environ.setdefault("AMBULA_TIME_ZONE", "America/Chicago")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    # Throw-away users: their password hashing is not what this measures.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)  # as `ambula serve` expects
    if os.environ.get("AMBULA_DATABASE_URL"):
        call_command("flush", interactive=False, verbosity=0)  # a scratch database, emptied


def fill(fill_ratio: float, patients: list | None = None):
    """30 providers over 3 locations, weekday templates, a year of appointments (for 50 new
    patients, or spread over the `patients` given)."""
    from ambula.accounts.roles import Role
    from ambula.accounts.services import user_create
    from ambula.patients.tests.factories import registered_patient
    from ambula.scheduling.availability import practice_zone, wall_clock
    from ambula.scheduling.models import Appointment, Resource, ResourceBooking
    from ambula.scheduling.tests import factories as f

    clerk = user_create(
        actor=None,
        username="clerk",
        email="c@example.test",
        full_name="Clerk",
        roles=[Role.FRONT_DESK],
        password=PASSWORD,
    )
    if patients is None:
        patients = [registered_patient(actor=clerk) for _ in range(50)]
    locations = [f.make_location(f"Site {number}") for number in range(LOCATIONS)]
    rooms = {
        location.pk: [f.make_room(location, f"Room {n}") for n in range(PROVIDERS // LOCATIONS + 2)]
        for location in locations
    }
    visit = f.make_type("Follow-up", duration=30, buffer=0)
    providers = []
    for number in range(PROVIDERS):
        user = user_create(
            actor=None,
            username=f"dr{number}",
            email=f"dr{number}@example.test",
            full_name=f"Dr. Bench {number:02d}",
            roles=[Role.PHYSICIAN],
        )
        provider = f.make_provider(user)
        location = locations[number % LOCATIONS]
        f.make_block(provider, location, weekdays=range(5), starts_at=clock(8), ends_at=clock(12))
        f.make_block(provider, location, weekdays=range(5), starts_at=clock(13), ends_at=clock(17))
        providers.append((provider, location))

    zone = practice_zone()
    rng = random.Random(7)  # noqa: S311  (synthetic data, no secrets)
    first_day = datetime.now(zone).date() + timedelta(days=1)
    appointments, bookings = [], []
    for index, (provider, location) in enumerate(providers):
        room = rooms[location.pk][index // LOCATIONS]  # each provider its own room
        for offset in range(WEEKS * 7):
            day = first_day + timedelta(days=offset)
            if day.weekday() >= 5:
                continue
            for hour in (8, 9, 10, 11, 13, 14, 15, 16):
                for minute in (0, 30):
                    if rng.random() >= fill_ratio:
                        continue
                    start = wall_clock(day, clock(hour, minute), zone)
                    end = start + timedelta(minutes=30)
                    appointment = Appointment(
                        patient=rng.choice(patients),
                        provider=provider,
                        location=location,
                        appointment_type=visit,
                        starts_at=start,
                        ends_at=end,
                        blocked_until=end,
                        booked_by=clerk,
                    )
                    appointments.append(appointment)
                    bookings.append(
                        ResourceBooking(
                            appointment=appointment,
                            resource=room,
                            starts_at=start,
                            blocked_until=end,
                        )
                    )
    Appointment.objects.bulk_create(appointments, batch_size=2000)
    ResourceBooking.objects.bulk_create(bookings, batch_size=2000)
    assert Resource.objects.count() == LOCATIONS * (PROVIDERS // LOCATIONS + 2)
    return clerk, patients, visit, providers, len(appointments)


def fill_busy_saturday(clerk, patients, providers) -> date:
    """300 visits on one board: 20 providers at one site, 15-minute visits 08:00-11:45 on the
    next Saturday (a day the year's fill leaves empty), in every status a morning shows."""
    from ambula.scheduling.availability import practice_zone, wall_clock
    from ambula.scheduling.models import Appointment
    from ambula.scheduling.tests import factories as f

    zone = practice_zone()
    today = datetime.now(zone).date()
    saturday = today + timedelta(days=(5 - today.weekday()) % 7 or 7)
    quick = f.make_type("Quick check", duration=15, buffer=0)
    location = providers[0][1]
    rng = random.Random(11)  # noqa: S311  (synthetic data)
    statuses = ["scheduled"] * 6 + ["arrived", "in_room", "completed", "no_show", "cancelled"]
    appointments = []
    for provider, _home in providers[:20]:
        for slot in range(15):
            start = wall_clock(saturday, clock(8, 0), zone) + timedelta(minutes=15 * slot)
            status = rng.choice(statuses)
            appointments.append(
                Appointment(
                    patient=rng.choice(patients),
                    provider=provider,
                    location=location,
                    appointment_type=quick,
                    starts_at=start,
                    ends_at=start + timedelta(minutes=15),
                    blocked_until=start + timedelta(minutes=15),
                    booked_by=clerk,
                    status=status,
                    arrived_at=start if status in ("arrived", "in_room", "completed") else None,
                    roomed_at=start if status in ("in_room", "completed") else None,
                    completed_at=start if status == "completed" else None,
                    no_show_at=start if status == "no_show" else None,
                    cancelled_at=start if status == "cancelled" else None,
                    cancel_reason="Patient called" if status == "cancelled" else "",
                )
            )
    Appointment.objects.bulk_create(appointments)
    return saturday


def measure_board(data_dir: Path, location, saturday: date, count: int) -> None:
    """The front desk's day board with 300 visits, whole page and live (htmx) refresh."""
    from django.db import connection

    cookie = signed_in_cookie("clerk", PASSWORD)
    connection.close()
    port = free_port()
    database_url = os.environ.get("AMBULA_DATABASE_URL", "")
    extra = {"AMBULA_TIME_ZONE": os.environ["AMBULA_TIME_ZONE"]}
    if database_url:
        extra["AMBULA_DATABASE_URL"] = database_url
    path = f"/schedule/?location={location.pk}&date={saturday.isoformat()}"
    with ambula_process(
        data_dir, "serve", "--port", str(port), AMBULA_LOG_LEVEL="WARNING", **extra
    ):
        wait_for(f"http://127.0.0.1:{port}/healthz")
        measure_http(port, "day board, 300 visits, whole page", [path] * count, cookie, False)
        measure_http(port, "day board, 300 visits, live refresh", [path] * count, cookie, True)


def percentiles(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p95 = ordered[int(0.95 * len(ordered))]
    return (
        f"p50 {statistics.median(ordered):6.1f} ms   p95 {p95:6.1f} ms   max {ordered[-1]:6.1f} ms"
    )


def search(visit, providers, count: int) -> None:
    from ambula.scheduling.slots import next_available

    rng = random.Random(1)  # noqa: S311
    now = datetime.now(UTC)
    for label, pick in (
        ("all 30 providers", lambda: None),
        ("one provider", lambda: [rng.choice(providers)[0]]),
    ):
        latencies = []
        for _ in range(count):
            start = now + timedelta(days=rng.randrange(0, 200), hours=rng.randrange(0, 24))
            started = time.perf_counter()
            slots = next_available(appointment_type=visit, providers=pick(), start=start, weeks=8)
            latencies.append((time.perf_counter() - started) * 1000)
            assert slots
        print(f"next_available, 8 weeks, limit 20, {label:<17} {percentiles(latencies)}")


def apart(slots, visit) -> list:
    """Slots that do not overlap one another (the search lists 09:00 and 09:15 both)."""
    kept = []
    for slot in slots:
        if not kept or slot.starts_at >= kept[-1].starts_at + timedelta(
            minutes=visit.duration_minutes
        ):
            kept.append(slot)
    return kept


def book_concurrently(label, clerk, patients, visit, plans) -> None:
    """Each thread books down its list of (provider, location, start)."""
    from django.db import connection

    from ambula.scheduling.booking import SlotTaken, appointment_book

    booked, taken, failed, latencies = [0], [0], [], []
    lock = threading.Lock()

    def run(plan):
        try:
            for provider, location, starts_at in plan:
                started = time.perf_counter()
                try:
                    appointment_book(
                        actor=clerk,
                        patient=random.choice(patients),  # noqa: S311
                        provider=provider,
                        location=location,
                        appointment_type=visit,
                        starts_at=starts_at,
                    )
                    outcome = booked
                except SlotTaken:
                    outcome = taken
                except Exception as error:
                    with lock:
                        failed.append(repr(error))
                    continue
                with lock:
                    outcome[0] += 1
                    latencies.append((time.perf_counter() - started) * 1000)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(plan,)) for plan in plans]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    attempts = booked[0] + taken[0]
    print(
        f"{label:<40} {attempts / seconds:6.0f} attempts/s ({booked[0]} booked, "
        f"{taken[0]} SlotTaken, {len(failed)} errors)   {percentiles(latencies)}"
    )
    if failed:
        print("   first error:", failed[0])


def double_bookings() -> int:
    """Overlapping held times of one provider, or of one resource, among active rows."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FROM scheduling_appointment a JOIN scheduling_appointment b
              ON a.provider_id = b.provider_id AND a.id < b.id
             AND a.starts_at < b.blocked_until AND b.starts_at < a.blocked_until
             WHERE a.status IN ('scheduled', 'arrived', 'in_room', 'completed') AND NOT a.overbooked
               AND b.status IN ('scheduled', 'arrived', 'in_room', 'completed') AND NOT b.overbooked
            """
        )
        appointments = cursor.fetchone()[0]
        cursor.execute(
            """
            SELECT count(*) FROM scheduling_resourcebooking a JOIN scheduling_resourcebooking b
              ON a.resource_id = b.resource_id AND a.id < b.id
             AND a.starts_at < b.blocked_until AND b.starts_at < a.blocked_until
             WHERE a.active AND b.active
            """
        )
        return appointments + cursor.fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--fill", type=float, default=0.6)
    parser.add_argument("--per-thread", type=int, default=25)
    parser.add_argument("--boards", type=int, default=200)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ambula-bench-scheduling-") as directory:
        data_dir = Path(directory)
        setup(data_dir)
        from django.db import connection

        from ambula.core.services import practice_create
        from ambula.scheduling.slots import next_available

        started = time.perf_counter()
        practice_create(actor=None, name="Benchmark Practice", mfa_required=False)
        clerk, patients, visit, providers, count = fill(args.fill)
        print(
            f"scheduling on {connection.vendor}: {count:,} appointments "
            f"({args.fill:.0%} of a year) filled in {time.perf_counter() - started:.0f} s"
        )
        search(visit, providers, args.searches)
        saturday = fill_busy_saturday(clerk, patients, providers)
        measure_board(data_dir, providers[0][1], saturday, args.boards)

        start = datetime.now(UTC) + timedelta(days=30)
        # Distinct: each thread books free slots of its own provider.
        plans = []
        for provider, location in providers[:8]:
            slots = next_available(
                appointment_type=visit, providers=[provider], start=start, limit=4 * args.per_thread
            )
            slots = apart(slots, visit)[: args.per_thread]
            plans.append([(slot.provider, location, slot.starts_at) for slot in slots])
        book_concurrently("book, 8 threads, distinct slots", clerk, patients, visit, plans)
        # Contended: every thread tries the same slots in the same order.
        provider, location = providers[8]
        slots = next_available(
            appointment_type=visit, providers=[provider], start=start, limit=4 * args.per_thread
        )
        slots = apart(slots, visit)[: args.per_thread]
        shared = [(slot.provider, location, slot.starts_at) for slot in slots]
        book_concurrently("book, 8 threads, the same slots", clerk, patients, visit, [shared] * 8)
        print(f"double bookings: {double_bookings()}")


if __name__ == "__main__":
    main()
