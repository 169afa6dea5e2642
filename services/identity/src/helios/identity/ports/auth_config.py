"""Storage port of the deployment's provider configuration (C1)."""

from __future__ import annotations

from typing import Protocol

__all__ = ["AuthConfigTransaction"]


class AuthConfigTransaction(Protocol):
    """Reads and writes of this area inside an identity transaction."""
