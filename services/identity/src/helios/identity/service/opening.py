"""Opening a session, the last step of every sign-in path (password, second factor, magic link,
impersonation): the session row, its audit event and the sign-in observers, in one transaction."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.message import Message

from helios.identity.domain.model import Session, SignInMethod, User
from helios.identity.domain.tokens import hash_token, new_session_token
from helios.identity.ports import Clock, IdentityTransaction, SignInObserver
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.proto.audit.v1 import events_pb2

__all__ = ["SessionOpener", "SignedIn"]


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new session; `token` is shown to the client once and never stored."""

    token: str
    session: Session
    user: User


class SessionOpener:
    """Creates sessions and tells the observers (login history, new-device alerts)."""

    def __init__(
        self,
        clock: Clock,
        session_ttl: dt.timedelta,
        observers: Sequence[SignInObserver] = (),
    ) -> None:
        self._clock = clock
        self._ttl = session_ttl
        self._observers = tuple(observers)

    async def open(
        self,
        tx: IdentityTransaction,
        user: User,
        method: SignInMethod,
        ctx: CallContext,
        request: Message | None,
        *,
        org_id: uuid.UUID | None = None,
        impersonator_id: uuid.UUID | None = None,
        ttl: dt.timedelta | None = None,
    ) -> SignedIn:
        """Insert a session of `user` (in `org_id`, else the org they joined first), audit
        `identity.user.signIn` with the method, and tell every observer."""
        now = self._clock()
        token = new_session_token()
        session = Session(
            id=uuid.uuid4(),
            user_id=user.id,
            token_hash=hash_token(token),
            created_at=now,
            expires_at=now + (ttl or self._ttl),
            ip=ctx.ip,
            user_agent=ctx.user_agent,
            org_id=org_id or await tx.first_org_of(user.id),
            method=method.value,
            impersonator_id=impersonator_id,
            last_seen_at=now,
        )
        await tx.add_session(session)
        await tx.record(
            Change(
                action="identity.user.signIn",
                resource_type="identity.session",
                resource_id=str(session.id),
                org_id=str(session.org_id or ""),
                actor_id=str(user.id),
                request=request,
                diff={"method": method.value},
            ),
            ctx,
        )
        for observer in self._observers:
            await observer.opened(tx, user, session, ctx)
        return SignedIn(token=token, session=session, user=user)

    async def failed(
        self,
        tx: IdentityTransaction,
        user: User | None,
        method: SignInMethod,
        reason: str,
        ctx: CallContext,
        request: Message | None,
    ) -> None:
        """Audit a failed sign-in step (`identity.user.signIn`, outcome failure) and tell every
        observer."""
        await tx.record(
            Change(
                action="identity.user.signIn",
                resource_type="identity.user",
                resource_id=str(user.id) if user else "",
                actor_id=str(user.id) if user else "",
                outcome=events_pb2.AUDIT_OUTCOME_FAILURE,
                request=request,
                diff={"method": method.value, "reason": reason},
            ),
            ctx,
        )
        for observer in self._observers:
            await observer.failed(tx, user, method, reason, ctx)
