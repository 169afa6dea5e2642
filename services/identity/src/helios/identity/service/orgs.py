"""Orgs (tenants): creation (authz seeds the blueprints from its audit event) and unlocking
members' sign-in."""

from __future__ import annotations

import uuid

from google.protobuf.message import Message

from helios.identity.domain.model import Org
from helios.identity.domain.throttle import ThrottleScope, throttle_key
from helios.identity.domain.validation import normalize_email, validate_slug
from helios.identity.ports import Clock, UnitOfWork
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import InvalidArgumentError

__all__ = ["OrgService"]


class OrgService:
    """Org use cases."""

    def __init__(self, uow: UnitOfWork, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def create_org(
        self, slug: str, name: str, owner_id: uuid.UUID, ctx: CallContext, request: Message | None
    ) -> Org:
        """Create a tenant with its first member; raises InvalidArgumentError or
        AlreadyExistsError. The audit event doubles as `org.created` for authz (issue #5)."""
        org = Org(
            id=uuid.uuid4(),
            slug=validate_slug(slug),
            name=name.strip() or slug,
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

    async def unlock(self, email: str, ctx: CallContext, request: Message | None) -> bool:
        """Lift the sign-in lockout of an account and reset its failure count (for admins; the
        caller's permission is checked by the RPC that will expose it). Raises
        InvalidArgumentError for a malformed address; True when a lockout was lifted. Audited as
        `identity.user.signInUnlocked` either way."""
        address = normalize_email(email)
        async with self._uow() as tx:
            lifted = await tx.clear_sign_in_throttle(throttle_key(ThrottleScope.ACCOUNT, address))
            user = await tx.user_by_email(address)
            await tx.record(
                Change(
                    action="identity.user.signInUnlocked",
                    resource_type="identity.user",
                    resource_id=str(user.id) if user else "",
                    request=request,
                    diff={"lifted": lifted},
                ),
                ctx,
            )
        return lifted
