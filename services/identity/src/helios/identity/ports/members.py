"""Storage port of org memberships and org sign-in policies, and authz's user types of an org."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Protocol

from helios.identity.domain.members import MemberCursor, Membership
from helios.identity.domain.model import Org, OrgAuthPolicy, User
from helios.proto.common.v1 import principal_pb2

__all__ = ["MembersTransaction", "OrgUserTypes"]


class MembersTransaction(Protocol):
    """Reads and writes of this area inside an identity transaction."""

    async def org_by_id(self, org_id: uuid.UUID, *, lock: bool = False) -> Org | None:
        """The org, or None. With `lock` its row stays locked until the transaction ends, so
        membership changes of one org are serialised (the last-owner rule holds under races)."""
        ...

    async def membership(self, org_id: uuid.UUID, user_id: uuid.UUID) -> Membership | None:
        """The user's membership of the org, or None."""
        ...

    async def add_membership(self, membership: Membership) -> None:
        """Insert; raises AlreadyExistsError when the user is a member already."""
        ...

    async def remove_membership(self, org_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Delete (idempotent); True when the user was a member until now."""
        ...

    async def count_members_of_type(self, org_id: uuid.UUID, user_type: str) -> int:
        """How many members of the org have `user_type`."""
        ...

    async def members_page(
        self, org_id: uuid.UUID, after: MemberCursor | None, limit: int
    ) -> list[tuple[Membership, User]]:
        """Up to `limit` members with their accounts, by (joined_at, user_id), after `after`."""
        ...

    async def revoke_org_sessions_of(
        self, user_id: uuid.UUID, org_id: uuid.UUID, at: dt.datetime
    ) -> int:
        """Revoke the user's active sessions in the org (idempotent); returns how many were
        active until now."""
        ...

    async def set_org_auth_policy(self, org_id: uuid.UUID, policy: OrgAuthPolicy) -> Org | None:
        """Replace the org's sign-in policy; the org after the change, or None if unknown."""
        ...


class OrgUserTypes(Protocol):
    """The user types of an org, owned by authz; identity keeps each member's type in step.
    `acting` is the principal on whose behalf authz is asked (its own permissions and the
    no-escalation rule apply), or None for identity acting as a Helios service."""

    async def find(
        self, org_id: uuid.UUID, name: str, acting: principal_pb2.Principal | None
    ) -> str | None:
        """The id of the org's user type called `name`, or None. Raises PermissionDeniedError
        when authz refuses `acting`, UnavailableError when authz cannot answer."""
        ...

    async def assign(
        self,
        org_id: uuid.UUID,
        user_id: uuid.UUID,
        user_type_id: str,
        acting: principal_pb2.Principal | None,
    ) -> None:
        """Give the user that type in authz ("" removes the user's type); idempotent. Raises
        PermissionDeniedError when authz refuses (e.g. the type's default role holds more than
        `acting` does), UnavailableError when authz cannot answer."""
        ...
