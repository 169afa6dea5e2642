"""API keys for machine callers: creating (no escalation), listing, revoking, resolving.

A key acts as its creator in its org, narrowed to its permission keys: the gateway refuses any
route outside them, and downstream services ask authz with the creator's principal as usual, so
a creator who loses a permission loses it for their keys too. A key of a creator who left the org
is refused like a revoked or expired one.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from google.protobuf.message import Message

from helios.identity.domain.api_keys import (
    API_KEY_SESSION_PREFIX,
    ApiKey,
    key_lifetime,
    new_api_key,
    parse_api_key,
    secret_matches,
    validate_key_name,
    validate_permissions,
)
from helios.identity.ports import Clock, PrincipalSigner, UnitOfWork
from helios.identity.service.org_access import OrgAccess, uuid_field
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import NotFoundError, PermissionDeniedError, UnauthenticatedError
from helios.proto.common.v1 import principal_pb2

__all__ = ["KEY_GONE", "ApiKeyService", "CreatedApiKey", "ResolvedApiKey"]

KEY_GONE = "API key is invalid, revoked or expired"
_TOUCH_EVERY = dt.timedelta(seconds=60)
_NO_KEY = "no such API key"


@dataclass(frozen=True, slots=True)
class CreatedApiKey:
    """A new key; `token` is shown to the creator once and never stored."""

    key: ApiKey
    token: str


@dataclass(frozen=True, slots=True)
class ResolvedApiKey:
    """Who a key acts as, a signed assertion of it, and the permissions it is narrowed to."""

    key: ApiKey
    principal: principal_pb2.Principal
    assertion: principal_pb2.PrincipalAssertion


class ApiKeyService:
    """API key use cases."""

    def __init__(
        self, uow: UnitOfWork, clock: Clock, signer: PrincipalSigner, access: OrgAccess
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._signer = signer
        self._access = access

    async def create(
        self,
        org_id: str,
        name: str,
        permissions: list[str],
        ttl_days: int,
        ctx: CallContext,
        request: Message | None,
    ) -> CreatedApiKey:
        """A key of the caller in the org (`identity.apiKey.create` on keys they own), limited
        to `permissions`, each of which the caller must hold itself (no escalation; a key
        outside the catalog is held by nobody). Refused to API keys and impersonation sessions:
        neither may mint lasting credentials."""
        caller = ctx.require_principal()
        if caller.session_id.startswith(API_KEY_SESSION_PREFIX):
            raise PermissionDeniedError("an API key cannot create API keys")
        if caller.impersonator_id:
            raise PermissionDeniedError("API keys cannot be created while impersonating")
        principal, org = await self._access.require(
            ctx, "identity.apiKey.create", org_id, owner_id=caller.actor_id
        )
        label = validate_key_name(name)
        keys = validate_permissions(permissions)
        lifetime = key_lifetime(ttl_days)
        missing = [
            key
            for key in keys
            if not await self._access.allows(principal, key, org, principal.actor_id)
        ]
        if missing:
            raise PermissionDeniedError(
                "an API key cannot carry a permission you do not hold (or that no service "
                "declares): " + ", ".join(missing[:10])
            )
        creator = uuid_field(principal.actor_id, "actor_id")
        key_id, token, secret_hash = new_api_key()
        now = self._clock()
        key = ApiKey(
            id=key_id,
            org_id=org,
            name=label,
            permissions=keys,
            created_by=creator,
            created_at=now,
            expires_at=now + lifetime,
            secret_hash=secret_hash,
        )
        async with self._uow() as tx:
            if await tx.membership(org, creator) is None:
                raise PermissionDeniedError("only members of the org create its API keys")
            await tx.add_api_key(key)
            await tx.record(
                Change(
                    action="identity.apiKey.create",
                    resource_type="identity.apiKey",
                    resource_id=str(key_id),
                    org_id=str(org),
                    request=request,
                    diff={
                        "name": label,
                        "permissions": list(keys),
                        "expires_at": key.expires_at.isoformat(),
                    },
                ),
                ctx,
            )
        return CreatedApiKey(key=key, token=token)

    async def revoke(self, api_key_id: str, ctx: CallContext, request: Message | None) -> None:
        """Revoke a key of the caller's org (`identity.apiKey.delete`; `own` reaches the
        caller's keys); idempotent, audited when it was not revoked yet. A key of another org
        is NotFoundError."""
        caller = ctx.require_principal()
        key_id = uuid_field(api_key_id, "api_key_id")
        async with self._uow() as tx:
            key = await tx.api_key_by_id(key_id)
        if key is None or str(key.org_id) != caller.org_id:
            raise NotFoundError(_NO_KEY, field="api_key_id")
        await self._access.require(
            ctx, "identity.apiKey.delete", str(key.org_id), owner_id=str(key.created_by)
        )
        async with self._uow() as tx:
            if await tx.revoke_api_key(key_id, self._clock()):
                await tx.record(
                    Change(
                        action="identity.apiKey.revoke",
                        resource_type="identity.apiKey",
                        resource_id=str(key_id),
                        org_id=str(key.org_id),
                        request=request,
                        diff={"name": key.name, "created_by": str(key.created_by)},
                    ),
                    ctx,
                )

    async def list_keys(self, org_id: str, ctx: CallContext) -> list[ApiKey]:
        """The org's keys, newest first, without secrets: all of them with
        `identity.apiKey.list` at `any` scope, else the caller's own with `own`."""
        principal, org = self._access.target(ctx, org_id)
        if await self._access.allows(principal, "identity.apiKey.list", org):
            only: uuid.UUID | None = None
        elif await self._access.allows(principal, "identity.apiKey.list", org, principal.actor_id):
            only = uuid_field(principal.actor_id, "actor_id")
        else:
            raise PermissionDeniedError("identity.apiKey.list is not granted to you in this org")
        async with self._uow() as tx:
            return await tx.api_keys_of_org(org, only)

    async def resolve(self, token: str, ctx: CallContext) -> ResolvedApiKey:
        """The principal a usable key acts as (its creator, in its org, session `apikey:<id>`)
        with a fresh signed assertion; records the use (at most once a minute). Raises
        UnauthenticatedError for a malformed, unknown, revoked or expired key, or one whose
        creator is no longer a member of its org."""
        parsed = parse_api_key(token)
        if parsed is None:
            raise UnauthenticatedError(KEY_GONE)
        key_id, secret = parsed
        now = self._clock()
        async with self._uow() as tx:
            key = await tx.api_key_by_id(key_id)
            if (
                key is None
                or not secret_matches(key.secret_hash, secret)
                or not key.is_usable(now)
                or await tx.membership(key.org_id, key.created_by) is None
            ):
                raise UnauthenticatedError(KEY_GONE)
            await tx.touch_api_key(key.id, now, _TOUCH_EVERY)
        principal = principal_pb2.Principal(
            actor_type=principal_pb2.ACTOR_TYPE_USER,
            actor_id=str(key.created_by),
            org_id=str(key.org_id),
            session_id=key.session_id,
            ip=ctx.ip,
            user_agent=ctx.user_agent,
        )
        return ResolvedApiKey(key=key, principal=principal, assertion=self._signer.sign(principal))
