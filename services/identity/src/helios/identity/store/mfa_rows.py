"""PostgreSQL rows of second factors (A3, A9), mixed into identity's transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["MfaRows"]


class MfaRows:
    """Implements the area's transaction port over the transaction's session `_s`."""

    _s: AsyncSession
