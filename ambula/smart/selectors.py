from typing import Any

from django.db.models import QuerySet

from ambula.accounts.policy import Capability, visible
from ambula.smart.models import ApiClient


def api_client_list(*, actor: Any) -> QuerySet[ApiClient]:
    """Every registered API client, newest first, for those who manage the practice."""
    clients = ApiClient.objects.select_related("application", "service_user").prefetch_related(
        "service_user__role_assignments"
    )
    return visible(actor, Capability.MANAGE_PRACTICE, clients).order_by("-created_at")


def api_client_get(*, actor: Any, client_id: str) -> ApiClient | None:
    return api_client_list(actor=actor).filter(application__client_id=client_id).first()
