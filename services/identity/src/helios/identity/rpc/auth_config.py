"""Provider configuration RPCs (C1): GetAuthConfig, UpdateAuthConfig."""

from __future__ import annotations

from helios.identity.rpc.context import Context
from helios.identity.rpc.convert import auth_config_from_proto, auth_config_to_proto
from helios.identity.service.bundle import IdentityServices
from helios.kernel.context import current_call
from helios.proto.identity.v1 import identity_pb2

__all__ = ["AuthConfigHandlers"]


class AuthConfigHandlers:
    """Thin handlers over AuthConfigService."""

    _services: IdentityServices

    async def GetAuthConfig(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.GetAuthConfigRequest, context: Context
    ) -> identity_pb2.GetAuthConfigResponse:
        config = await self._services.auth_config.get(current_call())
        return identity_pb2.GetAuthConfigResponse(config=auth_config_to_proto(config))

    async def UpdateAuthConfig(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.UpdateAuthConfigRequest, context: Context
    ) -> identity_pb2.UpdateAuthConfigResponse:
        config = await self._services.auth_config.update(
            auth_config_from_proto(request.config), current_call(), request
        )
        return identity_pb2.UpdateAuthConfigResponse(config=auth_config_to_proto(config))
