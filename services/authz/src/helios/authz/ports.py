"""What authz's use cases need from the outside world, owned here and implemented by adapters."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from helios.authz.domain.blueprints import Blueprint
from helios.authz.domain.model import (
    AssignmentRecord,
    DecisionRecord,
    RegisteredPermission,
    RoleRecord,
    SubjectFacts,
    TeamMemberRecord,
    TeamRecord,
    UserTypeRecord,
)
from helios.authz_rules.permissions import Grant, PermissionKey
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.proto.authz.v1 import events_pb2

__all__ = [
    "AssignmentStore",
    "AuthzTransaction",
    "CatalogStore",
    "DangerousStore",
    "DecisionLog",
    "RevisionStore",
    "RoleStore",
    "SubjectReader",
    "TeamStore",
    "UnitOfWork",
    "UserTypeStore",
]


class CatalogStore(Protocol):
    """The platform-wide permission catalog (no history: a registered key never changes)."""

    async def permissions(
        self,
        keys: Collection[PermissionKey] | None = None,
        *,
        service: str = "",
        after: str = "",
        limit: int | None = None,
    ) -> list[RegisteredPermission]:
        """Catalog entries ordered by key: those of `keys` (None: all), of `service` (empty:
        any), with a key greater than `after`, at most `limit`."""
        ...

    async def add_permissions(self, entries: list[RegisteredPermission]) -> None:
        """Insert new catalog entries."""
        ...


class RevisionStore(Protocol):
    """Per-org policy revisions (the catalog's under the key "*")."""

    async def current(self, org_id: str) -> int:
        """The org's current revision (0 before its first write)."""
        ...

    async def bump(self, org_id: str) -> int:
        """The org's next revision, locked until the transaction ends (writes serialise)."""
        ...


class RoleStore(Protocol):
    """Roles with their grant history."""

    async def add(self, role: RoleRecord) -> None:
        """Insert a role and its grants; AlreadyExistsError when the name is taken."""
        ...

    async def get(self, role_id: uuid.UUID) -> RoleRecord | None:
        """The live role with its current grants, or None."""
        ...

    async def by_name(self, org_id: str, name: str) -> RoleRecord | None:
        """The org's live role of that name, or None."""
        ...

    async def page(self, org_id: str, after: str, limit: int) -> list[RoleRecord]:
        """Live roles of the org ordered by name, names greater than `after`."""
        ...

    async def extend_blueprints(self, blueprint: Blueprint, grants: frozenset[Grant]) -> list[str]:
        """Add `grants` to every live role seeded from `blueprint`, each at its org's next
        revision (bumped here); returns the orgs whose policy changed."""
        ...

    async def seeded(self, org_id: str) -> bool:
        """Whether the org's tenant blueprint roles were ever seeded (deleted ones count)."""
        ...

    async def update(
        self,
        role: RoleRecord,
        *,
        name: str,
        description: str,
        grants: frozenset[Grant],
        revision: int,
        now: dt.datetime,
    ) -> RoleRecord:
        """Rename / redescribe the role and replace its grants (removed grants keep their
        history); AlreadyExistsError when the new name is taken."""
        ...

    async def delete(self, role: RoleRecord, revision: int) -> None:
        """Mark the role and its grants deleted at `revision` (history kept)."""
        ...


class AssignmentStore(Protocol):
    """Role assignments with their history."""

    async def current(
        self, org_id: str, user_id: str, role_id: uuid.UUID
    ) -> AssignmentRecord | None:
        """The user's live assignment of the role, or None."""
        ...

    async def add(self, assignment: AssignmentRecord) -> None:
        """Insert a live assignment."""
        ...

    async def remove(self, assignment: AssignmentRecord, revision: int) -> None:
        """End a live assignment at `revision`."""
        ...

    async def remove_all_of_role(self, role_id: uuid.UUID, revision: int) -> list[AssignmentRecord]:
        """End every live assignment of the role; returns them."""
        ...

    async def page(
        self,
        org_id: str,
        *,
        user_id: str,
        role_id: uuid.UUID | None,
        after: str,
        limit: int,
    ) -> list[AssignmentRecord]:
        """Live assignments of the org, optionally of one user / role, ordered by id."""
        ...


class TeamStore(Protocol):
    """Teams and memberships with their history."""

    async def add(self, team: TeamRecord) -> None:
        """Insert a team; AlreadyExistsError when the name is taken."""
        ...

    async def get(self, team_id: uuid.UUID) -> TeamRecord | None:
        """The live team with its member count, or None."""
        ...

    async def page(
        self, org_id: str, *, member_user_id: str, after: str, limit: int
    ) -> list[TeamRecord]:
        """Live teams of the org ordered by name (optionally only those of one member)."""
        ...

    async def update(
        self, team: TeamRecord, *, name: str, description: str, revision: int, now: dt.datetime
    ) -> TeamRecord:
        """Rename / redescribe; AlreadyExistsError when the new name is taken."""
        ...

    async def delete(self, team: TeamRecord, revision: int) -> list[str]:
        """Mark the team deleted and end its memberships; returns the former members."""
        ...

    async def member(self, team_id: uuid.UUID, user_id: str) -> TeamMemberRecord | None:
        """The live membership, or None."""
        ...

    async def add_member(self, member: TeamMemberRecord, org_id: str, revision: int) -> None:
        """Insert a live membership."""
        ...

    async def remove_member(self, team_id: uuid.UUID, user_id: str, revision: int) -> bool:
        """End a live membership; False when there was none."""
        ...

    async def members(self, team_id: uuid.UUID, after: str, limit: int) -> list[TeamMemberRecord]:
        """Live members ordered by user id."""
        ...


class UserTypeStore(Protocol):
    """User types, their default-role history and which user has which type."""

    async def add(self, user_type: UserTypeRecord) -> None:
        """Insert a user type (and its default role); AlreadyExistsError on a taken name."""
        ...

    async def get(self, user_type_id: uuid.UUID) -> UserTypeRecord | None:
        """The live user type, or None."""
        ...

    async def page(self, org_id: str, after: str, limit: int) -> list[UserTypeRecord]:
        """Live user types of the org ordered by name."""
        ...

    async def update(
        self,
        user_type: UserTypeRecord,
        *,
        name: str,
        description: str,
        default_role_id: uuid.UUID | None,
        revision: int,
        now: dt.datetime,
    ) -> UserTypeRecord:
        """Change name, description or default role (history kept)."""
        ...

    async def delete(self, user_type: UserTypeRecord, revision: int) -> None:
        """Mark the user type deleted."""
        ...

    async def users_count(self, user_type_id: uuid.UUID) -> int:
        """How many users have the type now."""
        ...

    async def of_user(self, org_id: str, user_id: str) -> uuid.UUID | None:
        """The user's current type, or None."""
        ...

    async def set_of_user(
        self, org_id: str, user_id: str, user_type_id: uuid.UUID | None, revision: int
    ) -> None:
        """Replace the user's type (None: remove it), history kept."""
        ...


class DangerousStore(Protocol):
    """The org's extra dangerous actions (D2), with history."""

    async def patterns(self, org_id: str) -> frozenset[str]:
        """The org's current patterns."""
        ...

    async def replace(self, org_id: str, patterns: frozenset[str], revision: int) -> None:
        """Make `patterns` the org's set at `revision`."""
        ...


class SubjectReader(Protocol):
    """Everything a decision needs about one user, now or as of a past revision."""

    async def facts(self, org_id: str, user_id: str, at: int | None = None) -> SubjectFacts:
        """Held grants (assignments and user-type default), teams and the org's dangerous
        patterns as they were at revision `at` (None: now)."""
        ...


class AuthzTransaction(Protocol):
    """Reads and writes inside one database transaction, together with its audit events."""

    @property
    def catalog(self) -> CatalogStore: ...
    @property
    def revisions(self) -> RevisionStore: ...
    @property
    def roles(self) -> RoleStore: ...
    @property
    def assignments(self) -> AssignmentStore: ...
    @property
    def teams(self) -> TeamStore: ...
    @property
    def user_types(self) -> UserTypeStore: ...
    @property
    def dangerous(self) -> DangerousStore: ...
    @property
    def subjects(self) -> SubjectReader: ...

    async def record(self, change: Change, ctx: CallContext) -> None:
        """Enqueue the audit event of `change`; it commits or rolls back with the transaction."""
        ...

    async def announce(self, changed: events_pb2.PolicyChanged) -> None:
        """Enqueue the cache-invalidation announcement (commits with the transaction)."""
        ...


class UnitOfWork(Protocol):
    """Opens a transaction: commits when the block ends normally, rolls back on an exception."""

    def __call__(self) -> AbstractAsyncContextManager[AuthzTransaction]: ...


class DecisionLog(Protocol):
    """Where decisions are recorded for Explain (written in batches, off the hot path)."""

    def add(self, record: DecisionRecord) -> None:
        """Queue a decision for recording; never blocks."""
        ...

    async def get(self, decision_id: uuid.UUID) -> DecisionRecord | None:
        """A recorded decision (queued ones included), or None."""
        ...
