"""The demo practice: synthetic data for trying Ambula. Never real patients or people."""

from dataclasses import dataclass

from django.db import transaction

from ambula.accounts.models import User
from ambula.accounts.roles import Role
from ambula.accounts.services import user_create
from ambula.core.models import Practice
from ambula.core.services import practice_create
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


def demo_loaded() -> bool:
    return Practice.objects.filter(is_demo=True).exists()


@transaction.atomic
def demo_load() -> bool:
    """Create the demo practice on an empty database. Return False if a practice exists."""
    if Practice.objects.exists() or User.objects.exists():
        return False
    # Two-step sign-in is off so anyone can try the demo; the sign-in page says so.
    practice_create(actor=None, name=DEMO_PRACTICE_NAME, is_demo=True, mfa_required=False)
    for location in DEMO_LOCATIONS:
        location_create(actor=None, **location)
    for demo_user in DEMO_USERS:
        user_create(
            actor=None,
            username=demo_user.username,
            email=f"{demo_user.username}@demo.ambula.invalid",
            full_name=demo_user.full_name,
            roles=[demo_user.role],
            password=DEMO_PASSWORD,
        )
    return True
