"""`ambula icd10`: load the ICD-10-CM code set into the code table.

ambula icd10 load [--if-empty]   the release bundled with simple_icd_10_cm (April 2026)
ambula icd10 import FILE         CMS's icd10cm_order_YYYY.txt; any bad line loads nothing
"""

import time
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ambula.terminology.icd10 import icd10_import_file, icd10_load_package, icd10_loaded


class Command(BaseCommand):
    help = "Load the ICD-10-CM code set (from the bundled package, or from CMS's order file)."

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="subcommand", required=True)
        load = commands.add_parser("load", help="load the release bundled with the package")
        load.add_argument(
            "--if-empty", action="store_true", help="only if no code is loaded yet (first run)"
        )
        source = commands.add_parser("import", help="load CMS's icd10cm_order_YYYY.txt")
        source.add_argument("file", type=Path)

    def handle(self, *args, subcommand, **options):
        started = time.perf_counter()
        if subcommand == "load":
            if options["if_empty"] and icd10_loaded():
                return
            if options["if_empty"]:
                self.stdout.write("Loading the ICD-10-CM code set (first run only)…")
            release = icd10_load_package()
        else:
            path = options["file"]
            if not path.is_file():
                raise CommandError(f"no such file: {path}", returncode=2)
            try:
                release = icd10_import_file(path=path)
            except ValidationError as error:
                lines = "\n  ".join(error.messages)
                raise CommandError(
                    f"{path} was not loaded (nothing changed):\n  {lines}", returncode=1
                ) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"ICD-10-CM {release.release}: {release.code_count:,} codes loaded "
                f"in {time.perf_counter() - started:.1f} s."
            )
        )
