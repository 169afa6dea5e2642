"""PostgreSQL rows of API keys, mixed into identity's transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["ApiKeyRows"]


class ApiKeyRows:
    """Implements the area's transaction port over the transaction's session `_s`."""

    _s: AsyncSession
