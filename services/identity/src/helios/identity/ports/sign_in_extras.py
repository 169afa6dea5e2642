"""Storage port of magic links (A8), login history (S5) and known devices (S4)."""

from __future__ import annotations

from typing import Protocol

__all__ = ["SignInExtrasTransaction"]


class SignInExtrasTransaction(Protocol):
    """Reads and writes of this area inside an identity transaction."""
