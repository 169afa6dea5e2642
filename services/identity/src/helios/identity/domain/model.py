"""Accounts and sessions as the use cases see them."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass

__all__ = [
    "EmailTokenPurpose",
    "Org",
    "OrgAuthPolicy",
    "PendingSecondFactor",
    "Session",
    "SignInMethod",
    "User",
]


@dataclass(frozen=True, slots=True)
class User:
    """A person's account; `password_hash` is an argon2id PHC string with its parameters."""

    id: uuid.UUID
    email: str
    display_name: str
    password_hash: str
    created_at: dt.datetime
    email_verified_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in session; only the sha256 of its token is ever stored."""

    id: uuid.UUID
    user_id: uuid.UUID
    token_hash: bytes
    created_at: dt.datetime
    expires_at: dt.datetime
    ip: str
    user_agent: str
    org_id: uuid.UUID | None = None
    revoked_at: dt.datetime | None = None
    method: str = "password"
    impersonator_id: uuid.UUID | None = None
    last_seen_at: dt.datetime | None = None

    def is_active(self, now: dt.datetime) -> bool:
        """Not revoked and not past its absolute expiry."""
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class OrgAuthPolicy:
    """How an org's members must sign in (A3, A8)."""

    require_mfa: bool = False
    magic_link_enabled: bool = False


@dataclass(frozen=True, slots=True)
class Org:
    """A tenant."""

    id: uuid.UUID
    slug: str
    name: str
    created_at: dt.datetime
    auth_policy: OrgAuthPolicy = OrgAuthPolicy()


class SignInMethod(enum.StrEnum):
    """How a session was opened or a sign-in attempted (sessions.method, login history)."""

    PASSWORD = "password"  # noqa: S105 - a method name, not a password
    MAGIC_LINK = "magic_link"
    TOTP = "totp"
    BACKUP_CODE = "backup_code"
    EMAIL_OTP = "email_otp"
    PUSH = "push"
    IMPERSONATION = "impersonation"


@dataclass(frozen=True, slots=True)
class PendingSecondFactor:
    """A sign-in that passed its first factor and waits for a second (A3). `token` is shown to
    the client once; only its hash is stored."""

    token: str
    methods: tuple[SignInMethod, ...]
    expires_at: dt.datetime


class EmailTokenPurpose(enum.StrEnum):
    """What an e-mailed one-time token may be used for (stored as its value)."""

    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"  # noqa: S105 - a purpose name, not a password
    MAGIC_LINK = "magic_link"
