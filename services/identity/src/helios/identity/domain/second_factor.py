"""A sign-in waiting for its second factor (A3), as stored: the contract between the second-factor
methods (TOTP, backup codes, e-mail OTP, push) and CompleteSecondFactor."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from helios.identity.domain.model import SignInMethod

__all__ = ["SignInChallenge"]


@dataclass(frozen=True, slots=True)
class SignInChallenge:
    """Created when a first factor passed and a second is needed; only the sha256 of its token
    is stored. `attempts` counts wrong codes; `completed_at` is set once, when a session opens."""

    id: uuid.UUID
    user_id: uuid.UUID
    first_factor: SignInMethod
    methods: tuple[SignInMethod, ...]
    created_at: dt.datetime
    expires_at: dt.datetime
    ip: str = ""
    user_agent: str = ""
    attempts: int = 0
    completed_at: dt.datetime | None = None

    def is_open(self, now: dt.datetime) -> bool:
        """Not completed and not expired."""
        return self.completed_at is None and now < self.expires_at
