"""Subject snapshots and the catalog as authz serves them, converted into the rules' terms."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from helios.authz_rules.evaluator import ActorType, Subject
from helios.authz_rules.permissions import (
    Catalog,
    Grant,
    PermissionKey,
    PermissionSpec,
    Scope,
    parse_key,
)
from helios.kernel.errors import DomainError, InvalidArgumentError
from helios.proto.authz.v1 import authz_pb2
from helios.proto.common.v1 import principal_pb2

__all__ = [
    "CatalogSnapshot",
    "HeldGrant",
    "SubjectKey",
    "SubjectSnapshot",
    "actor_type_of",
    "catalog_from_proto",
    "grant_from_proto",
    "held_from_proto",
    "narrowing_of",
    "scope_to_proto",
    "snapshot_from_proto",
    "snapshot_of",
    "subject_key",
    "subject_of",
]

_SCOPES = {
    authz_pb2.SCOPE_OWN: Scope.OWN,
    authz_pb2.SCOPE_TEAM: Scope.TEAM,
    authz_pb2.SCOPE_ANY: Scope.ANY,
}
_SCOPE_PROTOS = {scope: value for value, scope in _SCOPES.items()}
_ACTOR_TYPES = {
    principal_pb2.ACTOR_TYPE_USER: ActorType.USER,
    principal_pb2.ACTOR_TYPE_AI: ActorType.AI,
    principal_pb2.ACTOR_TYPE_SYSTEM: ActorType.SYSTEM,
}

SubjectKey = tuple[str, str, ActorType]
"""What a snapshot is cached under: (org_id, actor_id, actor_type)."""


@dataclass(frozen=True, slots=True)
class HeldGrant:
    """A grant with where the principal holds it from: the role, the assignment (empty for a
    user-type default) and the GrantSource."""

    grant: Grant
    role_id: str
    role_name: str
    assignment_id: str
    source: authz_pb2.GrantSource.ValueType
    user_type_id: str = ""


@dataclass(frozen=True, slots=True)
class SubjectSnapshot:
    """Everything the rules need about one principal's user at one org revision; `grants` are
    the grants of `held` alone, as Subject carries them (see snapshot_of())."""

    org_id: str
    actor_id: str
    held: tuple[HeldGrant, ...]
    grants: frozenset[Grant]
    team_ids: frozenset[str]
    org_dangerous: frozenset[str]
    platform_root: bool
    revision: int
    catalog_revision: int

    def holding(self, grant: Grant | None) -> HeldGrant | None:
        """The first held grant equal to `grant` (the one the server reports), or None."""
        return next((h for h in self.held if h.grant == grant), None)


@dataclass(frozen=True, slots=True)
class CatalogSnapshot:
    """The merged permission catalog at a catalog revision."""

    catalog: Catalog
    revision: int


def actor_type_of(principal: principal_pb2.Principal) -> ActorType:
    """The principal's actor type; raises InvalidArgumentError (as authz does) when the type,
    the actor_id or the org_id is missing."""
    actor_type = _ACTOR_TYPES.get(principal.actor_type)
    if actor_type is None:
        raise InvalidArgumentError("principal.actor_type is required", field="principal")
    if not principal.actor_id or not principal.org_id:
        raise InvalidArgumentError("principal needs an actor_id and an org_id", field="principal")
    return actor_type


def subject_key(principal: principal_pb2.Principal) -> SubjectKey:
    """The cache key of the principal; raises InvalidArgumentError like actor_type_of()."""
    return (principal.org_id, principal.actor_id, actor_type_of(principal))


def narrowing_of(keys: Iterable[str | PermissionKey]) -> frozenset[str]:
    """An AI session's narrowing as normalised keys; raises InvalidArgumentError on a malformed
    key, as authz does."""
    return frozenset(str(parse_key(k)) for k in keys)


def scope_to_proto(scope: Scope) -> authz_pb2.Scope.ValueType:
    """The proto value of a scope."""
    return _SCOPE_PROTOS[scope]


def grant_from_proto(scoped: authz_pb2.ScopedPermission) -> Grant | None:
    """The grant a ScopedPermission names, or None when its key or scope is not one this
    version understands (such a grant counts for nothing: fail closed)."""
    scope = _SCOPES.get(scoped.scope)
    if scope is None:
        return None
    try:
        return Grant(parse_key(scoped.permission), scope)
    except InvalidArgumentError:
        return None


def held_from_proto(grant: authz_pb2.Grant) -> HeldGrant | None:
    """A served grant with its source, or None when it names no usable grant."""
    parsed = grant_from_proto(grant.permission)
    if parsed is None:
        return None
    return HeldGrant(
        grant=parsed,
        role_id=grant.role_id,
        role_name=grant.role_name,
        assignment_id=grant.assignment_id,
        source=grant.source,
        user_type_id=grant.user_type_id,
    )


def snapshot_from_proto(
    principal: principal_pb2.Principal, reply: authz_pb2.GetSubjectSnapshotResponse
) -> SubjectSnapshot:
    """The snapshot of `principal` a GetSubjectSnapshot reply describes, keeping the served
    order of grants (the first equal one is the deciding grant the server reports)."""
    return snapshot_of(
        principal.org_id,
        principal.actor_id,
        (h for h in (held_from_proto(g) for g in reply.grants) if h is not None),
        team_ids=reply.team_ids,
        org_dangerous=reply.org_dangerous_actions,
        platform_root=reply.platform_root,
        revision=reply.revision,
        catalog_revision=reply.catalog_revision,
    )


def snapshot_of(
    org_id: str,
    actor_id: str,
    held: Iterable[HeldGrant],
    *,
    team_ids: Iterable[str] = (),
    org_dangerous: Iterable[str] = (),
    platform_root: bool = False,
    revision: int,
    catalog_revision: int,
) -> SubjectSnapshot:
    """A snapshot with its `grants` derived from `held` (order kept)."""
    kept = tuple(held)
    return SubjectSnapshot(
        org_id=org_id,
        actor_id=actor_id,
        held=kept,
        grants=frozenset(h.grant for h in kept),
        team_ids=frozenset(team_ids),
        org_dangerous=frozenset(org_dangerous),
        platform_root=platform_root,
        revision=revision,
        catalog_revision=catalog_revision,
    )


def _spec_from_proto(entry: authz_pb2.Permission) -> PermissionSpec | None:
    scopes = frozenset(_SCOPES[s] for s in entry.allowed_scopes if s in _SCOPES)
    description = entry.description.strip().splitlines()[0] if entry.description.strip() else ""
    try:
        return PermissionSpec(
            parse_key(entry.key),
            description or entry.key,
            entry.default_dangerous,
            scopes or frozenset({Scope.ANY}),
        )
    except DomainError:
        return None


def catalog_from_proto(entries: Iterable[authz_pb2.Permission], revision: int) -> CatalogSnapshot:
    """The catalog ListPermissions served, page after page. An entry this version cannot read
    is left out (its key is then unknown, so denied); empty allowed_scopes means ANY only."""
    catalog = Catalog()
    for entry in entries:
        spec = _spec_from_proto(entry)
        if spec is not None and spec.key not in catalog:
            catalog.register(spec)
    return CatalogSnapshot(catalog, revision)


def subject_of(
    snapshot: SubjectSnapshot, actor_type: ActorType, narrowing: frozenset[str]
) -> Subject:
    """The rules' Subject for a principal of `actor_type` whose user is `snapshot`; an AI's
    narrowing applies only when it is non-empty, exactly as authz's Check applies it."""
    return Subject(
        actor_type=actor_type,
        actor_id=snapshot.actor_id,
        org_id=snapshot.org_id,
        team_ids=snapshot.team_ids,
        grants=snapshot.grants,
        ai_narrowing=narrowing if actor_type is ActorType.AI and narrowing else None,
        is_platform_root=snapshot.platform_root,
    )
