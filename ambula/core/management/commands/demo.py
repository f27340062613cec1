from django.core.management.base import BaseCommand

from ambula.core.demo import DEMO_PASSWORD, DEMO_USERS, demo_load, demo_loaded


class Command(BaseCommand):
    help = "Create the demo practice (synthetic data) if the database is empty."

    def handle(self, *args, **options):
        if demo_load():
            self.stdout.write(self.style.SUCCESS("Demo practice created."))
        elif not demo_loaded():
            self.stdout.write("This database already holds a practice; the demo was not loaded.")
            return
        self.stdout.write(f"Demo sign-ins (password for all: {DEMO_PASSWORD}):")
        for demo_user in DEMO_USERS:
            self.stdout.write(f"  {demo_user.username:<10} {demo_user.role.label}")
