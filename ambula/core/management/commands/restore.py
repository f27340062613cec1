from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.migrations.loader import MigrationLoader

from ambula.audit.services import record
from ambula.core.backup import (
    PASSPHRASE_VARIABLE,
    BackupError,
    RestoreResult,
    backup_restore,
    human_size,
    key_source_from_options,
    plural,
)


class Command(BaseCommand):
    help = (
        "Restore a backup made by `ambula backup` into this installation, which must be empty "
        "unless --force is given. The whole archive is verified before anything is written."
    )
    # Restoring is how a broken or empty installation is brought back: no checks first.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("file", help="the backup file to restore")
        source = parser.add_mutually_exclusive_group()
        source.add_argument(
            "--passphrase-file",
            help=f"file holding the passphrase (or set {PASSPHRASE_VARIABLE})",
        )
        source.add_argument("--key-file", help="file holding the key the backup was made with")
        parser.add_argument(
            "--force",
            action="store_true",
            help="replace the database, documents and keys of a non-empty installation",
        )
        parser.add_argument(
            "--staging-dir",
            help="where to unpack and verify the archive first (default: beside the data dir)",
        )

    def handle(self, *args, file, passphrase_file, key_file, force, staging_dir, **options):
        try:
            key_source = key_source_from_options(passphrase_file=passphrase_file, key_file=key_file)
            result = backup_restore(
                archive=Path(file),
                key_source=key_source,
                data_dir=Path(settings.DATA_DIR),
                database=settings.DATABASES["default"],
                force=force,
                staging_parent=Path(staging_dir) if staging_dir else None,
                report=self.stdout.write,
            )
        except BackupError as error:
            raise CommandError(str(error)) from None
        # The restored trail (and its key) is in place now; the restore is its next link.
        record(
            actor=None,
            action="backup.restored",
            category="backup",
            changes={
                "file": str(Path(file).resolve()),
                "created_at": result.manifest["created_at"],
            },
        )
        self.report(result)
        if result.mismatches:
            raise CommandError(
                f"Row counts differ from the backup's in {plural(len(result.mismatches), 'table')} "
                "(listed above): do not use this installation until that is understood."
            )

    def report(self, result: RestoreResult) -> None:
        write = self.stdout.write
        manifest = result.manifest
        write(
            f"Restored a backup of {manifest['created_at']} (Ambula "
            f"{manifest['ambula_version']}, {manifest['database']['vendor']}, "
            f"{human_size(result.archive_size)}) in {result.seconds:.1f} s "
            f"(verifying took {result.verify_seconds:.1f} s)."
        )
        write(f"  documents  {plural(result.documents, 'file')}")
        secret_key = "and the secret_key file" if result.secret_key else "(no secret_key file)"
        write(f"  keys       {plural(result.key_files, 'file')} {secret_key}")
        tables, rows = len(result.expected), sum(result.expected.values())
        if result.mismatches:
            for table, expected, actual in result.mismatches:
                found = "missing" if actual is None else f"{actual:,} rows"
                self.stderr.write(f"  MISMATCH {table}: backup {expected:,} rows, restored {found}")
        else:
            write(
                self.style.SUCCESS(
                    f"  database   {plural(tables, 'table')}, {plural(rows, 'row')}: "
                    "every count matches the backup"
                )
            )
        self.report_migrations(manifest)

    def report_migrations(self, manifest: dict) -> None:
        applied = {tuple(migration) for migration in manifest["migrations"]}
        known = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
        if applied - known:
            self.stderr.write(
                f"  warning: the backup has {plural(len(applied - known), 'migration')} this "
                "Ambula does not know; it came from a newer Ambula: upgrade before serving."
            )
        elif known - applied:
            self.stdout.write(
                f"  not applied yet: {plural(len(known - applied), 'newer migration')}; run "
                "`ambula migrate` before serving."
            )
