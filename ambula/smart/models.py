from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ambula.core.models import BaseModel


class ApiClient(BaseModel):
    """An application registered to call the FHIR API: Ambula's side of a DOT Application."""

    class Kind(models.TextChoices):
        APP = "app", _("App for users (public, PKCE)")
        CONFIDENTIAL_APP = "confidential_app", _("App for users (with a secret, PKCE)")
        BACKEND = "backend", _("Backend service (signed JWT, SMART Backend Services)")
        INTERNAL = "internal", _("Internal integration (client secret)")

    application = models.OneToOneField(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL,
        on_delete=models.PROTECT,
        related_name="smart_client",
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    allowed_scopes = models.TextField(
        _("allowed scopes"), help_text=_("The most this client may ever be granted.")
    )
    jwks = models.JSONField(
        _("public keys (JWKS)"),
        default=dict,
        blank=True,
        help_text=_("Backend services sign their assertions with one of these keys."),
    )
    # System tokens act with this account's role; it has no usable password, so nobody signs in.
    service_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("API client")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=["app", "confidential_app", "backend", "internal"]),
                name="smart_apiclient_known_kind",
                violation_error_code="unknown_kind",
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=["app", "confidential_app"])
                | models.Q(service_user__isnull=False),
                name="smart_apiclient_system_clients_have_service_user",
                violation_error_code="service_user_required",
            ),
        ]

    def __str__(self) -> str:
        return self.application.name

    @property
    def is_user_facing(self) -> bool:
        return self.kind in (self.Kind.APP, self.Kind.CONFIDENTIAL_APP)


class LaunchContext(BaseModel):
    """The patient picked at launch, tied to the access token it was issued with.

    It goes when the token goes (DOT deletes revoked access tokens); a refresh copies it to
    the new token.
    """

    access_token = models.OneToOneField(
        settings.OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL,
        on_delete=models.CASCADE,
        related_name="launch_context",
    )
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = _("launch context")

    def __str__(self) -> str:
        return f"token {self.access_token_id}: patient {self.patient_id}"


class AssertionJti(models.Model):
    """A client assertion's `jti`, kept until its `exp` so the assertion is never used twice."""

    client_id = models.CharField(max_length=100)
    jti = models.CharField(max_length=255)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["client_id", "jti"],
                name="smart_assertionjti_unique",
                violation_error_code="jti_replayed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.client_id}: {self.jti}"


class LaunchGrant(BaseModel):
    """The patient picked at launch, held with the authorization code until it is exchanged."""

    grant = models.OneToOneField(
        settings.OAUTH2_PROVIDER_GRANT_MODEL, on_delete=models.CASCADE, related_name="launch"
    )
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")

    def __str__(self) -> str:
        return f"grant {self.grant_id}: patient {self.patient_id}"
