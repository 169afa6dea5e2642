"""The decision: may this subject use this permission on this resource, and which grant says so."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from helios.authz_rules.permissions import (
    PLATFORM_MODULE,
    Catalog,
    Grant,
    PermissionKey,
    PermissionSpec,
    Scope,
    key_matches,
    parse_key,
)

__all__ = [
    "AI_FORBIDDEN_PATTERNS",
    "ActorType",
    "Decision",
    "Resource",
    "Subject",
    "blanket_refusal",
    "decide",
    "scope_matches",
    "usable_grants",
]

AI_FORBIDDEN_PATTERNS: tuple[str, ...] = (
    "*.permission.grant",
    "authz.*.grant",
    "*.role.assign",
    "authz.*.assign",
    "authz.role.create",
    "authz.role.update",
    "authz.role.delete",
    "authz.roleAssignment.create",
    "authz.roleAssignment.delete",
    "authz.userType.create",
    "authz.userType.update",
    "authz.userType.delete",
    "authz.teamMember.create",
    "authz.teamMember.delete",
    "authz.dangerousAction.update",
    "*.*.impersonate",
    "*.apiKey.create",
)
"""I2: an AI may never escalate (change anyone's roles, user type, teams or the org's
dangerous actions, its own user's included), impersonate or create API keys, whatever its user
may do."""


class ActorType(enum.Enum):
    """Who acts: a person, an AI on a person's behalf, or the system itself."""

    USER = "user"
    AI = "ai"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Resource:
    """The object acted on; `owner_id` and `team_id` are None when it has none."""

    type: str
    id: str
    org_id: str
    owner_id: str | None = None
    team_id: str | None = None


@dataclass(frozen=True, slots=True)
class Subject:
    """The actor with what its roles grant. For an AI, `actor_id` is the delegating user, `grants`
    are that user's, and `ai_narrowing` (if not None) lists the only keys the AI may use."""

    actor_type: ActorType
    actor_id: str
    org_id: str
    team_ids: frozenset[str] = frozenset()
    grants: frozenset[Grant] = frozenset()
    ai_narrowing: frozenset[str] | None = None
    is_platform_root: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer, the grant that decided it (None on a deny) and a reason fit for Explain."""

    allowed: bool
    grant: Grant | None
    reason: str


def _deny(reason: str) -> Decision:
    return Decision(False, None, reason)


def blanket_refusal(subject: Subject, key: PermissionKey) -> str | None:
    """Why `subject` may not use the catalog permission `key` on any resource at all, or None if
    its grants decide. Shared by decide() and plan_list() so that the two never disagree."""
    if subject.actor_type is ActorType.AI:
        if any(key_matches(p, key) for p in AI_FORBIDDEN_PATTERNS):
            return f"an AI may not use {key} (no escalation, impersonation or API keys)"
        if subject.ai_narrowing is not None and str(key) not in subject.ai_narrowing:
            return f"{key} is outside the AI session's narrowing"
    if key.module == PLATFORM_MODULE and not subject.is_platform_root:
        return f"{key} is a platform permission; only the platform root holds it"
    return None


def usable_grants(subject: Subject, key: PermissionKey, spec: PermissionSpec) -> list[Grant]:
    """The subject's grants of `key` that count, broadest scope first: a grant with a scope the
    spec does not allow, or a tenant grant of a platform key, counts for nothing."""
    found = [
        g
        for g in subject.grants
        if g.key == key and g.scope in spec.allowed_scopes and key.module != PLATFORM_MODULE
    ]
    return sorted(found, key=lambda g: -g.scope.rank)


def scope_matches(scope: Scope, subject: Subject, resource: Resource) -> bool:
    """Whether a grant of `scope` reaches `resource` (same org assumed): ANY reaches everything,
    TEAM a resource of one of the subject's teams or its own, OWN only its own."""
    owned = resource.owner_id is not None and resource.owner_id == subject.actor_id
    if scope is Scope.ANY:
        return True
    if scope is Scope.TEAM:
        return owned or (resource.team_id is not None and resource.team_id in subject.team_ids)
    return owned


def decide(
    subject: Subject, permission_key: str | PermissionKey, resource: Resource, catalog: Catalog
) -> Decision:
    """Allow or deny, with the deciding grant. An unknown permission is denied; a malformed key
    raises InvalidArgumentError. Tenancy comes first: a tenant subject is denied everything on a
    resource of another org; the platform root bypasses it for `platform.*` keys only."""
    key = parse_key(permission_key)
    spec = catalog.get(key)
    if spec is None:
        return _deny(f"unknown permission {key}")
    refusal = blanket_refusal(subject, key)
    if refusal is not None:
        return _deny(refusal)
    if key.module == PLATFORM_MODULE:
        return Decision(True, Grant(key, Scope.ANY), f"platform root holds {key}")
    if resource.org_id != subject.org_id:
        return _deny(f"resource {resource.type}/{resource.id} belongs to another org")
    grants = usable_grants(subject, key, spec)
    if not grants:
        return _deny(f"no role grants {key}")
    for grant in grants:
        if scope_matches(grant.scope, subject, resource):
            return Decision(True, grant, f"{grant} reaches {resource.type}/{resource.id}")
    return _deny(f"{grants[0]} does not reach {resource.type}/{resource.id}")
