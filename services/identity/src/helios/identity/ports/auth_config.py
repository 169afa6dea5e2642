"""Storage port of the deployment's provider configuration (C1)."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from helios.identity.domain.auth_config import StoredAuthConfig

__all__ = ["AuthConfigTransaction"]


class AuthConfigTransaction(Protocol):
    """Reads and writes of this area inside an identity transaction."""

    async def auth_config(self) -> StoredAuthConfig:
        """The stored configuration with its sealed secrets; the defaults at version 0 when
        none was ever stored. Read-only."""
        ...

    async def save_auth_config(
        self, stored: StoredAuthConfig, expected_version: int, updated_by: str, at: dt.datetime
    ) -> bool:
        """Replace the configuration with `stored` (its config.version is the new version) if
        the stored version is still `expected_version`; False, writing nothing, when another
        update came first. Concurrent savers of one version: one wins, the others get False."""
        ...
