"""Sessions (S1, S2): resolving a token to a principal, the current user, signing out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from google.protobuf.message import Message

from helios.identity.domain.model import Session, User
from helios.identity.domain.tokens import hash_token
from helios.identity.ports import Clock, PrincipalSigner, UnitOfWork
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import UnauthenticatedError
from helios.proto.common.v1 import principal_pb2

__all__ = ["SESSION_GONE", "ResolvedSession", "SessionService"]

SESSION_GONE = "session is invalid or has expired"


@dataclass(frozen=True, slots=True)
class ResolvedSession:
    """Who a session token belongs to, with a signed assertion for downstream services."""

    user: User
    session: Session
    principal: principal_pb2.Principal
    assertion: principal_pb2.PrincipalAssertion


class SessionService:
    """Session lookups and sign-out."""

    def __init__(self, uow: UnitOfWork, signer: PrincipalSigner, clock: Clock) -> None:
        self._uow = uow
        self._signer = signer
        self._clock = clock

    async def resolve_session(self, token: str, ctx: CallContext) -> ResolvedSession:
        """The user and a fresh principal assertion of an active session token; raises
        UnauthenticatedError for an unknown, revoked or expired token."""
        if not token:
            raise UnauthenticatedError(SESSION_GONE)
        async with self._uow() as tx:
            session = await tx.session_by_token_hash(hash_token(token))
            if session is None or not session.is_active(self._clock()):
                raise UnauthenticatedError(SESSION_GONE)
            user = await tx.user_by_id(session.user_id)
        if user is None:
            raise UnauthenticatedError(SESSION_GONE)
        principal = principal_pb2.Principal(
            actor_type=principal_pb2.ACTOR_TYPE_USER,
            actor_id=str(user.id),
            org_id=str(session.org_id or ""),
            session_id=str(session.id),
            impersonator_id=str(session.impersonator_id or ""),
            ip=ctx.ip,
            user_agent=ctx.user_agent,
        )
        return ResolvedSession(
            user=user, session=session, principal=principal, assertion=self._signer.sign(principal)
        )

    async def current_user(self, ctx: CallContext) -> tuple[User, Session]:
        """The calling user and session; raises UnauthenticatedError when either is gone."""
        principal = ctx.require_principal()
        async with self._uow() as tx:
            session = await tx.session_by_id(uuid.UUID(principal.session_id))
            user = await tx.user_by_id(uuid.UUID(principal.actor_id))
        if session is None or user is None or not session.is_active(self._clock()):
            raise UnauthenticatedError(SESSION_GONE)
        return user, session

    async def sign_out(self, ctx: CallContext, request: Message | None) -> None:
        """Revoke the caller's session (idempotent); audited when it was still active."""
        principal = ctx.require_principal()
        session_id = uuid.UUID(principal.session_id)
        async with self._uow() as tx:
            if await tx.revoke_session(session_id, self._clock()):
                await tx.record(
                    Change(
                        action="identity.session.signOut",
                        resource_type="identity.session",
                        resource_id=str(session_id),
                        request=request,
                    ),
                    ctx,
                )
