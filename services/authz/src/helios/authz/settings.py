"""Authz's settings (HELIOS_* variables): the platform org, its root user, cache freshness."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from helios.kernel.settings import ServiceSettings

__all__ = ["AuthzSettings"]


class AuthzSettings(ServiceSettings):
    """`platform_org_id` is the org whose root role holders may use platform.* permissions;
    `root_user_id` is who `python -m helios.authz seed-root` makes the root (Z6);
    `product_services` are the product services' mTLS identities (e.g. `recruitment`)."""

    @field_validator("product_services")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(r"[a-z][a-zA-Z0-9]{0,62}", name):
                raise ValueError("a product service name is a permission module: [a-z][a-zA-Z0-9]*")
        return value

    platform_org_id: str = Field(default="platform", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    root_user_id: str = Field(default="", max_length=64)
    product_services: list[str] = Field(
        default_factory=list,
        description="mTLS identities of product services that register <name>.* permissions"
        " and ask for decisions (JSON list)",
    )
    decision_cache_ttl_seconds: float = Field(
        default=1.0, ge=0, le=30, description="how stale a minimize_latency decision may be"
    )
