"""E-mailed one-time codes finishing a sign-in (A3): 6 digits, short-lived, few attempts."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass

__all__ = ["EMAIL_OTP_MAX_SENDS", "EMAIL_OTP_TTL", "EmailOtp", "hash_email_otp", "new_email_otp"]

EMAIL_OTP_TTL = dt.timedelta(minutes=10)
EMAIL_OTP_MAX_SENDS = 5
"""Mails one challenge may send (a resend replaces the code; wrong codes count on the challenge)."""


@dataclass(frozen=True, slots=True)
class EmailOtp:
    """The code of a challenge as stored: only its hash."""

    challenge_id: uuid.UUID
    code_hash: bytes
    expires_at: dt.datetime
    sends: int = 1


def new_email_otp() -> str:
    """Six random decimal digits."""
    return f"{secrets.randbelow(1_000_000):06d}"


def hash_email_otp(challenge_id: uuid.UUID, code: str) -> bytes:
    """The sha256 of a code, salted with its challenge (one challenge's code says nothing of
    another's)."""
    return hashlib.sha256(challenge_id.bytes + code.strip().encode()).digest()
