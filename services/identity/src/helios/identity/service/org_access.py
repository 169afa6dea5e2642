"""Who may act on an org through identity: the caller's principal, with the RPC's permission in
that org as authz decides it (the Authorizer port)."""

from __future__ import annotations

import uuid

from helios.identity.ports import Authorizer
from helios.kernel.context import CallContext
from helios.kernel.errors import InvalidArgumentError, PermissionDeniedError
from helios.proto.common.v1 import principal_pb2

__all__ = ["OrgAccess", "uuid_field"]


def uuid_field(value: str, field: str) -> uuid.UUID:
    """`value` as a UUID; raises InvalidArgumentError naming `field` otherwise."""
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise InvalidArgumentError(f"{field} must be a UUID", field=field) from exc


class OrgAccess:
    """Permission checks of identity's org administration use cases."""

    def __init__(self, authorizer: Authorizer) -> None:
        self._authorizer = authorizer

    @staticmethod
    def target(ctx: CallContext, org_id: str) -> tuple[principal_pb2.Principal, uuid.UUID]:
        """The calling principal and the org it acts on (`org_id`, else its own); raises
        UnauthenticatedError without a principal, PermissionDeniedError when it has no org."""
        principal = ctx.require_principal()
        chosen = org_id or principal.org_id
        if not chosen:
            raise PermissionDeniedError("the caller belongs to no org")
        return principal, uuid_field(chosen, "org_id")

    async def allows(
        self,
        principal: principal_pb2.Principal,
        permission: str,
        org: uuid.UUID | str,
        owner_id: str = "",
    ) -> bool:
        """Whether `principal` holds `permission` on a resource of `org` owned by `owner_id`
        (none when empty)."""
        return await self._authorizer.allowed(
            principal, permission, org_id=str(org), owner_id=owner_id
        )

    async def require(
        self, ctx: CallContext, permission: str, org_id: str = "", owner_id: str = ""
    ) -> tuple[principal_pb2.Principal, uuid.UUID]:
        """The calling principal and the org, when the principal holds `permission` there;
        raises PermissionDeniedError naming the permission otherwise."""
        principal, org = self.target(ctx, org_id)
        if not await self.allows(principal, permission, org, owner_id):
            raise PermissionDeniedError(f"{permission} is not granted to you in this org")
        return principal, org
