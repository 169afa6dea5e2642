"""Sessions (S1-S3, S5): resolving a token under the idle and absolute timeouts, the current user,
signing out, listing sessions and revoking them (one, or every session of a user)."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Protocol

from google.protobuf.message import Message

from helios.identity.domain.model import Session, User
from helios.identity.domain.tokens import hash_token
from helios.identity.ports import (
    AuthConfigSource,
    Authorizer,
    Clock,
    PrincipalSigner,
    UnitOfWork,
)
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import (
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from helios.proto.common.v1 import principal_pb2

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "SESSION_GONE",
    "TOUCH_INTERVAL",
    "ImpersonationCheck",
    "ResolvedSession",
    "SessionPage",
    "SessionService",
    "admin_org",
    "parse_id",
    "session_of",
]

SESSION_GONE = "session is invalid or has expired"
DEFAULT_IDLE_TIMEOUT = dt.timedelta(hours=2)
TOUCH_INTERVAL = dt.timedelta(minutes=1)
"""last_seen_at is written at most this often per session, so resolving stays a read."""

_PAGE_DEFAULT, _PAGE_MAX = 50, 100


def parse_id(value: str, field: str) -> uuid.UUID:
    """`value` as a UUID, or InvalidArgumentError naming `field`."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgumentError(f"{field} must be a UUID", field=field) from None


def session_of(principal: principal_pb2.Principal) -> uuid.UUID:
    """The id of the signed-in session `principal` calls with; raises PermissionDeniedError for
    a caller without one (an API key acts for its creator but has no session)."""
    try:
        return uuid.UUID(principal.session_id)
    except ValueError:
        raise PermissionDeniedError("this needs a signed-in session, not an API key") from None


def admin_org(principal: principal_pb2.Principal) -> uuid.UUID:
    """The org an admin action of `principal` acts in: the org of its session; raises
    PermissionDeniedError for a session in no org."""
    if not principal.org_id:
        raise PermissionDeniedError("this needs a session in an organization")
    return uuid.UUID(principal.org_id)


