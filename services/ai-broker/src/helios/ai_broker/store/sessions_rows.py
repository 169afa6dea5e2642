"""PostgreSQL rows of AI sessions and their rate windows (I1)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from helios.ai_broker.domain.model import AiSession
from helios.ai_broker.domain.session_pages import SessionCursor
from helios.ai_broker.store.tables import ai_rate_windows, ai_sessions

__all__ = ["SessionRows"]


def _session(row: Any) -> AiSession:
    return AiSession(
        id=row.id,
        org_id=str(row.org_id),
        user_id=str(row.user_id),
        purpose=row.purpose,
        token_hash=bytes(row.token_hash),
        token_prefix=row.token_prefix,
        permissions=tuple(row.permissions),
        rate_limit_per_minute=row.rate_limit_per_minute,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
        last_used_at=row.last_used_at,
    )


class SessionRows:
    """Implements the area's transaction port over the transaction's session `_s`."""

    _s: AsyncSession
    _clock: Callable[[], dt.datetime]

    async def add_ai_session(self, session: AiSession) -> None:
        await self._s.execute(
            ai_sessions.insert().values(
                id=session.id,
                org_id=uuid.UUID(session.org_id),
                user_id=uuid.UUID(session.user_id),
                purpose=session.purpose,
                token_hash=session.token_hash,
                token_prefix=session.token_prefix,
                permissions=list(session.permissions),
                rate_limit_per_minute=session.rate_limit_per_minute,
                created_at=session.created_at,
                expires_at=session.expires_at,
            )
        )

    async def ai_session_by_id(self, session_id: uuid.UUID) -> AiSession | None:
        row = (
            await self._s.execute(select(ai_sessions).where(ai_sessions.c.id == session_id))
        ).first()
        return _session(row) if row else None

    async def ai_session_by_token_hash(self, token_hash: bytes) -> AiSession | None:
        row = (
            await self._s.execute(select(ai_sessions).where(ai_sessions.c.token_hash == token_hash))
        ).first()
        return _session(row) if row else None

    async def ai_sessions_of(
        self,
        org_id: str,
        user_id: str,
        *,
        active_at: dt.datetime | None,
        after: SessionCursor | None,
        limit: int,
    ) -> list[AiSession]:
        query = select(ai_sessions).where(
            ai_sessions.c.org_id == uuid.UUID(org_id),
            ai_sessions.c.user_id == uuid.UUID(user_id),
        )
        if active_at is not None:
            query = query.where(
                ai_sessions.c.revoked_at.is_(None), ai_sessions.c.expires_at > active_at
            )
        if after is not None:
            query = query.where(
                tuple_(ai_sessions.c.created_at, ai_sessions.c.id)
                < tuple_(after.created_at, after.session_id)
            )
        rows = await self._s.execute(
            query.order_by(ai_sessions.c.created_at.desc(), ai_sessions.c.id.desc()).limit(limit)
        )
        return [_session(row) for row in rows]

    async def revoke_ai_session(
        self, session_id: uuid.UUID, at: dt.datetime, by: str
    ) -> AiSession | None:
        row = (
            await self._s.execute(
                update(ai_sessions)
                .where(ai_sessions.c.id == session_id, ai_sessions.c.revoked_at.is_(None))
                .values(revoked_at=at, revoked_by=by)
                .returning(*ai_sessions.c)
            )
        ).first()
        return _session(row) if row else None

    async def touch_ai_session(
        self, session_id: uuid.UUID, at: dt.datetime, every: dt.timedelta
    ) -> None:
        await self._s.execute(
            update(ai_sessions)
            .where(
                ai_sessions.c.id == session_id,
                or_(ai_sessions.c.last_used_at.is_(None), ai_sessions.c.last_used_at <= at - every),
            )
            .values(last_used_at=at)
        )

    async def take_rate_slot(
        self, session_id: uuid.UUID, now: dt.datetime, limit_per_minute: int
    ) -> bool:
        if limit_per_minute < 1:
            return False
        window = now.replace(second=0, microsecond=0)
        # The upsert locks the window's row, so replicas counting the same session take turns;
        # the conditional update leaves a full window untouched (no row returned).
        counted = await self._s.execute(
            insert(ai_rate_windows)
            .values(session_id=session_id, window_start=window, count=1)
            .on_conflict_do_update(
                index_elements=[ai_rate_windows.c.session_id, ai_rate_windows.c.window_start],
                set_={"count": ai_rate_windows.c.count + 1},
                where=ai_rate_windows.c.count < limit_per_minute,
            )
            .returning(ai_rate_windows.c.count)
        )
        count = counted.scalar()
        if count == 1:  # the first call of a new minute drops the session's past windows
            await self._s.execute(
                delete(ai_rate_windows).where(
                    ai_rate_windows.c.session_id == session_id,
                    ai_rate_windows.c.window_start < window,
                )
            )
        return count is not None
