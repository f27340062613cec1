from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ambula.accounts.roles import STAFF_ROLES
from ambula.smart.models import ApiClient
from ambula.smart.services import api_client_register


class Command(BaseCommand):
    help = "Register an API client for the FHIR API; print its id and, once, its secret."

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="action", required=True)
        create = commands.add_parser("create", help="register a client")
        create.add_argument("--name", required=True)
        create.add_argument("--scopes", required=True, help='e.g. "patient/*.rs launch/patient"')
        create.add_argument("--kind", choices=ApiClient.Kind.values, default=ApiClient.Kind.APP)
        create.add_argument(
            "--redirect-uri", action="append", default=[], help="repeat for several (apps)"
        )
        create.add_argument("--jwks-file", help="the client's public keys, JWKS JSON (backend)")
        create.add_argument(
            "--role",
            choices=[role.value for role in STAFF_ROLES],
            help="the role its system tokens act with (backend, internal)",
        )

    def handle(self, *args, action, name, scopes, kind, redirect_uri, jwks_file, role, **options):
        jwks = None
        if jwks_file:
            try:
                jwks = Path(jwks_file).read_text()
            except OSError as error:
                raise CommandError(f"Cannot read {jwks_file}: {error.strerror}.") from None
        try:
            registration = api_client_register(
                actor=None,
                name=name,
                kind=kind,
                scopes=scopes,
                redirect_uris=" ".join(redirect_uri),
                jwks=jwks,
                role=role,
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        self.stdout.write(self.style.SUCCESS(f"Registered {name} ({kind})."))
        self.stdout.write(f"client_id: {registration.client_id}")
        if registration.client_secret:
            self.stdout.write(f"client_secret: {registration.client_secret}")
            self.stdout.write("The secret is shown only now; Ambula keeps only its hash.")
