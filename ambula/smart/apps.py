from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SmartConfig(AppConfig):
    name = "ambula.smart"
    label = "smart"
    verbose_name = _("SMART on FHIR authorization")
