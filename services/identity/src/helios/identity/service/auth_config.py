"""The deployment's provider configuration (C1): read and replace it (platform root only), and
the live copy every use case reads without a restart."""

from __future__ import annotations

from dataclasses import replace

from google.protobuf.message import Message

from helios.identity.domain.auth_config import (
    AuthConfig,
    OidcProvider,
    StoredAuthConfig,
    audit_diff,
    validated,
)
from helios.identity.ports import Authorizer, Clock, UnitOfWork
from helios.identity.ports.mfa import RowSealer
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    PermissionDeniedError,
    UnavailableError,
)
from helios.proto.common.v1 import principal_pb2

__all__ = [
    "AUTH_CONFIG_CHANGED",
    "SEALED_COLUMN",
    "SEALED_TABLE",
    "AuthConfigService",
    "LiveAuthConfig",
    "secret_row",
]

AUTH_CONFIG_READ = "platform.authConfig.read"
AUTH_CONFIG_UPDATE = "platform.authConfig.update"
AUTH_CONFIG_CHANGED = "identity.authConfig.update"
"""The audited action of an update; its audit event doubles as the change announcement."""
_RESOURCE_TYPE = "identity.authConfig"
_RESOURCE_ID = "auth"
SEALED_TABLE = "identity.platform_settings"
SEALED_COLUMN = "auth_config"
"""Where sealed client secrets live (bound into each sealed value with its row id)."""


def secret_row(provider_id: str) -> str:
    """The row id a provider's client secret is sealed for: moved to another provider, it
    does not open."""
    return f"oidc/{provider_id}"


def _stale(sent: int, current: int | None = None) -> FailedPreconditionError:
    now = "another update was just saved" if current is None else f"it is at version {current}"
    return FailedPreconditionError(
        f"the sign-in configuration changed since version {sent} ({now}): read it again and"
        " reapply your change",
        field="config.version",
    )


class AuthConfigService:
    """GetAuthConfig and UpdateAuthConfig. Both are platform permissions, asked of authz in
    `platform_org`, which also owns the update's audit event and the key sealing the secrets."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        authorizer: Authorizer,
        sealer: RowSealer,
        platform_org: str,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._authorizer = authorizer
        self._sealer = sealer
        self._platform_org = platform_org

    async def _require(self, ctx: CallContext, permission: str) -> principal_pb2.Principal:
        """The caller, when authz lets them use `permission`. Platform permissions are decided
        in the platform org whatever org the session acts in (the root's session may have
        none): authz allows them only to the holder of the root role there."""
        principal = ctx.require_principal()
        in_platform = principal_pb2.Principal()
        in_platform.CopyFrom(principal)
        in_platform.org_id = self._platform_org
        if not await self._authorizer.allowed(in_platform, permission, org_id=self._platform_org):
            raise PermissionDeniedError(
                "only the platform root may see or change the sign-in configuration"
            )
        return principal

    async def get(self, ctx: CallContext) -> AuthConfig:
        """The stored configuration (its secrets never leave the store)."""
        await self._require(ctx, AUTH_CONFIG_READ)
        async with self._uow() as tx:
            return (await tx.auth_config()).config

    async def update(
        self, proposed: AuthConfig, ctx: CallContext, request: Message | None
    ) -> AuthConfig:
        """Replace the configuration with `proposed`, whose version must be the stored one
        (FailedPreconditionError otherwise). A provider's empty client_secret keeps its stored
        one; a new provider needs one. Audited (without secrets); returns the stored result."""
        principal = await self._require(ctx, AUTH_CONFIG_UPDATE)
        config = validated(proposed)
        fresh = await self._seal_given(config)  # keyvault is called outside the transaction
        async with self._uow() as tx:
            stored = await tx.auth_config()
            current = stored.config.version
            if proposed.version != current:
                raise _stale(proposed.version, current)
            sealed = {
                p.provider_id: fresh.get(p.provider_id) or _kept(i, p, stored)
                for i, p in enumerate(config.oidc_providers)
            }
            saved = replace(
                config,
                oidc_providers=tuple(replace(p, client_secret="") for p in config.oidc_providers),
                version=current + 1,
            )
            written = await tx.save_auth_config(
                StoredAuthConfig(saved, sealed), current, principal.actor_id, self._clock()
            )
            if not written:
                raise _stale(proposed.version)
            await tx.record(
                Change(
                    action=AUTH_CONFIG_CHANGED,
                    resource_type=_RESOURCE_TYPE,
                    resource_id=_RESOURCE_ID,
                    org_id=self._platform_org,
                    request=request,
                    diff=audit_diff(stored.config, saved, list(fresh)),
                ),
                ctx,
            )
        return saved

    async def _seal_given(self, config: AuthConfig) -> dict[str, bytes]:
        """The sealed form of every client secret `config` carries, by provider id."""
        return {
            p.provider_id: await self._sealer.seal(
                SEALED_TABLE, SEALED_COLUMN, secret_row(p.provider_id), p.client_secret.encode()
            )
            for p in config.oidc_providers
            if p.client_secret
        }


def _kept(index: int, provider: OidcProvider, stored: StoredAuthConfig) -> bytes:
    """The stored sealed secret of a provider sent without one; a new provider needs one."""
    kept = stored.sealed_secrets.get(provider.provider_id)
    if kept is None:
        raise InvalidArgumentError(
            f"oidc_providers[{index}] ({provider.provider_id!r}) is new: its client_secret is"
            " required",
            field=f"config.oidc_providers[{index}].client_secret",
        )
    return kept


class LiveAuthConfig:
    """The AuthConfigSource of a running replica: the stored configuration as of the last
    `reload()` (events/auth_config_listener.py reloads on every announced change and
    periodically). The process loads it before serving (wiring.py); should `current()` still be
    asked before the first load, it raises UnavailableError: no sign-in runs under a
    configuration this replica has not read."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._config: AuthConfig | None = None

    def current(self) -> AuthConfig:
        if self._config is None:
            raise UnavailableError("the sign-in configuration is not loaded yet, try again")
        return self._config

    async def reload(self) -> AuthConfig:
        """Read the stored configuration and use it from now on (never an older version than
        the one in use: a slow read cannot undo a newer one). Raises what the store raises."""
        async with self._uow() as tx:
            loaded = (await tx.auth_config()).config
        if self._config is None or loaded.version >= self._config.version:
            self._config = loaded
        return self._config
