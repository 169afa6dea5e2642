"""Storage port of push 2FA (A3): devices and push challenges."""

from __future__ import annotations

from typing import Protocol

__all__ = ["PushTransaction"]


class PushTransaction(Protocol):
    """Reads and writes of this area inside an identity transaction."""