def _encode_cursor(session: Session) -> str:
    raw = f"{session.created_at.isoformat()}|{session.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(token: str) -> tuple[dt.datetime, uuid.UUID] | None:
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        created, _, session_id = raw.partition("|")
        at = dt.datetime.fromisoformat(created)
        if at.tzinfo is None:
            raise ValueError("naive time")
        return at, uuid.UUID(session_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgumentError("page_token is not valid", field="page_token") from None


class ImpersonationCheck(Protocol):
    """Decides again, on every resolve, whether an impersonation session may go on (S6)."""

    async def still_allowed(self, session: Session) -> bool:
        """False once its admin lost the right or its user is the root or above the admin."""
        ...


@dataclass(frozen=True, slots=True)
class ResolvedSession:
    """Who a session token belongs to, with a signed assertion for downstream services."""

    user: User
    session: Session
    principal: principal_pb2.Principal
    assertion: principal_pb2.PrincipalAssertion


@dataclass(frozen=True, slots=True)
class SessionPage:
    """One page of a user's live sessions; `next_page_token` is empty on the last page."""

    sessions: list[Session]
    next_page_token: str


class SessionService:
    """Session lookups, sign-out, listing and revocation. A session is live while it is not
    revoked, not past its absolute expiry and was seen within the idle timeout (the deployment's
    `session_idle_timeout_seconds`, or `idle_default` while that is 0)."""

    def __init__(
        self,
        uow: UnitOfWork,
        signer: PrincipalSigner,
        clock: Clock,
        authorizer: Authorizer,
        config: AuthConfigSource,
        impersonations: ImpersonationCheck,
        idle_default: dt.timedelta = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        self._uow = uow
        self._signer = signer
        self._clock = clock
        self._authorizer = authorizer
        self._config = config
        self._impersonations = impersonations
        self._idle_default = idle_default

    def idle_timeout(self) -> dt.timedelta:
        """How long a session may go without a request before it ends."""
        seconds = self._config.current().session_idle_timeout_seconds
        return dt.timedelta(seconds=seconds) if seconds > 0 else self._idle_default

    def _live(self, session: Session, now: dt.datetime) -> bool:
        seen = session.last_seen_at or session.created_at
        return session.is_active(now) and now - seen < self.idle_timeout()

    async def resolve_session(self, token: str, ctx: CallContext) -> ResolvedSession:
        """The user and a fresh principal assertion of a live session token (its last_seen_at
        moved forward at most once a minute); raises UnauthenticatedError for an unknown,
        revoked, expired or idle token, and for an impersonation that may no longer go on."""
        if not token:
            raise UnauthenticatedError(SESSION_GONE)
        now = self._clock()
        async with self._uow() as tx:
            session = await tx.session_by_token_hash(hash_token(token))
            if session is None or not self._live(session, now):
                raise UnauthenticatedError(SESSION_GONE)
            if now - (session.last_seen_at or session.created_at) >= TOUCH_INTERVAL:
                await tx.touch_session(session.id, now)
                session = dataclasses.replace(session, last_seen_at=now)
            user = await tx.user_by_id(session.user_id)
        if user is None:
            raise UnauthenticatedError(SESSION_GONE)
        if session.impersonator_id is not None and not await self._impersonations.still_allowed(
            session
        ):
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
            session = await tx.session_by_id(session_of(principal))
            user = await tx.user_by_id(uuid.UUID(principal.actor_id))
        if session is None or user is None or not self._live(session, self._clock()):
            raise UnauthenticatedError(SESSION_GONE)
        return user, session

    async def sign_out(self, ctx: CallContext, request: Message | None) -> None:
        """Revoke the caller's session (idempotent); audited when it was still active."""
        principal = ctx.require_principal()
        session_id = session_of(principal)
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

    async def _authorize(
        self, principal: principal_pb2.Principal, permission: str, org: uuid.UUID, owner: uuid.UUID
    ) -> None:
        if not await self._authorizer.allowed(
            principal, permission, org_id=str(org), owner_id=str(owner)
        ):
            raise PermissionDeniedError(f"{permission} is not granted to you for this user")

    async def list_sessions(
        self, ctx: CallContext, user_id: str, page_size: int, page_token: str
    ) -> SessionPage:
        """The live sessions of the caller (empty `user_id`), or of a member of the caller's org
        for an admin holding `identity.session.list` over them (sessions opened in that org or
        in none); newest first. Raises InvalidArgumentError, PermissionDeniedError,
        NotFoundError."""
        principal = ctx.require_principal()
        if page_size < 0:
            raise InvalidArgumentError("page_size must not be negative", field="page_size")
        limit = min(page_size or _PAGE_DEFAULT, _PAGE_MAX)
        after = _decode_cursor(page_token)
        target = parse_id(user_id, "user_id") if user_id else uuid.UUID(principal.actor_id)
        org: uuid.UUID | None = None
        if str(target) != principal.actor_id:
            org = admin_org(principal)
            await self._authorize(principal, "identity.session.list", org, target)
        now = self._clock()
        async with self._uow() as tx:
            if org is not None and not await tx.is_member(org, target):
                raise NotFoundError("no such user in your organization")
            found = await tx.sessions_of(
                target,
                org_id=org,
                now=now,
                seen_since=now - self.idle_timeout(),
                after=after,
                limit=limit + 1,
            )
        page = found[:limit]
        more = len(found) > limit
        return SessionPage(page, _encode_cursor(page[-1]) if more else "")

    async def revoke_session(
        self, ctx: CallContext, session_id: str, request: Message | None
    ) -> None:
        """Revoke one session: the caller's own, or one of a member of the caller's org for an
        admin holding `identity.session.revoke` over its user. Idempotent; audited (with who
        revoked it) when the session was still active. Raises InvalidArgumentError,
        NotFoundError, PermissionDeniedError."""
        principal = ctx.require_principal()
        sid = parse_id(session_id, "session_id")
        async with self._uow() as tx:
            session = await tx.session_by_id(sid)
            if session is None:
                raise NotFoundError("session not found")
            own = str(session.user_id) == principal.actor_id
            in_org = False
            if not own and principal.org_id:
                org = uuid.UUID(principal.org_id)
                in_org = (session.org_id == org) or (
                    session.org_id is None and await tx.is_member(org, session.user_id)
                )
        if not own:
            if not in_org:
                raise PermissionDeniedError("the session belongs to another organization")
            await self._authorize(
                principal, "identity.session.revoke", uuid.UUID(principal.org_id), session.user_id
            )
        async with self._uow() as tx:
            if await tx.revoke_session(sid, self._clock()):
                await tx.record(
                    Change(
                        action="identity.session.revoke",
                        resource_type="identity.session",
                        resource_id=str(sid),
                        org_id=str(session.org_id or ""),
                        request=request,
                        diff={
                            "user_id": str(session.user_id),
                            "revoked_by": principal.actor_id,
                            "own": own,
                        },
                    ),
                    ctx,
                )

    async def revoke_user_sessions(
        self, ctx: CallContext, user_id: str, request: Message | None
    ) -> int:
        """Revoke every live session a member of the caller's org has in that org (or in none),
        for an admin holding `iam.user.revokeSessions`; returns how many were active. Always
        audited with the count. Raises InvalidArgumentError, PermissionDeniedError,
        NotFoundError."""
        principal = ctx.require_principal()
        target = parse_id(user_id, "user_id")
        org = admin_org(principal)
        await self._authorize(principal, "iam.user.revokeSessions", org, target)
        async with self._uow() as tx:
            if not await tx.is_member(org, target):
                raise NotFoundError("no such user in your organization")
            revoked = await tx.revoke_sessions_of(target, self._clock(), org_id=org)
            await tx.record(
                Change(
                    action="iam.user.revokeSessions",
                    resource_type="identity.user",
                    resource_id=str(target),
                    org_id=str(org),
                    request=request,
                    diff={"revoked_count": revoked},
                ),
                ctx,
            )
        return revoked
