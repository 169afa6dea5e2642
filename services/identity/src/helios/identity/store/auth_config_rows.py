"""PostgreSQL rows of the provider configuration (C1), mixed into identity's transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["AuthConfigRows"]


class AuthConfigRows:
    """Implements the area's transaction port over the transaction's session `_s`."""

    _s: AsyncSession
