"""Remembered devices (A9): a browser that passed a second factor skips it for a while."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass

__all__ = ["DEVICE_PREFIX", "RememberedDevice", "new_device_token"]

DEVICE_PREFIX = "hld_"


@dataclass(frozen=True, slots=True)
class RememberedDevice:
    """A remembered browser; only the sha256 of its token is stored. `last_used_*` record the
    latest sign-in it skipped the second factor for (device history)."""

    id: uuid.UUID
    user_id: uuid.UUID
    token_hash: bytes
    created_at: dt.datetime
    expires_at: dt.datetime
    ip: str = ""
    user_agent: str = ""
    last_used_at: dt.datetime | None = None
    last_used_ip: str | None = None
    revoked_at: dt.datetime | None = None

    def is_active(self, now: dt.datetime) -> bool:
        """Not revoked and not expired."""
        return self.revoked_at is None and now < self.expires_at


def new_device_token() -> str:
    """A new remembered-device token (256 random bits)."""
    return DEVICE_PREFIX + secrets.token_urlsafe(32)
