"""The deployment's sign-in configuration (C1), as the use cases read it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_AUTH_CONFIG", "AuthConfig", "OidcProvider"]


@dataclass(frozen=True, slots=True)
class OidcProvider:
    """An OpenID Connect provider; `client_secret` is plaintext only in memory."""

    provider_id: str
    issuer: str
    client_id: str
    client_secret: str = ""
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Deployment-wide switches; `version` increases with every stored update (0: never set)."""

    magic_link_enabled: bool = False
    mfa_required: bool = False
    remember_device_days: int = 30
    session_idle_timeout_seconds: int = 0
    oidc_providers: tuple[OidcProvider, ...] = ()
    version: int = 0


DEFAULT_AUTH_CONFIG = AuthConfig()
"""What a deployment that never stored a configuration runs with."""
