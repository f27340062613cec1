"""SMART App Launch scopes: parse, compare and narrow them.

A resource scope reads `context/ResourceType.permissions`. SMART v2 writes the permissions as
letters from `cruds` in that order (`patient/Patient.rs`); v1 wrote `read`, `write` or `*`,
which mean `rs`, `cud` and `cruds` here. A scope is kept in the form it was asked in, so an
app that only speaks v1 gets v1 back, unless narrowing cut it, when it is written in v2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LETTERS = "cruds"
CONTEXTS = ("patient", "user", "system")
V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}
_V1_NAMES = {letters: name for name, letters in V1_PERMISSIONS.items()}
# The scopes that are not about resources and that this server understands.
KNOWN_OTHER = frozenset(
    {"openid", "fhirUser", "profile", "launch/patient", "offline_access", "online_access"}
)
_RESOURCE_SCOPE = re.compile(
    r"^(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]{0,63})"
    r"\.(?P<permissions>[a-z*]+)(?P<query>\?.*)?$"
)
_V2_LETTERS = re.compile(r"^c?r?u?d?s?$")


@dataclass(frozen=True, order=True)
class ResourceScope:
    """One resource scope: which context, which resource type ("*" for all), which letters."""

    context: str
    resource_type: str
    letters: str
    v1: bool = False

    def __str__(self) -> str:
        if self.v1 and self.letters in _V1_NAMES:
            return f"{self.context}/{self.resource_type}.{_V1_NAMES[self.letters]}"
        return f"{self.context}/{self.resource_type}.{self.letters}"

    def grants(self, resource_type: str, letter: str) -> bool:
        return letter in self.letters and self.resource_type in ("*", resource_type)


def _parse_one(text: str) -> ResourceScope | bool | None:
    """A ResourceScope; False for a granular scope (valid, grants nothing); None if unknown."""
    match = _RESOURCE_SCOPE.match(text)
    if match is None:
        return None
    permissions = match["permissions"]
    if permissions in V1_PERMISSIONS:
        letters, v1 = V1_PERMISSIONS[permissions], True
    elif permissions and _V2_LETTERS.match(permissions):
        letters, v1 = permissions, False
    else:
        return None
    if match["query"] is not None:
        # Granular scopes (`patient/Observation.rs?category=...`) would need every search to
        # be filtered by the query; we do not support them, so they grant nothing at all
        # rather than more than they say.
        return False
    return ResourceScope(match["context"], match["type"], letters, v1)


class Scopes:
    """A parsed scope string: resource scopes, the other known scopes, and what was not understood.

    `unknown` holds scopes this server does not know (the token endpoint refuses them);
    `ignored` the granular ones, which are valid SMART but grant nothing here.
    """

    __slots__ = ("ignored", "other", "resources", "unknown")

    def __init__(
        self,
        resources: tuple[ResourceScope, ...] = (),
        other: frozenset[str] = frozenset(),
        unknown: frozenset[str] = frozenset(),
        ignored: frozenset[str] = frozenset(),
    ) -> None:
        self.resources = tuple(sorted(_merge(list(resources))))
        self.other = frozenset(other)
        self.unknown = frozenset(unknown)
        self.ignored = frozenset(ignored)

    @classmethod
    def parse(cls, text: str | None) -> Scopes:
        """Parse a space-separated scope string; never raises."""
        resources, other, unknown, ignored = [], set(), set(), set()
        for word in (text or "").split():
            if word in KNOWN_OTHER:
                other.add(word)
                continue
            parsed = _parse_one(word)
            if parsed is None:
                unknown.add(word)
            elif parsed is False:
                ignored.add(word)
            else:
                resources.append(parsed)
        return cls(tuple(resources), frozenset(other), frozenset(unknown), frozenset(ignored))

    def __str__(self) -> str:
        words = sorted(self.other) + [str(scope) for scope in self.resources]
        return " ".join(dict.fromkeys(words))

    def __repr__(self) -> str:
        return f"Scopes({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scopes) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __bool__(self) -> bool:
        return bool(self.resources or self.other)

    @property
    def context_names(self) -> frozenset[str]:
        """The contexts ("patient", "user", "system") any resource scope is in."""
        return frozenset(scope.context for scope in self.resources)

    def contexts(self, resource_type: str, letter: str) -> frozenset[str]:
        """The contexts whose scopes grant this letter (c r u d s) on this resource type."""
        return frozenset(
            scope.context for scope in self.resources if scope.grants(resource_type, letter)
        )

    def narrowed_to(self, allowed: Scopes) -> Scopes:
        """What of these scopes `allowed` permits: never more than either of them.

        A wildcard asked for under specific allowed types becomes those types; letters
        outside what is allowed are dropped; scopes left with no letter disappear.
        """
        narrowed: list[ResourceScope] = []
        for scope in self.resources:
            for bound in allowed.resources:
                if bound.context != scope.context:
                    continue
                if bound.resource_type not in ("*", scope.resource_type) and (
                    scope.resource_type != "*"
                ):
                    continue
                resource_type = (
                    scope.resource_type if bound.resource_type == "*" else bound.resource_type
                )
                letters = "".join(
                    letter
                    for letter in LETTERS
                    if letter in scope.letters and letter in bound.letters
                )
                if letters:
                    narrowed.append(ResourceScope(scope.context, resource_type, letters, scope.v1))
        return Scopes(tuple(narrowed), self.other & allowed.other)

    def only_contexts(self, *contexts: str) -> Scopes:
        """These scopes without resource scopes outside the given contexts."""
        return Scopes(
            tuple(scope for scope in self.resources if scope.context in contexts),
            self.other,
            self.unknown,
            self.ignored,
        )


def _merge(scopes: list[ResourceScope]) -> list[ResourceScope]:
    """One scope per context and type, with the union of their letters."""
    merged: dict[tuple[str, str], tuple[set[str], bool]] = {}
    for scope in scopes:
        letters, v1 = merged.get((scope.context, scope.resource_type), (set(), True))
        merged[(scope.context, scope.resource_type)] = (
            letters | set(scope.letters),
            v1 and scope.v1,
        )
    return [
        ResourceScope(context, resource_type, "".join(x for x in LETTERS if x in letters), v1)
        for (context, resource_type), (letters, v1) in merged.items()
    ]
