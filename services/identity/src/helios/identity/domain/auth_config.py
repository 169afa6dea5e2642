"""The deployment's sign-in configuration (C1): the model, its validation and its audit diff."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from helios.kernel.errors import InvalidArgumentError

__all__ = [
    "DEFAULT_AUTH_CONFIG",
    "DEFAULT_REMEMBER_DEVICE_DAYS",
    "MAX_OIDC_PROVIDERS",
    "AuthConfig",
    "OidcProvider",
    "StoredAuthConfig",
    "audit_diff",
    "validated",
]

DEFAULT_REMEMBER_DEVICE_DAYS = 30
MAX_REMEMBER_DEVICE_DAYS = 365
MIN_IDLE_TIMEOUT_SECONDS = 60
MAX_IDLE_TIMEOUT_SECONDS = 30 * 24 * 3600
MAX_OIDC_PROVIDERS = 20
_PROVIDER_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_CLIENT_ID = re.compile(r"[\x21-\x7e]{1,255}")
_MAX_ISSUER = 2048
_MAX_SECRET = 1024


@dataclass(frozen=True, slots=True)
class OidcProvider:
    """An OpenID Connect provider. `client_secret` holds a plaintext secret only on its way in
    (an update); configurations read back carry "" (secrets stay sealed in the store, and every
    stored provider has one)."""

    provider_id: str
    issuer: str
    client_id: str
    client_secret: str = ""
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Deployment-wide switches; `version` increases with every stored update (0: never set).
    `remember_device_days` is always 1..365 once validated; `session_idle_timeout_seconds` is
    0 for "no deployment-wide idle timeout"."""

    magic_link_enabled: bool = False
    mfa_required: bool = False
    remember_device_days: int = DEFAULT_REMEMBER_DEVICE_DAYS
    session_idle_timeout_seconds: int = 0
    oidc_providers: tuple[OidcProvider, ...] = ()
    version: int = 0


DEFAULT_AUTH_CONFIG = AuthConfig()
"""What a deployment that never stored a configuration runs with."""


@dataclass(frozen=True, slots=True)
class StoredAuthConfig:
    """The configuration as stored: providers without plaintext secrets, and each provider's
    sealed client secret (a keyvault row secret) by provider id."""

    config: AuthConfig = DEFAULT_AUTH_CONFIG
    sealed_secrets: dict[str, bytes] = field(default_factory=dict)


def _refuse(message: str, field_name: str) -> InvalidArgumentError:
    return InvalidArgumentError(message, field=f"config.{field_name}")


def _check_issuer(issuer: str, at: str) -> None:
    if not issuer or len(issuer) > _MAX_ISSUER:
        raise _refuse(f"{at}.issuer is required (at most {_MAX_ISSUER} characters)", f"{at}.issuer")
    try:
        parts = urlsplit(issuer)
        host, _ = parts.hostname, parts.port  # .port raises ValueError for a malformed port
    except ValueError:
        raise _refuse(f"{at}.issuer is not a valid URL", f"{at}.issuer") from None
    if parts.scheme != "https" or not host:
        raise _refuse(f"{at}.issuer must be an https:// URL with a host", f"{at}.issuer")
    if parts.query or parts.fragment or "@" in parts.netloc or any(c.isspace() for c in issuer):
        raise _refuse(
            f"{at}.issuer must have no query, fragment, user info or spaces", f"{at}.issuer"
        )


def _check_provider(provider: OidcProvider, at: str) -> None:
    if not _PROVIDER_ID.fullmatch(provider.provider_id):
        raise _refuse(
            f"{at}.provider_id must be 1-63 characters of a-z, 0-9, '-' or '_', starting with a"
            " letter or digit",
            f"{at}.provider_id",
        )
    _check_issuer(provider.issuer, at)
    if not _CLIENT_ID.fullmatch(provider.client_id):
        raise _refuse(
            f"{at}.client_id is required: 1-255 printable characters without spaces",
            f"{at}.client_id",
        )
    if len(provider.client_secret) > _MAX_SECRET:
        raise _refuse(
            f"{at}.client_secret is longer than {_MAX_SECRET} characters", f"{at}.client_secret"
        )


def validated(config: AuthConfig) -> AuthConfig:
    """`config` with its defaults filled in (remember_device_days 0 -> 30), or
    InvalidArgumentError naming the first field that is out of bounds."""
    days = config.remember_device_days
    if days != 0 and not 1 <= days <= MAX_REMEMBER_DEVICE_DAYS:
        raise _refuse(
            f"remember_device_days must be 1..{MAX_REMEMBER_DEVICE_DAYS} (0 for the default,"
            f" {DEFAULT_REMEMBER_DEVICE_DAYS})",
            "remember_device_days",
        )
    idle = config.session_idle_timeout_seconds
    if idle != 0 and not MIN_IDLE_TIMEOUT_SECONDS <= idle <= MAX_IDLE_TIMEOUT_SECONDS:
        raise _refuse(
            f"session_idle_timeout_seconds must be 0 (none) or {MIN_IDLE_TIMEOUT_SECONDS}.."
            f"{MAX_IDLE_TIMEOUT_SECONDS} (30 days)",
            "session_idle_timeout_seconds",
        )
    if len(config.oidc_providers) > MAX_OIDC_PROVIDERS:
        raise _refuse(
            f"at most {MAX_OIDC_PROVIDERS} OIDC providers may be configured", "oidc_providers"
        )
    seen: set[str] = set()
    for index, provider in enumerate(config.oidc_providers):
        at = f"oidc_providers[{index}]"
        _check_provider(provider, at)
        if provider.provider_id in seen:
            raise _refuse(
                f"{at}.provider_id {provider.provider_id!r} is used twice: ids must be unique",
                f"{at}.provider_id",
            )
        seen.add(provider.provider_id)
    if config.version < 0:
        raise _refuse("version must not be negative", "version")
    return replace(config, remember_device_days=days or DEFAULT_REMEMBER_DEVICE_DAYS)


def _provider_view(provider: OidcProvider) -> dict[str, object]:
    return {"issuer": provider.issuer, "client_id": provider.client_id, "enabled": provider.enabled}


def audit_diff(
    before: AuthConfig, after: AuthConfig, secrets_set: Sequence[str]
) -> dict[str, object]:
    """What an update changed, as {"field": {"from", "to"}}, providers by id (added, removed,
    changed) and the ids whose client secret was set; never a secret."""
    diff: dict[str, object] = {"version": {"from": before.version, "to": after.version}}
    for name in (
        "magic_link_enabled",
        "mfa_required",
        "remember_device_days",
        "session_idle_timeout_seconds",
    ):
        old, new = getattr(before, name), getattr(after, name)
        if old != new:
            diff[name] = {"from": old, "to": new}
    old_providers = {p.provider_id: _provider_view(p) for p in before.oidc_providers}
    new_providers = {p.provider_id: _provider_view(p) for p in after.oidc_providers}
    providers: dict[str, object] = {}
    added = [new_providers[i] | {"provider_id": i} for i in new_providers if i not in old_providers]
    removed = [i for i in old_providers if i not in new_providers]
    changed = {
        i: {"from": old_providers[i], "to": view}
        for i, view in new_providers.items()
        if i in old_providers and old_providers[i] != view
    }
    for key, value in (
        ("added", added),
        ("removed", removed),
        ("changed", changed),
        ("client_secret_set", sorted(secrets_set)),
    ):
        if value:
            providers[key] = value
    if providers:
        diff["oidc_providers"] = providers
    return diff
