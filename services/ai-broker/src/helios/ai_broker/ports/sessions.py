"""Storage port of AI sessions (I1) and their per-session rate windows."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Protocol

from helios.ai_broker.domain.model import AiSession
from helios.ai_broker.domain.session_pages import SessionCursor

__all__ = ["SessionTransaction"]


class SessionTransaction(Protocol):
    """Reads and writes of AI sessions inside a broker transaction."""

    async def add_ai_session(self, session: AiSession) -> None:
        """Insert a new session (its id and token hash are fresh)."""
        ...

    async def ai_session_by_token_hash(self, token_hash: bytes) -> AiSession | None:
        """The session whose token has this sha256, active or not, or None."""
        ...

    async def ai_sessions_of(
        self,
        org_id: str,
        user_id: str,
        *,
        active_at: dt.datetime | None,
        after: SessionCursor | None,
        limit: int,
    ) -> list[AiSession]:
        """At most `limit` sessions the user delegated in the org, newest first (creation time,
        then id), strictly after `after` when given; only those active at `active_at` (not
        revoked, not expired) unless it is None."""
        ...

    async def revoke_ai_session(
        self, session_id: uuid.UUID, at: dt.datetime, by: str
    ) -> AiSession | None:
        """Mark the session revoked at `at` by `by` unless it is revoked already (idempotent);
        returns the session as revoked now, None when it was revoked before (or is unknown)."""
        ...

    async def touch_ai_session(
        self, session_id: uuid.UUID, at: dt.datetime, every: dt.timedelta
    ) -> None:
        """Record a use at `at`, unless one was recorded less than `every` before (a busy
        session does not write on every call)."""
        ...

    async def ai_session_by_id(self, session_id: uuid.UUID) -> AiSession | None:
        """The session, active or not, or None."""
        ...

    async def take_rate_slot(
        self, session_id: uuid.UUID, now: dt.datetime, limit_per_minute: int
    ) -> bool:
        """Count one invocation in the session's current minute and return True while the count
        stays within `limit_per_minute`; False (nothing counted) once it is reached. Shared by
        every broker replica (PostgreSQL), serialised per session; windows of past minutes of the
        session are dropped."""
        ...
