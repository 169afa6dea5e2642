"""AI sessions (I1): a person delegates to an AI (never more than their own rights, at most 24 h),
ends or lists delegations; the gateway turns an AI token into its AI principal on every request,
so a revocation holds at once on every replica."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.message import Message

from helios.ai_broker.domain.ai_tokens import hash_ai_token, is_ai_token, new_ai_token
from helios.ai_broker.domain.delegation import (
    beyond_grants,
    require_not_ai,
    require_person,
    session_lifetime,
    validate_narrowing,
    validate_purpose,
)
from helios.ai_broker.domain.model import AiSession
from helios.ai_broker.domain.session_pages import SessionCursor, page_size
from helios.ai_broker.ports import Authz, AuthzDecision, Clock, PrincipalSigner, UnitOfWork
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
    "RESOLVERS",
    "TOKEN_GONE",
    "AiSessionService",
    "CreatedAiSession",
    "ResolvedAiToken",
    "SessionPage",
]

TOKEN_GONE = "AI token is invalid, revoked or expired"  # noqa: S105 - a message
RESOLVERS = frozenset({"gateway"})
"""The mTLS identities that may resolve AI tokens: the edge, which receives them."""
_TOUCH_EVERY = dt.timedelta(seconds=60)
_NO_SESSION = "no such AI session"


@dataclass(frozen=True, slots=True)
class CreatedAiSession:
    """A new session; `token` is shown to its user once and never stored."""

    session: AiSession
    token: str


@dataclass(frozen=True, slots=True)
class SessionPage:
    """Sessions newest first, as of `now`, and the token of the next page ('' on the last)."""

    sessions: list[AiSession]
    now: dt.datetime
    next_page_token: str


@dataclass(frozen=True, slots=True)
class ResolvedAiToken:
    """The active session of a token, the AI principal it acts as and a signed assertion of it."""

    session: AiSession
    principal: principal_pb2.Principal
    assertion: principal_pb2.PrincipalAssertion


def _uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise InvalidArgumentError(f"{field} must be a UUID", field=field) from exc


def _org_of(principal: principal_pb2.Principal, org_id: str) -> str:
    """The principal's org, which the request must name or leave empty."""
    if not principal.org_id:
        raise PermissionDeniedError("the caller belongs to no org")
    if org_id and org_id != principal.org_id:
        raise PermissionDeniedError("AI sessions of another org are out of reach")
    _uuid(principal.org_id, "org_id")
    return principal.org_id


