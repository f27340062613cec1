"""Practitioner (US Core Practitioner): a scheduling Provider and the staff user behind it.

Read-only: providers are set up in the practice's settings. The id is the Provider's.
"""

from __future__ import annotations

import re
from typing import Any

from django.db.models import Q

from ambula.accounts.policy import Capability
from ambula.fhir.mapper import US_CORE, ResourceMapper
from ambula.fhir.registry import register
from ambula.fhir.search_params import FunctionParam, TokenParam
from ambula.scheduling.models import Provider

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
_PREFIXES = ("dr.", "dr")


def human_name(full_name: str) -> dict:
    """The one name field Ambula keeps, split as FHIR wants it: the last word is the family."""
    words = full_name.split()
    name: dict[str, Any] = {"use": "official", "text": full_name}
    if words and words[0].casefold() in _PREFIXES and len(words) > 1:
        name["prefix"] = [words.pop(0)]
    if words:
        name["family"] = words[-1]
    if len(words) > 1:
        name["given"] = words[:-1]
    return name


def _word_start(value: str) -> str:
    return r"(^|\s)" + re.escape(value.strip())


def _name(name: str, modifier: str, value: str) -> Q:
    return Q(user__full_name__iregex=_word_start(value))


def _family(name: str, modifier: str, value: str) -> Q:
    return Q(user__full_name__iregex=_word_start(value) + r"\S*\s*$")


def _given(name: str, modifier: str, value: str) -> Q:
    # A given name is any word but the last, after an optional "Dr."
    return Q(
        user__full_name__iregex=r"^(dr\.?\s+)?([^\s]+\s+)*?"
        + re.escape(value.strip())
        + r"\S*\s+\S"
    )


def _identifier(name: str, modifier: str, value: str) -> Q:
    system, bar, code = value.rpartition("|")
    if bar and system not in ("", NPI_SYSTEM):
        return Q(pk__in=[])
    return Q(npi=code.strip())


@register
class PractitionerMapper(ResourceMapper):
    resource_type = "Practitioner"
    model = Provider
    profiles = (US_CORE + "us-core-practitioner",)
    read_capability = Capability.VIEW_SCHEDULE
    search_params = {
        "identifier": FunctionParam(
            function=_identifier,
            param_type="token",
            documentation=f"The NPI ({NPI_SYSTEM}|1234567893).",
        ),
        "name": FunctionParam(
            function=_name, param_type="string", documentation="The start of any word of the name."
        ),
        "family": FunctionParam(
            function=_family,
            param_type="string",
            documentation="The start of the family (last) name.",
        ),
        "given": FunctionParam(
            function=_given, param_type="string", documentation="The start of a given name."
        ),
        "active": TokenParam(
            field="is_active", codes={"true": True, "false": False}, documentation="true | false"
        ),
    }
    sort_fields = {"name": "user__full_name"}
    default_order = ("user__full_name",)

    def queryset(self):
        return Provider.objects.select_related("user")

    def versioned_by(self):
        # Not the User: every sign-in saves it. A changed name becomes a version when next read.
        return {Provider: lambda provider: provider.pk}

    def last_updated(self, obj: Provider):
        return max(obj.updated_at, obj.user.updated_at)

    def to_fhir(self, obj: Provider) -> dict:
        resource: dict[str, Any] = {
            "identifier": [{"system": NPI_SYSTEM, "value": obj.npi}],
            "active": obj.is_active and obj.user.is_active,
            "name": [human_name(obj.user.full_name)],
        }
        if obj.user.email:
            resource["telecom"] = [{"system": "email", "value": obj.user.email, "use": "work"}]
        if obj.credentials:
            resource["qualification"] = [{"code": {"text": obj.credentials}}]
        return resource
