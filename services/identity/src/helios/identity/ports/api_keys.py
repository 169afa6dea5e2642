"""Storage port of API keys for machine callers."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Protocol

from helios.identity.domain.api_keys import ApiKey

__all__ = ["ApiKeyTransaction"]


class ApiKeyTransaction(Protocol):
    """Reads and writes of this area inside an identity transaction."""

    async def add_api_key(self, key: ApiKey) -> None:
        """Insert a new key (its id is fresh)."""
        ...

    async def api_key_by_id(self, key_id: uuid.UUID) -> ApiKey | None:
        """The key, revoked or expired ones included, or None."""
        ...

    async def api_keys_of_org(
        self, org_id: uuid.UUID, created_by: uuid.UUID | None = None
    ) -> list[ApiKey]:
        """The org's keys (only those `created_by` made, when given), newest first, at most
        1000."""
        ...

    async def revoke_api_key(self, key_id: uuid.UUID, at: dt.datetime) -> bool:
        """Mark the key revoked (idempotent); True when it was not revoked until now."""
        ...

    async def revoke_api_keys_of(
        self, org_id: uuid.UUID, user_id: uuid.UUID, at: dt.datetime
    ) -> list[uuid.UUID]:
        """Revoke every unrevoked key the user made in the org; returns their ids."""
        ...

    async def touch_api_key(self, key_id: uuid.UUID, at: dt.datetime, every: dt.timedelta) -> None:
        """Record a use at `at`, unless one was recorded less than `every` before (so a busy
        key does not write on every request)."""
        ...
