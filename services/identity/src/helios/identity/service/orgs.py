"""Orgs (tenants): creation (authz seeds the blueprints from its audit event), their sign-in
policy, and unlocking members' sign-in."""

from __future__ import annotations

import uuid

from google.protobuf.message import Message

from helios.identity.domain.model import Org, OrgAuthPolicy, User
from helios.identity.domain.throttle import ThrottleScope, throttle_key
from helios.identity.domain.validation import normalize_email, validate_slug
from helios.identity.ports import Clock, IdentityTransaction, UnitOfWork
from helios.identity.service.org_access import OrgAccess
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import InvalidArgumentError, NotFoundError, PermissionDeniedError
from helios.proto.common.v1 import principal_pb2

__all__ = ["EDGE_CALLERS", "OrgService"]

EDGE_CALLERS = frozenset({"gateway"})
"""Callers that speak for outside clients: without a principal they are nobody."""
_CREATE_ORG = "platform.org.create"


class OrgService:
    """Org use cases."""

    def __init__(
        self, uow: UnitOfWork, clock: Clock, access: OrgAccess, platform_org: str = "platform"
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._access = access
        self._platform_org = platform_org

    async def create_org(
        self, slug: str, name: str, owner_id: uuid.UUID, ctx: CallContext, request: Message | None
    ) -> Org:
        """Create a tenant with its first member (user type `owner`); raises
        InvalidArgumentError or AlreadyExistsError. Allowed to a principal holding
        `platform.org.create` (the platform root), or to a Helios service calling without a
        principal (never to the edge); PermissionDeniedError otherwise. The audit event doubles
        as `org.created` for authz (issue #5)."""
        await self._may_create_org(ctx)
        org = Org(
            id=uuid.uuid4(),
            slug=validate_slug(slug),
            name=name.strip()[:200] or slug,
            created_at=self._clock(),
        )
        async with self._uow() as tx:
            if await tx.user_by_id(owner_id) is None:
                raise InvalidArgumentError(
                    "owner_user_id does not name a user", field="owner_user_id"
                )
            await tx.add_org(org, owner_id)
            await tx.record(
                Change(
                    action="identity.org.create",
                    resource_type="identity.org",
                    resource_id=str(org.id),
                    org_id=str(org.id),
                    request=request,
                    diff={"slug": org.slug, "name": org.name, "owner_user_id": str(owner_id)},
                ),
                ctx,
            )
        return org

    async def _may_create_org(self, ctx: CallContext) -> None:
        principal = ctx.principal
        if principal is None:
            if not ctx.caller or ctx.caller in EDGE_CALLERS:
                raise PermissionDeniedError(f"{_CREATE_ORG} needs the platform root")
            return
        # A platform permission is decided in the platform org, whatever org the session acts in
        # (the root's session may have none).
        in_platform = principal_pb2.Principal()
        in_platform.CopyFrom(principal)
        in_platform.org_id = self._platform_org
        if not await self._access.allows(in_platform, _CREATE_ORG, self._platform_org):
            raise PermissionDeniedError(f"{_CREATE_ORG} is reserved to the platform root")

    async def update_auth_policy(
        self,
        org_id: str,
        policy: OrgAuthPolicy | None,
        ctx: CallContext,
        request: Message | None,
    ) -> Org:
        """Replace the org's sign-in policy (`iam.org.updateAuthPolicy`); audited with the
        values before and after."""
        _, org_uuid = await self._access.require(ctx, "iam.org.updateAuthPolicy", org_id)
        if policy is None:
            raise InvalidArgumentError("auth_policy is required", field="auth_policy")
        async with self._uow() as tx:
            before = await tx.org_by_id(org_uuid, lock=True)
            after = await tx.set_org_auth_policy(org_uuid, policy)
            if before is None or after is None:
                raise NotFoundError("no such org")
            await tx.record(
                Change(
                    action="identity.org.updateAuthPolicy",
                    resource_type="identity.org",
                    resource_id=str(org_uuid),
                    org_id=str(org_uuid),
                    request=request,
                    diff={
                        "require_mfa": [
                            before.auth_policy.require_mfa,
                            after.auth_policy.require_mfa,
                        ],
                        "magic_link_enabled": [
                            before.auth_policy.magic_link_enabled,
                            after.auth_policy.magic_link_enabled,
                        ],
                    },
                ),
                ctx,
            )
        return after

    async def unlock_member(self, email: str, ctx: CallContext, request: Message | None) -> bool:
        """Lift the sign-in lockout of a member of the caller's org (`iam.user.unlock`); raises
        NotFoundError when no member has this e-mail. True when a lockout was lifted."""
        _, org = await self._access.require(ctx, "iam.user.unlock")
        address = normalize_email(email)
        async with self._uow() as tx:
            user = await tx.user_by_email(address)
            if user is None or await tx.membership(org, user.id) is None:
                raise NotFoundError("no member of this org has this e-mail", field="email")
            return await self._lift(tx, address, user, ctx, request, org)

    async def unlock(self, email: str, ctx: CallContext, request: Message | None) -> bool:
        """Lift the sign-in lockout of any account, with no permission check (trusted
        in-process callers; the RPC uses unlock_member). Raises InvalidArgumentError for a
        malformed address; True when a lockout was lifted."""
        address = normalize_email(email)
        async with self._uow() as tx:
            user = await tx.user_by_email(address)
            return await self._lift(tx, address, user, ctx, request, None)

    @staticmethod
    async def _lift(
        tx: IdentityTransaction,
        address: str,
        user: User | None,
        ctx: CallContext,
        request: Message | None,
        org: uuid.UUID | None,
    ) -> bool:
        """Clear the account's throttle; audited as `identity.user.signInUnlocked` either way."""
        lifted = await tx.clear_sign_in_throttle(throttle_key(ThrottleScope.ACCOUNT, address))
        await tx.record(
            Change(
                action="identity.user.signInUnlocked",
                resource_type="identity.user",
                resource_id=str(user.id) if user else "",
                org_id=str(org or ""),
                request=request,
                diff={"lifted": lifted},
            ),
            ctx,
        )
        return lifted
