"""The `ambula` command: run, serve, worker, migrate, demo, check, and Django's manage."""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
from collections.abc import Sequence

from ambula.accounts.roles import STAFF_ROLES

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def default_workers() -> int:
    return max(2, 2 * (os.cpu_count() or 1))


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ambula.settings")
    import django

    django.setup()


def call(command: str, *args: str, **options) -> None:
    from django.core.management import call_command

    call_command(command, *args, **options)


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=os.environ.get("AMBULA_HOST", DEFAULT_HOST))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("AMBULA_PORT", DEFAULT_PORT))
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("AMBULA_WORKERS", default_workers())),
        help="web worker processes (default: twice the CPU count)",
    )
    parser.add_argument("--certfile", help="TLS certificate (PEM); serve HTTPS directly")
    parser.add_argument("--keyfile", help="TLS private key (PEM)")


def check_tls_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if bool(args.certfile) != bool(args.keyfile):
        parser.error("--certfile and --keyfile go together")
    for path in filter(None, [args.certfile, args.keyfile]):
        if not os.path.isfile(path):
            parser.error(f"no such file: {path}")
    if args.certfile:
        # Django must know before it starts: secure cookies, HTTPS redirect, HSTS.
        os.environ["AMBULA_HTTPS"] = "true"


def _freeze_start_up_objects(worker) -> None:
    """Keep what each worker loaded at start (Django and Ambula: several hundred thousand
    objects that live as long as it does) out of the garbage collector's full passes, which
    would otherwise walk them all again in the middle of a request, every few requests."""
    gc.freeze()


def serve(args: argparse.Namespace) -> None:
    """Serve the web application with gunicorn."""
    from gunicorn.app.base import BaseApplication

    setup_django()
    from django.conf import settings

    call("collectstatic", interactive=False, verbosity=0)

    class AmbulaServer(BaseApplication):
        def load_config(self) -> None:
            options = {
                "bind": f"{args.host}:{args.port}",
                "workers": args.workers,
                "worker_class": "gthread",
                "threads": 4,
                "timeout": 60,
                "graceful_timeout": 10,
                "keepalive": 5,
                "certfile": args.certfile,
                "keyfile": args.keyfile,
                # Requests are logged by Ambula itself, without query strings (which can be PHI).
                "accesslog": None,
                "logconfig_dict": settings.LOGGING,
                "proc_name": "ambula",
                "control_socket_disable": True,
                "post_worker_init": _freeze_start_up_objects,
            }
            for key, value in options.items():
                if value is not None:
                    self.cfg.set(key, value)

        def load(self):
            from ambula.wsgi import application

            return application

    AmbulaServer().run()


def run(args: argparse.Namespace) -> None:
    """Everything one machine needs: migrate, the demo if asked, a worker and the server."""
    setup_django()
    call("migrate", interactive=False, verbosity=0)
    call("icd10", "load", "--if-empty")  # the problem list needs its codes from day one
    if args.demo:
        call("demo")
    scheme = "https" if args.certfile else "http"
    shown_host = "127.0.0.1" if args.host in {"0.0.0.0", "::"} else args.host  # noqa: S104
    print(f"\nAmbula is running at {scheme}://{shown_host}:{args.port}/  (Ctrl-C stops it)\n")
    sys.stdout.flush()
    worker = subprocess.Popen([sys.executable, "-m", "ambula", "worker"])
    try:
        serve(args)
    finally:
        # Ctrl-C reaches the worker too (same process group); this covers other exits.
        if worker.poll() is None:
            worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()


def worker(args: argparse.Namespace) -> None:
    """Run background jobs (Huey: SQLite queue by default, Redis when configured)."""
    setup_django()
    call("run_huey")


def migrate(args: argparse.Namespace) -> None:
    setup_django()
    call("migrate", interactive=False)


def demo(args: argparse.Namespace) -> None:
    setup_django()
    call("migrate", interactive=False, verbosity=0)
    call("demo", *([f"--patients={args.patients}"] if args.patients is not None else []))


def check(args: argparse.Namespace) -> None:
    """Fail unless this installation is fit for production."""
    from django.core.management.base import SystemCheckError

    setup_django()
    try:
        call("check", deploy=True, fail_level="WARNING", databases=["default"])
    except SystemCheckError as error:
        print(error, file=sys.stderr)
        sys.exit(1)
    print("Ambula is ready for production.")


