"""What authz's use cases need from the outside world, owned here and implemented by adapters."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from helios.authz.domain.model import (
    AssignmentRecord,
    HeldGrant,
    RegisteredPermission,
    RoleRecord,
)
from helios.authz.domain.permissions import PermissionKey
from helios.kernel.changes import Change
from helios.kernel.context import CallContext

__all__ = ["AuthzTransaction", "UnitOfWork"]


class AuthzTransaction(Protocol):
    """Reads and writes inside one database transaction, together with its audit events."""

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

    async def revision(self, org_id: str) -> int:
        """The current policy revision of the org (0 before its first write)."""
        ...

    async def bump_revision(self, org_id: str) -> int:
        """The next revision of the org, locked until the transaction ends."""
        ...

    async def add_role(self, role: RoleRecord) -> None:
        """Insert a role and its grants; raises AlreadyExistsError when the name is taken."""
        ...

    async def role(self, role_id: uuid.UUID) -> RoleRecord | None:
        """The role with its current grants, or None."""
        ...

    async def current_assignment(
        self, org_id: str, user_id: str, role_id: uuid.UUID
    ) -> AssignmentRecord | None:
        """The user's live assignment of the role, or None."""
        ...

    async def add_assignment(self, assignment: AssignmentRecord) -> None:
        """Insert a live assignment."""
        ...

    async def held_grants(self, org_id: str, user_id: str) -> list[HeldGrant]:
        """The current grants of the user's live assignments in the org."""
        ...

    async def record(self, change: Change, ctx: CallContext) -> None:
        """Enqueue the audit event of `change`; it commits or rolls back with the transaction."""
        ...


class UnitOfWork(Protocol):
    """Opens a transaction: commits when the block ends normally, rolls back on an exception."""

    def __call__(self) -> AbstractAsyncContextManager[AuthzTransaction]: ...