class AiSessionService:
    """AI session use cases."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        authz: Authz,
        signer: PrincipalSigner,
        rate_limit_per_minute: int,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._authz = authz
        self._signer = signer
        self._rate_limit = rate_limit_per_minute

    async def create(
        self,
        org_id: str,
        purpose: str,
        permissions: Sequence[str],
        ttl: dt.timedelta | None,
        ctx: CallContext,
        request: Message | None,
    ) -> CreatedAiSession:
        """A delegation of the calling person (`ai.session.create` on their own) in their org,
        narrowed to `permissions` when given, each of which they must hold now at that scope or
        wider. Refused to AIs, API keys and impersonation sessions."""
        caller = ctx.require_principal()
        require_person(caller)
        org = _org_of(caller, org_id)
        _uuid(caller.actor_id, "actor_id")
        label = validate_purpose(purpose)
        narrowing = validate_narrowing(permissions)
        lifetime = session_lifetime(ttl)
        decision = await self._authz.check(
            caller, "ai.session.create", org_id=org, owner_id=caller.actor_id
        )
        if not decision.allowed:
            raise PermissionDeniedError("ai.session.create is not granted to you in this org")
        if narrowing:
            missing = beyond_grants(narrowing, await self._authz.grants_of(caller.actor_id, org))
            if missing:
                raise PermissionDeniedError(
                    "an AI session cannot carry a permission you do not hold: "
                    + ", ".join(missing[:10])
                )
        token = new_ai_token()
        now = self._clock()
        session = AiSession(
            id=uuid.uuid4(),
            org_id=org,
            user_id=caller.actor_id,
            purpose=label,
            token_hash=token.token_hash,
            token_prefix=token.display_prefix,
            permissions=narrowing,
            rate_limit_per_minute=self._rate_limit,
            created_at=now,
            expires_at=now + lifetime,
        )
        async with self._uow() as tx:
            await tx.add_ai_session(session)
            await tx.record(
                Change(
                    action="ai.session.create",
                    resource_type="ai.session",
                    resource_id=str(session.id),
                    org_id=org,
                    request=request,
                    diff={
                        "purpose": label,
                        "permissions": list(narrowing),
                        "expires_at": session.expires_at.isoformat(),
                        "rate_limit_per_minute": self._rate_limit,
                        "token_prefix": session.token_prefix,
                    },
                    decision_id=decision.decision_id,
                ),
                ctx,
            )
        return CreatedAiSession(session=session, token=token.token)

    async def revoke(
        self, org_id: str, ai_session_id: str, ctx: CallContext, request: Message | None
    ) -> AiSession:
        """End a session of the caller's org at once: the delegating user may always end their
        own; anyone else needs `ai.session.revoke` reaching that user. Idempotent (a revoked
        session is returned as it is, audited once). Another org's session is NotFoundError."""
        caller = ctx.require_principal()
        require_not_ai(caller)
        org = _org_of(caller, org_id)
        session_id = _uuid(ai_session_id, "ai_session_id")
        async with self._uow() as tx:
            session = await tx.ai_session_by_id(session_id)
        if session is None or session.org_id != org:
            raise NotFoundError(_NO_SESSION, field="ai_session_id")
        decision_id = ""
        if caller.actor_id != session.user_id:
            decision = await self._reaches(caller, "ai.session.revoke", org, session.user_id)
            if not decision.allowed:
                raise PermissionDeniedError("ai.session.revoke does not reach this AI session")
            decision_id = decision.decision_id
        async with self._uow() as tx:
            revoked = await tx.revoke_ai_session(session_id, self._clock(), caller.actor_id)
            if revoked is None:
                current = await tx.ai_session_by_id(session_id)
                return current or session
            await tx.record(
                Change(
                    action="ai.session.revoke",
                    resource_type="ai.session",
                    resource_id=str(session_id),
                    org_id=org,
                    request=request,
                    diff={"user_id": session.user_id, "purpose": session.purpose},
                    decision_id=decision_id,
                ),
                ctx,
            )
        return revoked

    async def _reaches(
        self, caller: principal_pb2.Principal, permission: str, org: str, user_id: str
    ) -> AuthzDecision:
        """Whether `permission` reaches the AI sessions `user_id` delegated: as their owner
        (`own`, `any`), else through a team of theirs (`team`)."""
        decision = await self._authz.check(caller, permission, org_id=org, owner_id=user_id)
        if decision.allowed or caller.actor_id == user_id:
            return decision
        for team in sorted(await self._authz.teams_of(user_id, org)):
            by_team = await self._authz.check(
                caller, permission, org_id=org, owner_id=user_id, team_id=team
            )
            if by_team.allowed:
                return by_team
        return decision

    async def list_sessions(
        self,
        org_id: str,
        user_id: str,
        include_inactive: bool,
        size: int,
        page_token: str,
        ctx: CallContext,
    ) -> SessionPage:
        """The sessions `user_id` (default: the caller) delegated in the caller's org, newest
        first, active ones only unless `include_inactive`; `ai.session.list` must reach that
        user (`own` for one's own, `team` / `any` for others)."""
        caller = ctx.require_principal()
        require_not_ai(caller)
        org = _org_of(caller, org_id)
        target = user_id or caller.actor_id
        _uuid(target, "user_id")
        limit = page_size(size)
        cursor = SessionCursor.parse(page_token)
        decision = await self._reaches(caller, "ai.session.list", org, target)
        if not decision.allowed:
            raise PermissionDeniedError("ai.session.list does not reach this user's AI sessions")
        now = self._clock()
        async with self._uow() as tx:
            found = await tx.ai_sessions_of(
                org,
                target,
                active_at=None if include_inactive else now,
                after=cursor,
                limit=limit + 1,
            )
        page = found[:limit]
        more = len(found) > limit
        next_token = SessionCursor(page[-1].created_at, page[-1].id).token() if more else ""
        return SessionPage(sessions=page, now=now, next_page_token=next_token)

    async def resolve(self, token: str, ctx: CallContext) -> ResolvedAiToken:
        """The AI principal of an active session's token (actor = the delegating user, session
        = the AI session) with a fresh assertion signed by the broker; records the use at most
        once a minute. Only the gateway may ask (PermissionDeniedError otherwise); an unknown,
        malformed, expired or revoked token is UnauthenticatedError, one message for all."""
        if ctx.caller not in RESOLVERS:
            raise PermissionDeniedError("only the gateway resolves AI tokens")
        if not is_ai_token(token):
            raise UnauthenticatedError(TOKEN_GONE)
        now = self._clock()
        async with self._uow() as tx:
            session = await tx.ai_session_by_token_hash(hash_ai_token(token))
            if session is None or not session.is_active(now):
                raise UnauthenticatedError(TOKEN_GONE)
            await tx.touch_ai_session(session.id, now, _TOUCH_EVERY)
        principal = principal_pb2.Principal(
            actor_type=principal_pb2.ACTOR_TYPE_AI,
            actor_id=session.user_id,
            org_id=session.org_id,
            session_id=str(session.id),
            ip=ctx.ip,
            user_agent=ctx.user_agent,
        )
        return ResolvedAiToken(
            session=session, principal=principal, assertion=self._signer.sign(principal)
        )
