"""Impersonation (S6): an admin acts as a member of their org for at most an hour, audited, never
as the platform root nor as someone holding a right the admin lacks."""

from __future__ import annotations

import datetime as dt
import uuid

from google.protobuf.message import Message

from helios.identity.domain.model import Session, SignInMethod
from helios.identity.ports import Authorizer, Clock, SubjectRights, UnitOfWork
from helios.identity.service.opening import SessionOpener, SignedIn
from helios.identity.service.sessions import admin_org, parse_id, session_of
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from helios.proto.common.v1 import principal_pb2

__all__ = ["DEFAULT_TTL", "MAX_TTL", "ImpersonationService", "rights_beyond"]

DEFAULT_TTL = dt.timedelta(minutes=30)
MAX_TTL = dt.timedelta(minutes=60)
_REASON_MAX = 500


_SCOPE_NAMES = {1: "own", 2: "team", 3: "any"}


def rights_beyond(target: SubjectRights, admin: SubjectRights) -> list[str]:
    """The grants of `target` that `admin` does not hold at the same or a broader scope, as
    sorted `key:scope` strings; empty when the target's role is not above the admin's."""
    return sorted(
        f"{key}:{_SCOPE_NAMES.get(rank, rank)}"
        for key, rank in target.grants
        if not any(held == key and held_rank >= rank for held, held_rank in admin.grants)
    )


class ImpersonationService:
    """Starts and stops impersonation sessions; the platform org is where authz keeps its root."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        opener: SessionOpener,
        authorizer: Authorizer,
        platform_org_id: str,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._opener = opener
        self._authorizer = authorizer
        self._platform_org = platform_org_id

    async def start(
        self,
        ctx: CallContext,
        user_id: str,
        ttl_seconds: int,
        reason: str,
        request: Message | None,
    ) -> SignedIn:
        """Open a session of `user_id` for the calling admin (`iam.user.impersonate` over that
        member of the admin's org), ending after `ttl_seconds` (default 30 min, at most 60, and
        never after the admin's own session). Audited as `identity.impersonation.start` with
        the admin, the target, the reason and the ttl. Refused (PermissionDeniedError) for the
        platform root and for a user holding a right the admin lacks; FailedPreconditionError
        from an impersonation session or for oneself; NotFoundError for a user of another org;
        InvalidArgumentError for a bad id, ttl or a missing reason."""
        principal = ctx.require_principal()
        target_id = parse_id(user_id, "user_id")
        reason = reason.strip()
        if not reason:
            raise InvalidArgumentError("a reason is required", field="reason")
        if len(reason) > _REASON_MAX:
            raise InvalidArgumentError(
                f"reason must be at most {_REASON_MAX} characters", field="reason"
            )
        if not 0 <= ttl_seconds <= MAX_TTL.total_seconds():
            raise InvalidArgumentError(
                f"ttl_seconds must be between 0 (default {int(DEFAULT_TTL.total_seconds())}) "
                f"and {int(MAX_TTL.total_seconds())}",
                field="ttl_seconds",
            )
        if principal.impersonator_id:
            raise FailedPreconditionError("an impersonation session cannot start another one")
        if str(target_id) == principal.actor_id:
            raise FailedPreconditionError("you cannot impersonate yourself")
        org = admin_org(principal)
        if not await self._authorizer.allowed(
            principal, "iam.user.impersonate", org_id=str(org), owner_id=str(target_id)
        ):
            raise PermissionDeniedError("iam.user.impersonate is not granted to you")
        async with self._uow() as tx:
            target = await tx.user_by_id(target_id)
            member = target is not None and await tx.is_member(org, target_id)
            own_session = await tx.session_by_id(session_of(principal))
        if target is None or not member:
            raise NotFoundError("no such user in your organization")
        now = self._clock()
        if own_session is None or not own_session.is_active(now):
            raise UnauthenticatedError("your session has ended")
        refusal = await self._refusal(target_id, uuid.UUID(principal.actor_id), org)
        if refusal:
            raise PermissionDeniedError(refusal)
        ttl = min(dt.timedelta(seconds=ttl_seconds) or DEFAULT_TTL, own_session.expires_at - now)
        async with self._uow() as tx:
            signed = await self._opener.open(
                tx,
                target,
                SignInMethod.IMPERSONATION,
                ctx,
                request,
                org_id=org,
                impersonator_id=uuid.UUID(principal.actor_id),
                ttl=ttl,
            )
            await tx.record(
                Change(
                    action="identity.impersonation.start",
                    resource_type="identity.user",
                    resource_id=str(target_id),
                    org_id=str(org),
                    request=request,
                    diff={
                        "impersonator_id": principal.actor_id,
                        "target_user_id": str(target_id),
                        "session_id": str(signed.session.id),
                        "reason": reason,
                        "ttl_seconds": int(ttl.total_seconds()),
                    },
                ),
                ctx,
            )
        return signed

    async def _refusal(self, target: uuid.UUID, admin: uuid.UUID, org: uuid.UUID) -> str:
        """Why `admin` may not impersonate `target` in `org` on top of the permission: `target`
        is the platform root (in the platform org or in `org`), or holds in `org` a right
        `admin` lacks there; "" when neither."""
        target_rights = await self._authorizer.rights_of(str(target), str(org))
        root = (
            target_rights.platform_root
            or (await self._authorizer.rights_of(str(target), self._platform_org)).platform_root
        )
        if root:
            return "the platform root cannot be impersonated"
        admin_rights = await self._authorizer.rights_of(str(admin), str(org))
        beyond = rights_beyond(target_rights, admin_rights)
        if beyond:
            return "you cannot impersonate someone holding rights you lack: " + ", ".join(
                beyond[:5]
            )
        return ""

    async def still_allowed(self, session: Session) -> bool:
        """Whether the impersonation `session` may go on: its admin still holds
        `iam.user.impersonate` over its user, who is still not the root nor above the admin
        (S6: decided again on every request)."""
        if session.impersonator_id is None or session.org_id is None:
            return False
        admin = principal_pb2.Principal(
            actor_type=principal_pb2.ACTOR_TYPE_USER,
            actor_id=str(session.impersonator_id),
            org_id=str(session.org_id),
        )
        if not await self._authorizer.allowed(
            admin, "iam.user.impersonate", owner_id=str(session.user_id)
        ):
            return False
        return not await self._refusal(session.user_id, session.impersonator_id, session.org_id)

    async def stop(self, ctx: CallContext, request: Message | None) -> None:
        """End the calling impersonation session (idempotent); audited as
        `identity.impersonation.stop` when it was still active. FailedPreconditionError when
        the caller's session is not an impersonation."""
        principal = ctx.require_principal()
        if not principal.impersonator_id:
            raise FailedPreconditionError("this session is not an impersonation")
        session_id = session_of(principal)
        async with self._uow() as tx:
            if await tx.revoke_session(session_id, self._clock()):
                await tx.record(
                    Change(
                        action="identity.impersonation.stop",
                        resource_type="identity.session",
                        resource_id=str(session_id),
                        org_id=principal.org_id,
                        request=request,
                        diff={
                            "impersonator_id": principal.impersonator_id,
                            "target_user_id": principal.actor_id,
                        },
                    ),
                    ctx,
                )