def createuser(args: argparse.Namespace) -> None:
    """Create a staff user and print a one-time link to set their password."""
    setup_django()
    options = {"role": args.role, "email": args.email, "full_name": args.name}
    from django.core.management.base import CommandError

    try:
        call("createuser", args.username, **options)
    except CommandError as error:
        print(f"ambula: {error}", file=sys.stderr)
        sys.exit(2)


def audit(args: argparse.Namespace) -> None:
    """Verify the audit trail, or anchor its head."""
    from django.core.management.base import CommandError

    setup_django()
    flag, path = (
        ("--anchors", args.anchors) if args.subcommand == "verify" else ("--file", args.file)
    )
    try:
        call("audit", args.subcommand, *([flag, path] if path else []))
    except CommandError as error:
        print(error, file=sys.stderr)
        sys.exit(error.returncode)


def call_or_exit(command: str, *args: str, **options) -> None:
    """Run a management command; a CommandError becomes a message and its exit status."""
    from django.core.management.base import CommandError

    try:
        call(command, *args, **options)
    except CommandError as error:
        print(f"ambula: {error}", file=sys.stderr)
        sys.exit(error.returncode)


def backup(args: argparse.Namespace) -> None:
    """Write one encrypted backup file: database, documents, keys, secret key."""
    setup_django()
    call_or_exit(
        "backup",
        *([args.file] if args.file else []),
        passphrase_file=args.passphrase_file,
        key_file=args.key_file,
        new_key_file=args.new_key_file,
    )


def restore(args: argparse.Namespace) -> None:
    """Verify a backup, then restore it into this (empty) installation."""
    setup_django()
    call_or_exit(
        "restore",
        args.file,
        passphrase_file=args.passphrase_file,
        key_file=args.key_file,
        force=args.force,
        staging_dir=args.staging_dir,
    )


def add_backup_key_arguments(parser: argparse.ArgumentParser, *, new_key: bool) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--passphrase-file", help="file holding the passphrase (or AMBULA_BACKUP_PASSPHRASE)"
    )
    source.add_argument("--key-file", help="file holding a key made by --new-key-file")
    if new_key:
        source.add_argument(
            "--new-key-file", help="write a new random key to this file (0600) and stop"
        )


def keys(args: argparse.Namespace) -> None:
    """Show, rotate and retire the encryption keys."""
    from django.core.management.base import CommandError

    setup_django()
    try:
        call("keys", *args.arguments)
    except CommandError as error:
        print(f"ambula: {error}", file=sys.stderr)
        sys.exit(2)


def apiclient(args: argparse.Namespace) -> None:
    """Register an API client for the FHIR API."""
    setup_django()
    call_or_exit("apiclient", *args.arguments)


def icd10(args: argparse.Namespace) -> None:
    """Load the ICD-10-CM code set: the bundled release, or CMS's order file."""
    setup_django()
    call_or_exit("icd10", args.subcommand, *([args.file] if args.subcommand == "import" else []))


def downtime_kit(args: argparse.Namespace) -> None:
    """Write the encrypted downtime kit: the coming days' schedule and patient summaries."""
    setup_django()
    call_or_exit(
        "downtime_kit",
        args.file,
        days=args.days,
        location=args.location,
        passphrase_file=args.passphrase_file,
        force=args.force,
    )


