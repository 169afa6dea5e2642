"""PostgreSQL rows of org memberships and org sign-in policies."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["MemberRows"]


class MemberRows:
    """Implements the area's transaction port over the transaction's session `_s`."""

    _s: AsyncSession
