"""Storage port of org memberships and org sign-in policies."""

from __future__ import annotations

from typing import Protocol

__all__ = ["MembersTransaction"]


class MembersTransaction(Protocol):
    """Reads and writes of this area inside an identity transaction."""