def manage(args: argparse.Namespace) -> None:
    from django.core.management import execute_from_command_line

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ambula.settings")
    execute_from_command_line(["ambula manage", *args.arguments])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ambula", description="Ambula, patient management for outpatient practices."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run_parser = commands.add_parser("run", help="migrate, then serve with a worker beside it")
    add_server_arguments(run_parser)
    run_parser.add_argument(
        "--demo", action="store_true", help="load the demo practice if the database is empty"
    )
    run_parser.set_defaults(handler=run)

    serve_parser = commands.add_parser("serve", help="serve the web application (gunicorn)")
    add_server_arguments(serve_parser)
    serve_parser.set_defaults(handler=serve)

    commands.add_parser("worker", help="run background jobs").set_defaults(handler=worker)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(handler=migrate)
    demo_parser = commands.add_parser("demo", help="create the demo practice (synthetic data)")
    demo_parser.add_argument(
        "--patients", type=int, help="how many synthetic patients (default 200)"
    )
    demo_parser.set_defaults(handler=demo)
    commands.add_parser("check", help="check the deployment for production").set_defaults(
        handler=check
    )
    createuser_parser = commands.add_parser(
        "createuser", help="create a staff user and print a set-password link"
    )
    createuser_parser.add_argument("username")
    createuser_parser.add_argument(
        "--role",
        action="append",
        required=True,
        choices=[role.value for role in STAFF_ROLES],
        help="role to grant (repeat for several)",
    )
    createuser_parser.add_argument("--email")
    createuser_parser.add_argument("--name", help="full name")
    createuser_parser.set_defaults(handler=createuser)

    keys_parser = commands.add_parser(
        "keys",
        help="show, rotate and retire the encryption keys",
        description="ambula keys status | rotate [--resume] | reencrypt | retire KEY_ID "
        "(rotate and reencrypt take --batch-size N and --max-batches N)",
    )
    keys_parser.add_argument("arguments", nargs=argparse.REMAINDER, metavar="ACTION")
    keys_parser.set_defaults(handler=keys)

    audit_parser = commands.add_parser("audit", help="verify or anchor the audit trail")
    audit_commands = audit_parser.add_subparsers(dest="subcommand", required=True)
    verify_parser = audit_commands.add_parser("verify", help="recompute the hash chain")
    verify_parser.add_argument("--anchors", help="anchor file (default: in the data dir)")
    anchor_parser = audit_commands.add_parser("anchor", help="record the chain head in a file")
    anchor_parser.add_argument("--file", help="anchor file (default: in the data dir)")
    audit_parser.set_defaults(handler=audit)

    backup_parser = commands.add_parser(
        "backup", help="write an encrypted backup of the database, documents and keys"
    )
    backup_parser.add_argument("file", nargs="?", help="the backup file to write")
    add_backup_key_arguments(backup_parser, new_key=True)
    backup_parser.set_defaults(handler=backup)
    restore_parser = commands.add_parser(
        "restore", help="verify a backup and restore it into an empty installation"
    )
    restore_parser.add_argument("file", help="the backup file to restore")
    add_backup_key_arguments(restore_parser, new_key=False)
    restore_parser.add_argument(
        "--force", action="store_true", help="replace what a non-empty installation holds"
    )
    restore_parser.add_argument(
        "--staging-dir", help="where to unpack and verify first (default: beside the data dir)"
    )
    restore_parser.set_defaults(handler=restore)

    apiclient_parser = commands.add_parser(
        "apiclient",
        help="register an API client for the FHIR API",
        description='ambula apiclient create --name NAME --scopes "..." [--kind KIND] '
        "[--redirect-uri URI] [--jwks-file FILE] [--role ROLE]",
    )
    apiclient_parser.add_argument("arguments", nargs=argparse.REMAINDER, metavar="ACTION")
    apiclient_parser.set_defaults(handler=apiclient)

    icd10_parser = commands.add_parser("icd10", help="load the ICD-10-CM code set")
    icd10_commands = icd10_parser.add_subparsers(dest="subcommand", required=True)
    icd10_commands.add_parser("load", help="load the release bundled with Ambula (April 2026)")
    icd10_import_parser = icd10_commands.add_parser(
        "import", help="load CMS's icd10cm_order_YYYY.txt (a bad line loads nothing)"
    )
    icd10_import_parser.add_argument("file", help="the order file")
    icd10_parser.set_defaults(handler=icd10)

    downtime_parser = commands.add_parser(
        "downtime-kit",
        help="write an encrypted HTML file of the coming days' schedule and patient summaries",
    )
    downtime_parser.add_argument("file", help="the HTML file to write")
    downtime_parser.add_argument(
        "--days", type=int, default=2, help="days to cover from today, 1 to 14 (default 2)"
    )
    downtime_parser.add_argument("--location", default="", help="one location by name")
    downtime_parser.add_argument(
        "--passphrase-file",
        help="file holding the passphrase (or AMBULA_DOWNTIME_PASSPHRASE); else one is made",
    )
    downtime_parser.add_argument("--force", action="store_true", help="replace an existing file")
    downtime_parser.set_defaults(handler=downtime_kit)

    manage_parser = commands.add_parser("manage", help="run a Django management command")
    manage_parser.add_argument("arguments", nargs=argparse.REMAINDER)
    manage_parser.set_defaults(handler=manage)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in {"run", "serve"}:
        check_tls_arguments(parser, args)
    from ambula.config import ConfigurationError

    try:
        args.handler(args)
    except ConfigurationError as error:
        print(f"ambula: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
