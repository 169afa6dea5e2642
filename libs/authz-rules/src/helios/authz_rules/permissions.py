"""Permission keys, scopes, grants and the merged permission catalog."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from helios.kernel.errors import AlreadyExistsError, InvalidArgumentError

__all__ = [
    "ALL_SCOPES",
    "MAX_KEY_CHARS",
    "PLATFORM_MODULE",
    "Catalog",
    "Grant",
    "PermissionKey",
    "PermissionSpec",
    "Scope",
    "is_platform",
    "key_matches",
    "parse_grant",
    "parse_key",
    "permission",
    "validate_tenant_grants",
]

MAX_KEY_CHARS = 200
PLATFORM_MODULE = "platform"
_PART = re.compile(r"[a-z][a-zA-Z0-9]*")
_KEY_SHAPE = "<module>.<entity>.<verb>"


@dataclass(frozen=True, slots=True, order=True)
class PermissionKey:
    """A validated `<module>.<entity>.<verb>` key, e.g. `iam.user.revokeSessions`."""

    module: str
    entity: str
    verb: str

    def __post_init__(self) -> None:
        for name, part in (("module", self.module), ("entity", self.entity), ("verb", self.verb)):
            if not _PART.fullmatch(part):
                raise InvalidArgumentError(
                    f"permission key {str(self)!r}: {name} {part!r} must start"
                    " with a lowercase letter and contain only letters and digits",
                    field="permission",
                )

    def __str__(self) -> str:
        return f"{self.module}.{self.entity}.{self.verb}"


def parse_key(raw: str | PermissionKey) -> PermissionKey:
    """The key `raw` names; raises InvalidArgumentError saying what is wrong if malformed."""
    if isinstance(raw, PermissionKey):
        return raw
    if not raw:
        raise InvalidArgumentError(
            f"permission key is empty; expected {_KEY_SHAPE}", field="permission"
        )
    if len(raw) > MAX_KEY_CHARS:
        raise InvalidArgumentError(
            f"permission key is longer than {MAX_KEY_CHARS} characters", field="permission"
        )
    parts = raw.split(".")
    if len(parts) != 3:
        raise InvalidArgumentError(
            f"permission key {raw!r} must have three dot-separated parts {_KEY_SHAPE},"
            f" got {len(parts)}",
            field="permission",
        )
    return PermissionKey(parts[0], parts[1], parts[2])


def is_platform(key: str | PermissionKey) -> bool:
    """Whether `key` is a `platform.*` key, reserved to the platform root role (Z6)."""
    return parse_key(key).module == PLATFORM_MODULE


def key_matches(pattern: str, key: PermissionKey) -> bool:
    """Whether `key` matches `pattern`: three dot-separated parts, each literal or `*`."""
    parts = pattern.split(".")
    if len(parts) != 3:
        raise ValueError(f"pattern {pattern!r} must have three parts")
    actual = (key.module, key.entity, key.verb)
    return all(p in ("*", a) for p, a in zip(parts, actual, strict=True))


class Scope(enum.Enum):
    """How far a grant reaches inside its org; a broader scope implies the narrower ones."""

    OWN = "own"
    TEAM = "team"
    ANY = "any"

    @property
    def rank(self) -> int:
        """0 for OWN, 1 for TEAM, 2 for ANY."""
        return _RANK[self]

    def implies(self, other: Scope) -> bool:
        """Whether holding this scope also grants `other` (ANY > TEAM > OWN)."""
        return self.rank >= other.rank

    def __lt__(self, other: object) -> bool:
        """Narrower first (OWN < TEAM < ANY), so grants of one key sort by breadth."""
        if not isinstance(other, Scope):
            return NotImplemented
        return self.rank < other.rank


_RANK = {Scope.OWN: 0, Scope.TEAM: 1, Scope.ANY: 2}
ALL_SCOPES = frozenset(Scope)


@dataclass(frozen=True, slots=True, order=True)
class Grant:
    """A permission with its scope, written `recruitment.offer.send:team`."""

    key: PermissionKey
    scope: Scope

    def __str__(self) -> str:
        return f"{self.key}:{self.scope.value}"


def parse_grant(raw: str) -> Grant:
    """The grant `raw` (`<module>.<entity>.<verb>:<own|team|any>`) names; raises
    InvalidArgumentError saying what is wrong with a malformed one."""
    key_text, sep, scope_text = raw.partition(":")
    if not sep:
        raise InvalidArgumentError(
            f"grant {raw!r} must be {_KEY_SHAPE}:<own|team|any>; the scope is missing",
            field="grant",
        )
    try:
        scope = Scope(scope_text)
    except ValueError:
        raise InvalidArgumentError(
            f"grant {raw!r}: scope {scope_text!r} must be one of own, team, any", field="grant"
        ) from None
    return Grant(parse_key(key_text), scope)


@dataclass(frozen=True, slots=True)
class PermissionSpec:
    """A permission as a service declares it: key, one-line description, dangerous flag and the
    scopes a grant of it may carry."""

    key: PermissionKey
    description: str
    dangerous: bool
    allowed_scopes: frozenset[Scope]

    def __post_init__(self) -> None:
        if not self.description.strip() or "\n" in self.description:
            raise InvalidArgumentError(
                f"permission {self.key}: the description must be one non-empty line",
                field="description",
            )
        if not self.allowed_scopes:
            raise InvalidArgumentError(
                f"permission {self.key}: at least one scope must be allowed", field="allowed_scopes"
            )


def permission(
    key: str,
    description: str,
    *,
    dangerous: bool = False,
    scopes: Iterable[Scope] = ALL_SCOPES,
) -> PermissionSpec:
    """A PermissionSpec from a key string, as services declare them in code."""
    return PermissionSpec(parse_key(key), description, dangerous, frozenset(scopes))


class Catalog:
    """The merged permission catalog: every service's registrations, keyed by permission key."""

    def __init__(self, specs: Iterable[PermissionSpec] = ()) -> None:
        self._specs: dict[PermissionKey, PermissionSpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: PermissionSpec) -> bool:
        """Adds `spec`; returns True if it is new, False if the same spec was registered already
        (idempotent); raises AlreadyExistsError if the key is registered with a different spec."""
        existing = self._specs.get(spec.key)
        if existing is None:
            self._specs[spec.key] = spec
            return True
        if existing == spec:
            return False
        raise AlreadyExistsError(
            f"permission {spec.key} is already registered with a different description,"
            " dangerous flag or scopes",
            field="permission",
        )

    def get(self, key: str | PermissionKey) -> PermissionSpec | None:
        """The spec of `key`, or None if unknown; raises InvalidArgumentError on a malformed key."""
        return self._specs.get(parse_key(key))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, PermissionKey) and key in self._specs

    def __iter__(self) -> Iterator[PermissionSpec]:
        return iter(sorted(self._specs.values(), key=lambda s: s.key))

    def __len__(self) -> int:
        return len(self._specs)


def validate_tenant_grants(grants: Iterable[Grant], catalog: Catalog | None = None) -> None:
    """Raises InvalidArgumentError if a tenant role's grants include a `platform.*` key (Z6) or,
    given a catalog, an unknown key or a scope its spec does not allow; returns None otherwise."""
    for grant in sorted(grants):
        if grant.key.module == PLATFORM_MODULE:
            raise InvalidArgumentError(
                f"grant {grant} refused: platform.* permissions belong to the platform root role"
                " only and cannot be part of a tenant role",
                field="grants",
            )
        if catalog is None:
            continue
        spec = catalog.get(grant.key)
        if spec is None:
            raise InvalidArgumentError(
                f"grant {grant} refused: permission {grant.key} is not in the catalog",
                field="grants",
            )
        if grant.scope not in spec.allowed_scopes:
            allowed = ", ".join(s.value for s in sorted(spec.allowed_scopes, key=lambda s: s.rank))
            raise InvalidArgumentError(
                f"grant {grant} refused: {grant.key} allows only the scopes {allowed}",
                field="grants",
            )
