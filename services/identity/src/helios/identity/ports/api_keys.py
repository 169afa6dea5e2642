"""Storage port of API keys for machine callers."""

from __future__ import annotations

from typing import Protocol

__all__ = ["ApiKeyTransaction"]


class ApiKeyTransaction(Protocol):
    """Reads and writes of this area inside an identity transaction."""
