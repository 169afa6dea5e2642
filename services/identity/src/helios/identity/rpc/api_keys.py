"""API key RPCs: CreateApiKey, RevokeApiKey, ListApiKeys, ResolveApiKey."""

from __future__ import annotations

from helios.identity.rpc.context import Context
from helios.identity.rpc.convert import api_key_to_proto
from helios.identity.service.bundle import IdentityServices
from helios.kernel.context import current_call
from helios.proto.identity.v1 import identity_pb2

__all__ = ["ApiKeyHandlers"]


class ApiKeyHandlers:
    """Thin handlers over ApiKeyService."""

    _services: IdentityServices

    async def CreateApiKey(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.CreateApiKeyRequest, context: Context
    ) -> identity_pb2.CreateApiKeyResponse:
        created = await self._services.api_keys.create(
            request.org_id,
            request.name,
            list(request.permissions),
            request.ttl_days,
            current_call(),
            request,
        )
        return identity_pb2.CreateApiKeyResponse(
            api_key_id=str(created.key.id), api_key=created.token
        )

    async def RevokeApiKey(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.RevokeApiKeyRequest, context: Context
    ) -> identity_pb2.RevokeApiKeyResponse:
        await self._services.api_keys.revoke(request.api_key_id, current_call(), request)
        return identity_pb2.RevokeApiKeyResponse()

    async def ListApiKeys(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.ListApiKeysRequest, context: Context
    ) -> identity_pb2.ListApiKeysResponse:
        keys = await self._services.api_keys.list_keys(request.org_id, current_call())
        return identity_pb2.ListApiKeysResponse(api_keys=[api_key_to_proto(key) for key in keys])

    async def ResolveApiKey(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.ResolveApiKeyRequest, context: Context
    ) -> identity_pb2.ResolveApiKeyResponse:
        resolved = await self._services.api_keys.resolve(request.api_key, current_call())
        return identity_pb2.ResolveApiKeyResponse(
            principal=resolved.principal,
            assertion=resolved.assertion,
            permissions=list(resolved.key.permissions),
        )
