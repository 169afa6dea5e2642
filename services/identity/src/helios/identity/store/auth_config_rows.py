"""PostgreSQL rows of the provider configuration (C1), mixed into identity's transaction."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from helios.identity.domain.auth_config import (
    DEFAULT_AUTH_CONFIG,
    AuthConfig,
    OidcProvider,
    StoredAuthConfig,
)
from helios.identity.store.tables import platform_settings

__all__ = ["AUTH_ROW", "AuthConfigRows"]

AUTH_ROW = "auth"
"""The key of the one platform_settings row."""


def _document(stored: StoredAuthConfig) -> dict[str, Any]:
    """The JSON stored in auth_config (sealed secrets base64-encoded; no plaintext)."""
    config = stored.config
    return {
        "magic_link_enabled": config.magic_link_enabled,
        "mfa_required": config.mfa_required,
        "remember_device_days": config.remember_device_days,
        "session_idle_timeout_seconds": config.session_idle_timeout_seconds,
        "oidc_providers": [
            {
                "provider_id": p.provider_id,
                "issuer": p.issuer,
                "client_id": p.client_id,
                "enabled": p.enabled,
                "client_secret_sealed": base64.b64encode(
                    stored.sealed_secrets[p.provider_id]
                ).decode("ascii"),
            }
            for p in config.oidc_providers
        ],
    }


def _stored(document: dict[str, Any], version: int) -> StoredAuthConfig:
    """The configuration of a stored document; keys it lacks take their defaults."""
    d = DEFAULT_AUTH_CONFIG
    providers = document.get("oidc_providers", [])
    config = AuthConfig(
        magic_link_enabled=bool(document.get("magic_link_enabled", d.magic_link_enabled)),
        mfa_required=bool(document.get("mfa_required", d.mfa_required)),
        remember_device_days=int(document.get("remember_device_days", d.remember_device_days)),
        session_idle_timeout_seconds=int(
            document.get("session_idle_timeout_seconds", d.session_idle_timeout_seconds)
        ),
        oidc_providers=tuple(
            OidcProvider(
                provider_id=str(p["provider_id"]),
                issuer=str(p["issuer"]),
                client_id=str(p["client_id"]),
                enabled=bool(p.get("enabled", True)),
            )
            for p in providers
        ),
        version=version,
    )
    sealed = {
        str(p["provider_id"]): base64.b64decode(p["client_secret_sealed"])
        for p in providers
        if p.get("client_secret_sealed")
    }
    return StoredAuthConfig(config=config, sealed_secrets=sealed)


class AuthConfigRows:
    """Implements the area's transaction port over the transaction's session `_s`."""

    _s: AsyncSession

    async def auth_config(self) -> StoredAuthConfig:
        row = (
            await self._s.execute(
                select(platform_settings.c.auth_config, platform_settings.c.version).where(
                    platform_settings.c.key == AUTH_ROW
                )
            )
        ).first()
        if row is None:
            return StoredAuthConfig()
        return _stored(row.auth_config, row.version)

    async def save_auth_config(
        self, stored: StoredAuthConfig, expected_version: int, updated_by: str, at: dt.datetime
    ) -> bool:
        values = {
            "auth_config": _document(stored),
            "version": stored.config.version,
            "updated_at": at,
            "updated_by": updated_by[:64],
        }
        # The first save inserts; later ones update only the version they read (a concurrent
        # saver of the same version waits for the winner's commit, then matches no row).
        statement = (
            pg_insert(platform_settings)
            .values(key=AUTH_ROW, **values)
            .on_conflict_do_update(
                index_elements=[platform_settings.c.key],
                set_=values,
                where=platform_settings.c.version == expected_version,
            )
            .returning(platform_settings.c.key)
        )
        return (await self._s.execute(statement)).first() is not None
