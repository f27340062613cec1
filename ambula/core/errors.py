"""Domain errors. Services raise these; ApplicationErrorMiddleware turns them into responses."""

from django.utils.translation import gettext_lazy as _


class ApplicationError(Exception):
    status = 400
    default_message = _("The request could not be completed.")

    def __init__(self, message: str | None = None, *, code: str = "error") -> None:
        self.message = message or str(self.default_message)
        self.code = code
        super().__init__(self.message)


class NotFound(ApplicationError):
    """Missing or not visible to the user: the two look the same so ids cannot be probed."""

    status = 404
    default_message = _("Not found.")


class AccessDenied(ApplicationError):
    status = 403
    default_message = _("You do not have access to this.")


class Conflict(ApplicationError):
    status = 409
    default_message = _("This conflicts with a change someone else made.")
