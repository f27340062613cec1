"""The demo practice: synthetic data for trying Ambula. Never real patients or people."""

import random
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import transaction
from django.utils.timezone import localdate

from ambula.accounts.models import User
from ambula.accounts.roles import Role
from ambula.accounts.services import user_create
from ambula.core.demo_records import demo_payers, demo_record, demo_restricted
from ambula.core.demo_schedule import demo_schedule
from ambula.core.models import Practice
from ambula.core.services import practice_create
from ambula.patients.services import patient_register
from ambula.scheduling.services import location_create

DEMO_PASSWORD = "ambula-demo-practice"  # noqa: S105  (published on purpose, demo only)
DEMO_PRACTICE_NAME = "Riverside Family Medicine"


@dataclass(frozen=True)
class DemoUser:
    username: str
    full_name: str
    role: Role


DEMO_USERS = [
    DemoUser("admin", "Alex Morgan", Role.ADMIN),
    DemoUser("physician", "Dr. Priya Raman", Role.PHYSICIAN),
    DemoUser("nurse", "Sam Okafor", Role.NURSE),
    DemoUser("frontdesk", "Jordan Lee", Role.FRONT_DESK),
    DemoUser("biller", "Casey Brooks", Role.BILLER),
    DemoUser("privacy", "Robin Park", Role.PRIVACY_OFFICER),
]

DEMO_LOCATIONS = [
    {
        "name": "Riverside Main Clinic",
        "address_line": "120 River Road",
        "city": "Springfield",
        "state": "IL",
        "postal_code": "62701",
        "phone": "(217) 555-0140",
    },
    {
        "name": "Northgate Satellite Office",
        "address_line": "4800 North Gate Avenue, Suite 2",
        "city": "Springfield",
        "state": "IL",
        "postal_code": "62702",
        "phone": "(217) 555-0185",
    },
]


DEMO_GIVEN_NAMES = [
    ("Maria", "F"),
    ("James", "M"),
    ("Aisha", "F"),
    ("Wei", "M"),
    ("Sofia", "F"),
    ("Daniel", "M"),
    ("Priya", "F"),
    ("Mateo", "M"),
    ("Grace", "F"),
    ("Kwame", "M"),
    ("Elena", "F"),
    ("Omar", "M"),
    ("Hannah", "F"),
    ("Luca", "M"),
    ("Mei", "F"),
    ("Tomás", "M"),
    ("Zainab", "F"),
    ("Noah", "M"),
    ("Ingrid", "F"),
    ("Rafael", "M"),
]
DEMO_FAMILY_NAMES = [
    "Alvarez",
    "Bennett",
    "Chen",
    "Okafor",
    "Novak",
    "Haddad",
    "Kim",
    "Larsen",
    "Moreau",
    "Nakamura",
    "O'Brien",
    "Patel",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Usman",
    "Vargas",
    "Walsh",
    "Yilmaz",
]
DEMO_PATIENT_COUNT = 200


def demo_patients(count: int) -> list[dict]:
    """Synthetic patients: made-up names, dates and 555 phone numbers (reserved for fiction)."""
    chooser = random.Random(20261128)  # noqa: S311  (the same demo every time; no secrets)
    patients = []
    for number in range(count):
        given, sex = DEMO_GIVEN_NAMES[number % len(DEMO_GIVEN_NAMES)]
        family = DEMO_FAMILY_NAMES[(number // len(DEMO_GIVEN_NAMES)) % len(DEMO_FAMILY_NAMES)]
        patients.append(
            {
                "given_name": given,
                "family_name": family,
                "date_of_birth": date(1940, 1, 1) + timedelta(days=chooser.randrange(30_000)),
                "administrative_sex": sex,
                "mobile_phone": f"(217) 555-{chooser.randrange(100, 200):04d}",
                "sms_consent": chooser.random() < 0.7,
                "city": "Springfield",
                "state": "IL",
                "postal_code": "62701",
            }
        )
    return patients


def demo_loaded() -> bool:
    return Practice.objects.filter(is_demo=True).exists()


@transaction.atomic
def demo_load(*, patients: int = DEMO_PATIENT_COUNT, progress=None) -> bool:
    """Create the demo practice on an empty database. Return False if a practice exists."""
    if Practice.objects.exists() or User.objects.exists():
        return False
    # Two-step sign-in is off so anyone can try the demo; the sign-in page says so.
    practice_create(actor=None, name=DEMO_PRACTICE_NAME, is_demo=True, mfa_required=False)
    locations = [location_create(actor=None, **location) for location in DEMO_LOCATIONS]
    users = {
        demo_user.role: user_create(
            actor=None,
            username=demo_user.username,
            email=f"{demo_user.username}@demo.ambula.invalid",
            full_name=demo_user.full_name,
            roles=[demo_user.role],
            password=DEMO_PASSWORD,
        )
        for demo_user in DEMO_USERS
    }
    payers = demo_payers(users[Role.ADMIN])
    chooser = random.Random(20261129)  # noqa: S311  (the same demo every time; no secrets)
    today = localdate()
    registered = []
    for number, details in enumerate(demo_patients(patients), start=1):
        patient = patient_register(actor=users[Role.FRONT_DESK], allow_duplicate=True, **details)
        demo_record(chooser=chooser, patient=patient, payers=payers, users=users, today=today)
        registered.append(patient)
        if progress is not None:
            progress(number, patients)
    demo_restricted(registered, users[Role.PHYSICIAN])
    demo_schedule(users=users, locations=locations, patients=registered, today=today)
    return True
