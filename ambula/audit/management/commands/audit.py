from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils.timezone import now as timezone_now

from ambula.audit import chain
from ambula.audit.models import AuditChainHead
from ambula.audit.services import record
from ambula.audit.triggers import triggers_present


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain, or anchor its head outside the database."

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="subcommand", required=True)
        verify = commands.add_parser("verify", help="recompute the chain; exit 1 if broken")
        verify.add_argument("--anchors", type=Path, help="anchor file (default: in the data dir)")
        anchor = commands.add_parser("anchor", help="append the chain head to the anchor file")
        anchor.add_argument("--file", type=Path, help="anchor file (default: in the data dir)")

    def handle(self, *args, subcommand, **options):
        if subcommand == "verify":
            self.verify(options["anchors"] or chain.anchor_path())
        else:
            self.anchor(options["file"] or chain.anchor_path())

    def verify(self, anchor_file: Path) -> None:
        anchors = chain.read_anchors(anchor_file)
        verdict = chain.verify(anchors)
        if not verdict.intact:
            raise CommandError(
                f"BROKEN at event {verdict.finding.sequence}: {verdict.finding}. "
                f"{verdict.count} events verified before it.",
                returncode=1,
            )
        if not triggers_present(connection):
            raise CommandError(
                "The chain verifies, but the database no longer refuses changes to audit "
                "events: its triggers were removed. Run `ambula migrate audit 0001` and "
                "`ambula migrate` to restore them, and find out who removed them.",
                returncode=1,
            )
        self.stdout.write(f"OK: {verdict.count} events, head {verdict.head_mac}")
        if not anchors:
            # Without an anchor kept elsewhere, deleting the newest events and rewinding the
            # chain head together would go unnoticed.
            self.stdout.write(
                f"No anchors in {anchor_file}: run `ambula audit anchor` daily and keep its "
                "line off this machine."
            )

    def anchor(self, anchor_file: Path) -> None:
        with transaction.atomic():
            record(actor=None, action="audit.anchored", category="audit")
            head = AuditChainHead.objects.get(pk=1)
        line = f"{timezone_now().isoformat(timespec='seconds')} {head.sequence} {head.mac}"
        anchor_file.parent.mkdir(parents=True, exist_ok=True)
        with anchor_file.open("a") as anchors:
            anchors.write(line + "\n")
        self.stdout.write(line)
        self.stdout.write(f"Appended to {anchor_file}. Keep a copy off this machine.")
