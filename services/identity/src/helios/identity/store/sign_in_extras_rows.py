"""PostgreSQL rows of magic links (A8), login history (S5) and known devices (S4)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["SignInExtrasRows"]


class SignInExtrasRows:
    """Implements the area's transaction port over the transaction's session `_s`."""

    _s: AsyncSession
