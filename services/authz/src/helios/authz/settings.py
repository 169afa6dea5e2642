"""Authz's settings (HELIOS_* variables): the platform org, its root user, cache freshness."""

from __future__ import annotations

from pydantic import Field

from helios.kernel.settings import ServiceSettings

__all__ = ["AuthzSettings"]


class AuthzSettings(ServiceSettings):
    """`platform_org_id` is the org whose root role holders may use platform.* permissions;
    `root_user_id` is who `python -m helios.authz seed-root` makes the root (Z6)."""

    platform_org_id: str = Field(default="platform", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    root_user_id: str = Field(default="", max_length=64)
    decision_cache_ttl_seconds: float = Field(
        default=1.0, ge=0, le=30, description="how stale a minimize_latency decision may be"
    )
