from django.db import models

from ambula.core.fields import EncryptedJSONField
from ambula.core.ids import uuid7


class ResourceVersion(models.Model):
    """One version of one FHIR resource, kept for vread and _history.

    The content is the resource as the API showed it at that version: PHI, so encrypted.
    A version is recorded when the mapped record changes (after the change commits) and, as a
    safety net, whenever the API finds that the current rendering differs from the latest
    version (a change that bypassed the model's save, such as a bulk update).
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    resource_type = models.CharField(max_length=40)
    resource_id = models.CharField(max_length=64)
    version = models.PositiveIntegerField()
    recorded_at = models.DateTimeField()
    deleted = models.BooleanField(default=False)
    digest = models.CharField(max_length=64)
    content = EncryptedJSONField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["resource_type", "resource_id", "version"],
                name="fhir_resourceversion_one_per_number",
            ),
            models.CheckConstraint(
                condition=models.Q(version__gte=1), name="fhir_resourceversion_from_one"
            ),
        ]
        indexes = [models.Index(fields=["resource_type", "resource_id", "-version"])]

    def __str__(self) -> str:
        return f"{self.resource_type}/{self.resource_id}/_history/{self.version}"
