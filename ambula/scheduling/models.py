from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from ambula.core.models import BaseModel


class Location(BaseModel):
    """A site where the practice sees patients. Holds no PHI."""

    name = models.CharField(_("name"), max_length=120)
    address_line = models.CharField(_("street address"), max_length=200)
    city = models.CharField(_("city"), max_length=100)
    state = models.CharField(_("state"), max_length=2)
    postal_code = models.CharField(_("ZIP code"), max_length=10)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("location")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                name="scheduling_location_name_unique",
                violation_error_code="location_exists",
                violation_error_message=_("A location with this name already exists."),
            ),
        ]

    def __str__(self) -> str:
        return self.name
