"""The permission policy: roles, capabilities, and who may do what. The only place that decides.

Views declare the capability they need (`@requires`) or that they are `@public`;
`AccessPolicyMiddleware` enforces the declaration, services check again with `can()`, and
templates ask through the `{% can %}` tag. Object-level rules (a patient sees only their own
records) are methods here too, added with the records they guard.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from django.db.models import QuerySet

from ambula.accounts.roles import Role
from ambula.core.errors import AccessDenied


class Capability(StrEnum):
    STAFF_APP = "core.use_staff_app"
    MANAGE_PRACTICE = "core.manage_practice"
    MANAGE_ACCOUNTS = "accounts.manage"
    VIEW_DEMOGRAPHICS = "patients.view_demographics"
    EDIT_DEMOGRAPHICS = "patients.edit_demographics"
    MERGE_PATIENTS = "patients.merge"
    VIEW_CLINICAL_CHART = "clinical.view_chart"
    EDIT_CLINICAL_CHART = "clinical.edit_chart"
    VIEW_CLINICAL_NOTES = "clinical.view_notes"
    WRITE_CLINICAL_NOTES = "clinical.write_notes"
    VIEW_SCHEDULE = "scheduling.view"
    MANAGE_SCHEDULE = "scheduling.manage"
    OVERBOOK = "scheduling.overbook"
    VIEW_BILLING = "billing.view"
    SUBMIT_CLAIMS = "billing.submit_claims"
    VIEW_AUDIT = "audit.view"
    REVIEW_EMERGENCY_ACCESS = "audit.review_emergency_access"
    USE_PORTAL = "portal.use"


_STAFF = {Capability.STAFF_APP, Capability.VIEW_SCHEDULE}

ROLE_CAPABILITIES: dict[Role, frozenset[Capability]] = {
    # Administrators run the practice's accounts and settings; they do not read clinical notes.
    Role.ADMIN: frozenset(
        _STAFF
        | {
            Capability.MANAGE_ACCOUNTS,
            Capability.MANAGE_PRACTICE,
            Capability.MANAGE_SCHEDULE,
            Capability.OVERBOOK,
            Capability.VIEW_DEMOGRAPHICS,
            Capability.MERGE_PATIENTS,
            Capability.VIEW_AUDIT,
        }
    ),
    Role.PHYSICIAN: frozenset(
        _STAFF
        | {
            Capability.OVERBOOK,
            Capability.VIEW_DEMOGRAPHICS,
            Capability.EDIT_DEMOGRAPHICS,
            Capability.VIEW_CLINICAL_CHART,
            Capability.EDIT_CLINICAL_CHART,
            Capability.VIEW_CLINICAL_NOTES,
            Capability.WRITE_CLINICAL_NOTES,
        }
    ),
    Role.NURSE: frozenset(
        _STAFF
        | {
            Capability.VIEW_DEMOGRAPHICS,
            Capability.EDIT_DEMOGRAPHICS,
            Capability.VIEW_CLINICAL_CHART,
            Capability.EDIT_CLINICAL_CHART,
            Capability.VIEW_CLINICAL_NOTES,
            Capability.WRITE_CLINICAL_NOTES,
        }
    ),
    # The front desk registers and books patients; it never sees clinical notes.
    Role.FRONT_DESK: frozenset(
        _STAFF
        | {
            Capability.VIEW_DEMOGRAPHICS,
            Capability.EDIT_DEMOGRAPHICS,
            Capability.MANAGE_SCHEDULE,
        }
    ),
    Role.BILLER: frozenset(
        _STAFF
        | {
            Capability.VIEW_DEMOGRAPHICS,
            Capability.VIEW_BILLING,
            Capability.SUBMIT_CLAIMS,
        }
    ),
    # The privacy officer watches access: the audit trail and every emergency ("break-glass") use.
    Role.PRIVACY_OFFICER: frozenset(
        _STAFF
        | {
            Capability.VIEW_DEMOGRAPHICS,
            Capability.VIEW_AUDIT,
            Capability.REVIEW_EMERGENCY_ACCESS,
        }
    ),
    Role.PATIENT: frozenset({Capability.USE_PORTAL}),
}


def capabilities_of(user: Any) -> frozenset[Capability]:
    """Return everything the user's roles allow; nothing for anonymous or inactive users."""
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    cached = getattr(user, "_capabilities", None)
    if cached is None:
        cached = frozenset().union(*(ROLE_CAPABILITIES[role] for role in user.roles))
        user._capabilities = cached
    return cached


def can(user: Any, capability: Capability) -> bool:
    """Tell whether the user may do this."""
    return capability in capabilities_of(user)


def require(user: Any, capability: Capability) -> None:
    """Raise AccessDenied unless the user may do this (for services)."""
    if not can(user, capability):
        raise AccessDenied(code="capability_required")


def visible(user: Any, capability: Capability, queryset: QuerySet) -> QuerySet:
    """Narrow a queryset to what the user may see with this capability."""
    return queryset if can(user, capability) else queryset.none()


# --- View declarations -------------------------------------------------------------------------

PUBLIC = "public"
# The API decides per request from the bearer token and the user's role (ambula/fhir/access.py).
BEARER_TOKEN = "bearer_token"  # noqa: S105 (a declaration's name, not a secret)
SIGNED_IN = "signed_in"


def requires(capability: Capability) -> Callable:
    """Declare the capability a view needs."""

    def declare(view: Callable) -> Callable:
        view.access = capability
        return view

    return declare


def public(view: Callable) -> Callable:
    """Declare a view open to everyone, signed in or not."""
    view.access = PUBLIC
    return view


def bearer_token(view: Callable) -> Callable:
    """Declare an API view that authenticates a bearer token and checks the policy itself."""
    view.access = BEARER_TOKEN
    return view


def signed_in(view: Callable) -> Callable:
    """Declare a view for any signed-in user whatever their roles (their own account pages)."""
    view.access = SIGNED_IN
    return view


def declared_access(view: Callable) -> str | Capability | None:
    """Return a view's declaration, looking through class-based views' as_view() wrapper."""
    for candidate in (view, getattr(view, "view_class", None)):
        access = getattr(candidate, "access", None)
        if access is not None:
            return access
    return None
