from django.core.management.base import BaseCommand

from ambula.core.demo import (
    DEMO_PASSWORD,
    DEMO_PATIENT_COUNT,
    DEMO_USERS,
    demo_load,
    demo_loaded,
)
from ambula.terminology.icd10 import icd10_loaded


class Command(BaseCommand):
    help = "Create the demo practice (synthetic data) if the database is empty."

    def add_arguments(self, parser):
        parser.add_argument(
            "--patients",
            type=int,
            default=DEMO_PATIENT_COUNT,
            help=f"how many synthetic patients (default {DEMO_PATIENT_COUNT})",
        )

    def handle(self, *args, patients: int, **options):
        if patients < 0:
            self.stderr.write("--patients cannot be negative.")
            return
        # A progress bar only for a person watching; logs and pipes get the summary alone.
        progress = self.progress if self.stdout.isatty() else None
        if demo_load(patients=patients, progress=progress):
            self.stdout.write(
                self.style.SUCCESS(f"Demo practice created, with {patients} synthetic patients.")
            )
            if not icd10_loaded():
                # `ambula run` loads the codes first; a bare `ambula demo` may come before that.
                self.stdout.write(
                    "Problem lists were left empty: the ICD-10-CM codes are not loaded yet "
                    "(ambula icd10 load)."
                )
        elif not demo_loaded():
            self.stdout.write("This database already holds a practice; the demo was not loaded.")
            return
        self.stdout.write(f"Demo sign-ins (password for all: {DEMO_PASSWORD}):")
        for demo_user in DEMO_USERS:
            self.stdout.write(f"  {demo_user.username:<10} {demo_user.role.label}")

    def progress(self, done: int, total: int) -> None:
        if done % max(1, total // 100) and done != total:
            return
        width = 30
        filled = width * done // total
        self.stdout.write(
            f"\r  patients [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
            ending="\n" if done == total else "",
        )
        self.stdout.flush()
