import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ambula.audit.services import record
from ambula.core.backup import (
    PASSPHRASE_VARIABLE,
    BackupError,
    BackupResult,
    backup_create,
    human_size,
    key_file_create,
    key_source_from_options,
    plural,
)

# Secrets an installation may take from the environment instead of the data directory.
ENVIRONMENT_SECRETS = ("AMBULA_SECRET_KEY", "AMBULA_ENCRYPTION_KEYS", "AMBULA_AUDIT_KEY")


class Command(BaseCommand):
    help = (
        "Write one encrypted, compressed backup file holding the database, the documents, "
        "the keys and the secret key."
    )
    # A backup must run on any installation, including one whose checks would fail.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", help="the backup file to write")
        source = parser.add_mutually_exclusive_group()
        source.add_argument(
            "--passphrase-file",
            help=f"file holding the passphrase (or set {PASSPHRASE_VARIABLE})",
        )
        source.add_argument("--key-file", help="file holding a key made by --new-key-file")
        source.add_argument(
            "--new-key-file", help="write a new random key to this file (0600) and stop"
        )

    def handle(self, *args, file, passphrase_file, key_file, new_key_file, **options):
        try:
            if new_key_file:
                if file or passphrase_file or key_file:
                    raise CommandError("--new-key-file only writes a key; give it alone.")
                key_file_create(Path(new_key_file))
                self.stdout.write(
                    self.style.SUCCESS(f"Wrote a new backup key to {new_key_file} (0600).")
                )
                self.stdout.write(
                    "Keep a copy away from this machine: without it, backups made with it "
                    "cannot be restored."
                )
                return
            if not file:
                raise CommandError(
                    "Name the file to write, e.g. "
                    "ambula backup /backups/ambula-$(date +%F).ambula-backup"
                )
            key_source = key_source_from_options(passphrase_file=passphrase_file, key_file=key_file)
            result = backup_create(
                output=Path(file),
                key_source=key_source,
                data_dir=Path(settings.DATA_DIR),
                database=settings.DATABASES["default"],
                report=self.stdout.write,
            )
        except BackupError as error:
            raise CommandError(str(error)) from None
        # Recorded after the snapshot, in the live trail: the backup does not contain it.
        record(
            actor=None,
            action="backup.created",
            category="backup",
            changes={"file": str(Path(file).resolve())},
        )
        self.report(result)
        if result.database_check != "ok":
            raise CommandError(
                "The backup was written, but the database failed SQLite's quick check "
                f"({result.database_check}): investigate before relying on this database."
            )

    def report(self, result: BackupResult) -> None:
        write = self.stdout.write
        write(self.style.SUCCESS(f"Backup written to {result.path} in {result.seconds:.1f} s."))
        write(f"  archive    {human_size(result.size)}, encrypted with a {result.key_description}")
        write(
            f"  database   {result.vendor}, {plural(len(result.row_counts), 'table')}, "
            f"{plural(result.rows, 'row')}, {human_size(result.database_size)} uncompressed"
        )
        write(
            f"  documents  {plural(result.documents, 'file')}, {human_size(result.documents_size)}"
        )
        secret_key = "and the secret_key file" if result.secret_key else "(no secret_key file)"
        write(f"  keys       {plural(result.key_files, 'file')} {secret_key}")
        from_environment = [name for name in ENVIRONMENT_SECRETS if os.environ.get(name)]
        if from_environment:
            write(
                f"  note: set in the environment, so not in the backup: "
                f"{', '.join(from_environment)}. Keep them safe separately."
            )
        for path in result.skipped:
            self.stderr.write(f"  skipped (not a regular file): {path}")
