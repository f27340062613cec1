from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ambula.core.backup import plural
from ambula.scheduling.downtime import MAX_DAYS, MIN_DAYS
from ambula.scheduling.downtime_kit import (
    PASSPHRASE_VARIABLE,
    downtime_kit_export,
    passphrase_from_options,
    passphrase_generate,
)


class Command(BaseCommand):
    help = (
        "Write an encrypted, self-contained HTML file with the coming days' schedule and each "
        "booked patient's summary, to work from while Ambula is down. It opens in a browser "
        "with its passphrase."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the HTML file to write (e.g. downtime-kit.html)")
        parser.add_argument(
            "--days",
            type=int,
            default=2,
            help=f"days to cover from today, {MIN_DAYS} to {MAX_DAYS} (default 2)",
        )
        parser.add_argument("--location", default="", help="one location by name (default: all)")
        parser.add_argument(
            "--passphrase-file",
            help=f"file whose first line is the passphrase (or set {PASSPHRASE_VARIABLE}); "
            "with neither, a new passphrase is made and shown once",
        )
        parser.add_argument("--force", action="store_true", help="replace an existing file")

    def handle(self, *args, file, days, location, passphrase_file, force, **options):
        try:
            passphrase = passphrase_from_options(passphrase_file=passphrase_file)
            generated = passphrase is None
            if generated:
                passphrase = self._new_passphrase()
            kit = downtime_kit_export(
                actor=None,
                path=Path(file),
                days=days,
                passphrase=passphrase,
                location_name=location,
                force=force,
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Downtime kit written to {kit.path} (readable by you only): "
                f"{kit.first_day:%a %d %b} to {kit.last_day:%a %d %b %Y}, "
                f"{plural(kit.appointment_count, 'appointment')}, "
                f"{plural(kit.patient_count, 'patient')}."
            )
        )
        if generated:
            self.stdout.write("")
            self.stdout.write("Its passphrase, shown this once:")
            self.stdout.write("")
            self.stdout.write(f"    {passphrase}")
            self.stdout.write("")
            self.stdout.write(
                "Keep it apart from the file (on paper in the practice's safe, or in a password "
                "manager), never on the same disk, USB stick or email."
            )
        self.stdout.write(
            "The file holds protected health information: delete it, and shred its printouts, "
            "once it is no longer needed."
        )

    def _new_passphrase(self) -> str:
        # Shown only on a terminal: under cron it would land in a log or an email, next to
        # the file it unlocks, and nobody would see it to keep it.
        if not self.stdout.isatty():
            raise CommandError(
                "No passphrase given, and no terminal to show a new one on: use "
                f"--passphrase-file PATH or {PASSPHRASE_VARIABLE} (a scheduled kit needs a "
                "passphrase the practice already keeps)."
            )
        return passphrase_generate()
