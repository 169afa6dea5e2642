"""Links, lifetimes and limits of the account mails (verification, reset, magic links, alerts)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

__all__ = ["AccountMail", "hours"]

_PLATFORM_ORG = uuid.UUID(int=0)


@dataclass(frozen=True, slots=True)
class AccountMail:
    """Users belong to no org when they sign up, so account mails go out (and are DKIM-signed)
    as `platform_org_id`. `reset_max_per_hour` caps reset mails per account: further requests
    in the hour answer the same but send nothing."""

    public_url: str = "http://localhost:8080"
    platform_org_id: uuid.UUID = _PLATFORM_ORG
    verify_ttl: dt.timedelta = dt.timedelta(hours=24)
    reset_ttl: dt.timedelta = dt.timedelta(hours=1)
    reset_max_per_hour: int = 3

    def link(self, page: str, token: str) -> str:
        """The public URL of `page` carrying `token`."""
        return f"{self.public_url.rstrip('/')}/{page}?token={token}"


def hours(ttl: dt.timedelta) -> str:
    """`ttl` in words for a mail: "1 hour", "24 hours", "0.25 hours"."""
    count = ttl.total_seconds() / 3600
    return "1 hour" if count == 1 else f"{count:g} hours"
