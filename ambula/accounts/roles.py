"""The roles a user can hold. What each role may do lives in the permission policy."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    ADMIN = "admin", _("Administrator")
    PHYSICIAN = "physician", _("Physician")
    NURSE = "nurse", _("Nurse")
    FRONT_DESK = "front_desk", _("Front desk")
    BILLER = "biller", _("Biller")
    PRIVACY_OFFICER = "privacy_officer", _("Privacy officer")
    PATIENT = "patient", _("Patient")


STAFF_ROLES = [role for role in Role if role is not Role.PATIENT]
