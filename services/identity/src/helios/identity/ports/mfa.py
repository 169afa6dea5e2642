"""Storage port of second factors (A3, A9): TOTP, backup codes, e-mail OTPs, challenges, devices."""

from __future__ import annotations

from typing import Protocol

__all__ = ["MfaTransaction"]


class MfaTransaction(Protocol):
    """Reads and writes of this area inside an identity transaction."""
