"""Fifty clerks book the same slot at once: exactly one gets it, the rest get SlotTaken."""

import json
import subprocess
import sys
import threading
from datetime import datetime, time, timedelta

import pytest
from django.db import connection
from django.utils.timezone import localdate

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.patients.tests.factories import registered_patient
from ambula.scheduling.booking import SlotTaken, appointment_book
from ambula.scheduling.models import ACTIVE_STATUSES, Appointment
from ambula.scheduling.tests.factories import (
    make_block,
    make_location,
    make_provider,
    make_room,
    make_type,
)
from ambula.testing.processes import ambula_env, run_ambula

CLERKS = 50


def scene() -> dict:
    """A provider with an open Monday morning, a room, a clerk and a patient."""
    clerk = UserFactory(roles=[Role.FRONT_DESK])
    clinic = make_location()
    make_room(clinic)
    make_room(clinic)
    provider = make_provider()
    make_block(provider, clinic, weekdays=[0], starts_at=time(9), ends_at=time(12))
    today = localdate()
    monday = today + timedelta(days=14 - today.weekday())
    return {
        "actor": clerk,
        "patient": registered_patient(actor=clerk),
        "provider": provider,
        "location": clinic,
        "appointment_type": make_type(duration=30, buffer=5),
        "starts_at": datetime.combine(monday, time(10), tzinfo=today_zone()),
    }


def today_zone():
    from django.utils import timezone

    return timezone.get_current_timezone()


def book_at_once(arguments: dict, clerks: int = CLERKS) -> tuple[list, list, list]:
    """Book the same slot from `clerks` threads, each with its own connection."""
    start = threading.Barrier(clerks)
    booked, taken, other = [], [], []
    lock = threading.Lock()

    def book():
        try:
            start.wait()
            appointment = appointment_book(**arguments)
            with lock:
                booked.append(appointment.pk)
        except SlotTaken as error:
            with lock:
                taken.append(error.message)
        except Exception as error:  # reported by the caller's assertion, not lost in a thread
            with lock:
                other.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=book) for _ in range(clerks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return booked, taken, other


in_memory_sqlite = pytest.mark.skipif(
    connection.vendor == "sqlite" and not connection.settings_dict.get("TEST", {}).get("NAME"),
    reason="SQLite's in-memory test database cannot queue concurrent writers; "
    "the SQLite file variant of this test runs instead",
)


@in_memory_sqlite
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_bookings_of_one_slot_book_it_once():
    arguments = scene()
    booked, taken, other = book_at_once(arguments)
    assert other == []
    assert len(booked) == 1
    assert len(taken) == CLERKS - 1
    assert Appointment.objects.filter(status__in=ACTIVE_STATUSES).count() == 1


SQLITE_RACE_SCRIPT = """
import json
import django
django.setup()
from ambula.scheduling.tests import test_concurrency as t
from ambula.scheduling.models import Appointment, ResourceBooking

booked, taken, other = t.book_at_once(t.scene())
print(json.dumps({
    "booked": len(booked), "taken": len(taken), "other": other,
    "appointments": Appointment.objects.count(),
    "rooms_held": ResourceBooking.objects.filter(active=True).count(),
}))
"""


def test_fifty_concurrent_bookings_on_a_sqlite_file_book_it_once(tmp_path):
    data_dir = tmp_path / "data"
    migrated = run_ambula(data_dir, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    result = subprocess.run(
        [sys.executable, "-c", SQLITE_RACE_SCRIPT],
        env=ambula_env(data_dir, DJANGO_SETTINGS_MODULE="ambula.settings"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {
        "booked": 1,
        "taken": CLERKS - 1,
        "other": [],
        "appointments": 1,
        "rooms_held": 1,
    }
