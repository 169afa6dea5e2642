"""PostgreSQL rows of push 2FA (A3), mixed into identity's transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["PushRows"]


class PushRows:
    """Implements the area's transaction port over the transaction's session `_s`."""

    _s: AsyncSession
