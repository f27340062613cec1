"""What the consent page says about scopes, in plain words, and what a user's role can use."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from ambula.accounts.policy import can
from ambula.smart.oauth import SCOPE_DESCRIPTIONS
from ambula.smart.scopes import Scopes

VERBS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}


def describe(scopes: Scopes) -> list[str]:
    """One line per scope, in words a person approving the app understands."""
    lines = [str(SCOPE_DESCRIPTIONS[name]) for name in sorted(scopes.other)]
    for scope in scopes.resources:
        verbs = ", ".join(VERBS[letter] for letter in scope.letters)
        what = _("all kinds of records") if scope.resource_type == "*" else scope.resource_type
        whose = {
            "patient": _("of the patient you choose"),
            "user": _("that you can see"),
            "system": _("of the whole practice"),
        }[scope.context]
        lines.append(f"{verbs.capitalize()} {what} {whose}")
    return lines


def narrowed_to_role(user: Any, scopes: Scopes) -> Scopes:
    """Drop scopes for resource types the user's role cannot read at all.

    Wildcards stay: the FHIR API checks the role on every request anyway, so this only keeps
    the consent page (and the token) from promising what would always be refused.
    """
    try:
        from ambula.fhir.registry import all_mappers
    except ImportError:
        return scopes
    mappers = {mapper.resource_type: mapper for mapper in all_mappers()}
    kept = []
    for scope in scopes.resources:
        mapper = mappers.get(scope.resource_type)
        if mapper is not None and not can(user, mapper.read_capability):
            continue
        kept.append(scope)
    return Scopes(tuple(kept), scopes.other, scopes.unknown, scopes.ignored)
