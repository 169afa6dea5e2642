"""PostgreSQL implementation of identity's UnitOfWork and IdentityTransaction ports."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from sqlalchemy import ColumnElement, delete, func, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.identity.domain.model import EmailTokenPurpose, Org, OrgAuthPolicy, Session, User
from helios.identity.domain.throttle import ThrottleKey
from helios.identity.ports import IdentityTransaction
from helios.identity.store.api_keys_rows import ApiKeyRows
from helios.identity.store.auth_config_rows import AuthConfigRows
from helios.identity.store.mail import enqueue as enqueue_mail
from helios.identity.store.members_rows import MemberRows
from helios.identity.store.mfa_rows import MfaRows
from helios.identity.store.push_rows import PushRows
from helios.identity.store.sign_in_extras_rows import SignInExtrasRows
from helios.identity.store.tables import (
    email_tokens,
    memberships,
    orgs,
    sessions,
    sign_in_failures,
    sign_in_lockouts,
    users,
)
from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.db import insert_unique
from helios.kernel.errors import AlreadyExistsError
from helios.kernel.unit_of_work import SqlUnitOfWork

__all__ = ["postgres_unit_of_work"]


def _user(row: object) -> User:
    return User(
        id=row.id,  # type: ignore[attr-defined]
        email=row.email,  # type: ignore[attr-defined]
        display_name=row.display_name,  # type: ignore[attr-defined]
        password_hash=row.password_hash,  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
        email_verified_at=row.email_verified_at,  # type: ignore[attr-defined]
    )


def _session(row: object) -> Session:
    return Session(
        id=row.id,  # type: ignore[attr-defined]
        user_id=row.user_id,  # type: ignore[attr-defined]
        token_hash=row.token_hash,  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
        expires_at=row.expires_at,  # type: ignore[attr-defined]
        ip=row.ip,  # type: ignore[attr-defined]
        user_agent=row.user_agent,  # type: ignore[attr-defined]
        org_id=row.org_id,  # type: ignore[attr-defined]
        revoked_at=row.revoked_at,  # type: ignore[attr-defined]
        method=row.method,  # type: ignore[attr-defined]
        impersonator_id=row.impersonator_id,  # type: ignore[attr-defined]
        last_seen_at=row.last_seen_at,  # type: ignore[attr-defined]
    )


class _Transaction(MfaRows, PushRows, SignInExtrasRows, ApiKeyRows, AuthConfigRows, MemberRows):
    def __init__(
        self, session: AsyncSession, recorder: AuditRecorder, clock: Callable[[], dt.datetime]
    ) -> None:
        self._s = session
        self._recorder = recorder
        self._clock = clock

    async def user_by_email(self, email: str) -> User | None:
        row = (
            await self._s.execute(select(users).where(func.lower(users.c.email) == email.lower()))
        ).first()
        return _user(row) if row else None

    async def user_by_id(self, user_id: uuid.UUID) -> User | None:
        row = (await self._s.execute(select(users).where(users.c.id == user_id))).first()
        return _user(row) if row else None

    async def add_user(self, user: User) -> None:
        await insert_unique(
            self._s,
            users.insert().values(
                id=user.id,
                email=user.email,
                display_name=user.display_name,
                password_hash=user.password_hash,
                created_at=user.created_at,
            ),
            AlreadyExistsError("an account with this e-mail already exists", field="email"),
        )

    async def set_password_hash(self, user_id: uuid.UUID, password_hash: str) -> None:
        await self._s.execute(
            update(users).where(users.c.id == user_id).values(password_hash=password_hash)
        )

    async def add_session(self, session: Session) -> None:
        await self._s.execute(
            sessions.insert().values(
                id=session.id,
                user_id=session.user_id,
                token_hash=session.token_hash,
                org_id=session.org_id,
                ip=session.ip[:64],
                user_agent=session.user_agent[:512],
                created_at=session.created_at,
                expires_at=session.expires_at,
                method=session.method,
                impersonator_id=session.impersonator_id,
                last_seen_at=session.last_seen_at,
            )
        )

    async def session_by_token_hash(self, token_hash: bytes) -> Session | None:
        return await self._session_where(sessions.c.token_hash == token_hash)

    async def session_by_id(self, session_id: uuid.UUID) -> Session | None:
        return await self._session_where(sessions.c.id == session_id)

    async def revoke_session(self, session_id: uuid.UUID, at: dt.datetime) -> bool:
        result = await self._s.execute(
            update(sessions)
            .where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
            .values(revoked_at=at)
            .returning(sessions.c.id)
        )
        return result.first() is not None

    async def revoke_sessions_of(
        self,
        user_id: uuid.UUID,
        at: dt.datetime,
        keep: uuid.UUID | None = None,
        *,
        org_id: uuid.UUID | None = None,
    ) -> int:
        condition = (sessions.c.user_id == user_id) & sessions.c.revoked_at.is_(None)
        if keep is not None:
            condition = condition & (sessions.c.id != keep)
        if org_id is not None:
            condition = condition & ((sessions.c.org_id == org_id) | sessions.c.org_id.is_(None))
        result = await self._s.execute(
            update(sessions)
            .where(condition, sessions.c.expires_at > at)
            .values(revoked_at=at)
            .returning(sessions.c.id)
        )
        return len(result.all())

    async def touch_session(self, session_id: uuid.UUID, at: dt.datetime) -> None:
        await self._s.execute(
            update(sessions)
            .where(
                sessions.c.id == session_id,
                func.coalesce(sessions.c.last_seen_at, sessions.c.created_at) < at,
            )
            .values(last_seen_at=at)
        )

    async def sessions_of(
        self,
        user_id: uuid.UUID,
        *,
        org_id: uuid.UUID | None,
        now: dt.datetime,
        seen_since: dt.datetime,
        after: tuple[dt.datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Session]:
        condition = (
            (sessions.c.user_id == user_id)
            & sessions.c.revoked_at.is_(None)
            & (sessions.c.expires_at > now)
            & (func.coalesce(sessions.c.last_seen_at, sessions.c.created_at) > seen_since)
        )
        if org_id is not None:
            condition = condition & ((sessions.c.org_id == org_id) | sessions.c.org_id.is_(None))
        if after is not None:
            condition = condition & (
                tuple_(sessions.c.created_at, sessions.c.id) < tuple_(after[0], after[1])
            )
        rows = await self._s.execute(
            select(sessions)
            .where(condition)
            .order_by(sessions.c.created_at.desc(), sessions.c.id.desc())
            .limit(limit)
        )
        return [_session(row) for row in rows]

    async def is_member(self, org_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        found = await self._s.scalar(
            select(memberships.c.user_id).where(
                memberships.c.org_id == org_id, memberships.c.user_id == user_id
            )
        )
        return found is not None

    async def mark_email_verified(self, user_id: uuid.UUID, at: dt.datetime) -> bool:
        result = await self._s.execute(
            update(users)
            .where(users.c.id == user_id, users.c.email_verified_at.is_(None))
            .values(email_verified_at=at)
            .returning(users.c.id)
        )
        return result.first() is not None

    async def add_email_token(
        self,
        user_id: uuid.UUID,
        purpose: EmailTokenPurpose,
        token_hash: bytes,
        created_at: dt.datetime,
        expires_at: dt.datetime,
    ) -> None:
        await self._s.execute(
            update(email_tokens)
            .where(
                email_tokens.c.user_id == user_id,
                email_tokens.c.purpose == purpose.value,
                email_tokens.c.used_at.is_(None),
            )
            .values(used_at=created_at)
        )
        await self._s.execute(
            email_tokens.insert().values(
                token_hash=token_hash,
                user_id=user_id,
                purpose=purpose.value,
                created_at=created_at,
                expires_at=expires_at,
            )
        )

    async def count_email_tokens_since(
        self, user_id: uuid.UUID, purpose: EmailTokenPurpose, since: dt.datetime
    ) -> int:
        count: int = (
            await self._s.execute(
                select(func.count()).where(
                    email_tokens.c.user_id == user_id,
                    email_tokens.c.purpose == purpose.value,
                    email_tokens.c.created_at > since,
                )
            )
        ).scalar_one()
        return count

    async def redeem_email_token(
        self, token_hash: bytes, purpose: EmailTokenPurpose, now: dt.datetime
    ) -> uuid.UUID | None:
        user_id: uuid.UUID | None = (
            await self._s.execute(
                update(email_tokens)
                .where(
                    email_tokens.c.token_hash == token_hash,
                    email_tokens.c.purpose == purpose.value,
                    email_tokens.c.used_at.is_(None),
                    email_tokens.c.expires_at > now,
                )
                .values(used_at=now)
                .returning(email_tokens.c.user_id)
            )
        ).scalar()
        return user_id

    async def _session_where(self, condition: ColumnElement[bool]) -> Session | None:
        row = (await self._s.execute(select(sessions).where(condition))).first()
        return None if row is None else _session(row)

    async def add_org(self, org: Org, owner_id: uuid.UUID) -> None:
        await insert_unique(
            self._s,
            orgs.insert().values(
                id=org.id, slug=org.slug, name=org.name, created_at=org.created_at
            ),
            AlreadyExistsError("an org with this slug already exists", field="slug"),
        )
        await self._s.execute(
            memberships.insert().values(org_id=org.id, user_id=owner_id, user_type="owner")
        )

    async def first_org_of(self, user_id: uuid.UUID) -> uuid.UUID | None:
        found: uuid.UUID | None = (
            await self._s.execute(
                select(memberships.c.org_id)
                .where(memberships.c.user_id == user_id)
                .order_by(memberships.c.joined_at)
                .limit(1)
            )
        ).scalar()
        return found

    async def auth_policy_of_user(self, user_id: uuid.UUID) -> OrgAuthPolicy:
        row = (
            await self._s.execute(
                select(
                    func.coalesce(func.bool_or(orgs.c.require_mfa), False).label("mfa"),
                    func.coalesce(func.bool_or(orgs.c.magic_link_enabled), False).label("magic"),
                )
                .select_from(memberships.join(orgs, memberships.c.org_id == orgs.c.id))
                .where(memberships.c.user_id == user_id)
            )
        ).one()
        return OrgAuthPolicy(require_mfa=bool(row.mfa), magic_link_enabled=bool(row.magic))

    async def locked_until(self, keys: list[ThrottleKey], now: dt.datetime) -> dt.datetime | None:
        if not keys:
            return None
        until: dt.datetime | None = (
            await self._s.execute(
                select(func.max(sign_in_lockouts.c.locked_until)).where(
                    sign_in_lockouts.c.key.in_([key.digest for key in keys]),
                    sign_in_lockouts.c.locked_until > now,
                )
            )
        ).scalar()
        return until

    async def add_sign_in_failure(
        self, key: ThrottleKey, at: dt.datetime, window_start: dt.datetime
    ) -> int:
        # One transaction-scoped advisory lock per key: replicas counting the same key queue up
        # here, so the count each one sees includes every earlier failure.
        await self._s.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 7))"), {"key": key.digest}
        )
        await self._s.execute(
            delete(sign_in_failures).where(
                sign_in_failures.c.key == key.digest, sign_in_failures.c.failed_at <= window_start
            )
        )
        await self._s.execute(
            sign_in_failures.insert().values(key=key.digest, scope=key.scope.value, failed_at=at)
        )
        count: int = (
            await self._s.execute(
                select(func.count()).where(
                    sign_in_failures.c.key == key.digest,
                    sign_in_failures.c.failed_at > window_start,
                )
            )
        ).scalar_one()
        return count

    async def lock_sign_in(self, key: ThrottleKey, until: dt.datetime) -> None:
        statement = pg_insert(sign_in_lockouts).values(
            key=key.digest, scope=key.scope.value, locked_until=until
        )
        await self._s.execute(
            statement.on_conflict_do_update(
                index_elements=[sign_in_lockouts.c.key],
                set_={"locked_until": func.greatest(sign_in_lockouts.c.locked_until, until)},
            )
        )
        await self._s.execute(delete(sign_in_failures).where(sign_in_failures.c.key == key.digest))

    async def clear_sign_in_throttle(self, key: ThrottleKey) -> bool:
        await self._s.execute(delete(sign_in_failures).where(sign_in_failures.c.key == key.digest))
        removed = await self._s.execute(
            delete(sign_in_lockouts)
            .where(sign_in_lockouts.c.key == key.digest)
            .returning(sign_in_lockouts.c.key)
        )
        return removed.first() is not None

    async def enqueue_mail(self, org_id: uuid.UUID, to: str, subject: str, body: str) -> None:
        await enqueue_mail(self._s, org_id, to, subject, body)

    async def record(self, change: Change, ctx: CallContext) -> None:
        await self._recorder.record(self._s, change, ctx, self._clock())


def postgres_unit_of_work(
    sessions: async_sessionmaker[AsyncSession],
    recorder: AuditRecorder,
    clock: Callable[[], dt.datetime],
    on_commit: Callable[[], None] = lambda: None,
) -> SqlUnitOfWork[IdentityTransaction]:
    """The UnitOfWork port over PostgreSQL; commits wake the outbox relay via `on_commit`."""
    return SqlUnitOfWork(sessions, lambda s: _Transaction(s, recorder, clock), on_commit)
