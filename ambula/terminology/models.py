"""Reference code sets (ICD-10-CM). Public reference data: no PHI."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Icd10Code(models.Model):
    """One ICD-10-CM code (a category or a billable leaf) of the loaded release."""

    code = models.CharField(_("code"), max_length=8, primary_key=True, help_text=_("e.g. E11.9"))
    description = models.CharField(_("description"), max_length=300)
    billable = models.BooleanField(
        _("billable"), help_text=_("Valid on a claim: the most specific code, with no children.")
    )

    class Meta:
        verbose_name = _("ICD-10-CM code")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.description}"


class Icd10Word(models.Model):
    """One word of a code's description, folded for search: an index for word-prefix lookups."""

    word = models.CharField(max_length=40)
    code = models.ForeignKey(Icd10Code, on_delete=models.CASCADE, related_name="+")

    class Meta:
        indexes = [models.Index(fields=["word", "code"])]

    def __str__(self) -> str:
        return self.word


class CodeSetRelease(models.Model):
    """Which release of a code set is loaded, from where, and when."""

    code_set = models.CharField(max_length=20, primary_key=True)
    release = models.CharField(max_length=60)
    source = models.CharField(max_length=200)
    loaded_at = models.DateTimeField()
    code_count = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.code_set} {self.release}"
