from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ambula.accounts.emails import set_password_link
from ambula.accounts.roles import STAFF_ROLES, Role
from ambula.accounts.services import user_create


class Command(BaseCommand):
    help = "Create a staff user (e.g. the first administrator) and print a set-password link."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--role",
            action="append",
            choices=[role.value for role in STAFF_ROLES],
            help="a role to grant; repeat for several",
        )
        parser.add_argument("--email", help="defaults to USERNAME@localhost")
        parser.add_argument("--name", dest="full_name", help="full name; defaults to USERNAME")

    def handle(self, *args, username, role, email, full_name, **options):
        # Checked here rather than with required=True, which call_command cannot satisfy
        # with a list of roles.
        if not role:
            raise CommandError("Give at least one --role.")
        staff_roles = [staff_role.value for staff_role in STAFF_ROLES]
        unknown = sorted(set(role) - set(staff_roles))
        if unknown:
            raise CommandError(
                f"Unknown role {', '.join(unknown)}; choose from {', '.join(staff_roles)}."
            )
        try:
            user = user_create(
                actor=None,
                username=username,
                email=email or f"{username}@localhost",
                full_name=full_name or username,
                roles=[Role(value) for value in role],
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        link = set_password_link(user=user)
        self.stdout.write(self.style.SUCCESS(f"Created {user.username} ({', '.join(role)})."))
        self.stdout.write("Open this link to choose a password (works once, expires in 72 hours):")
        self.stdout.write(link)
