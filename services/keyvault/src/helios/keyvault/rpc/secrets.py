"""PutSecret / GetSecret / ListSecrets over gRPC: a mixin of KeyvaultServicer (E7).

The servicer that mixes it in sets `self._secrets` to the SecretStore. Values go from the request
to the store and from the store to the response only: they are never logged or put in an error.
"""

from __future__ import annotations

from typing import Any

import grpc

from helios.kernel.context import current_call
from helios.keyvault.secrets_store import SecretInfo, SecretStore
from helios.proto.keyvault.v1 import keyvault_pb2, keyvault_pb2_grpc

__all__ = ["SecretsRpc"]

Context = grpc.aio.ServicerContext[Any, Any]


def _metadata(info: SecretInfo) -> keyvault_pb2.SecretMetadata:
    message = keyvault_pb2.SecretMetadata(name=info.name, current_version=info.current_version)
    message.create_time.FromDatetime(info.created_at)
    message.update_time.FromDatetime(info.updated_at)
    return message


class SecretsRpc(keyvault_pb2_grpc.KeyvaultServiceServicer):
    """Platform secrets, root only (see helios.keyvault.secrets_store): a listed Helios service
    by its mTLS identity with no principal; a user principal gets PERMISSION_DENIED. A failed
    check-and-set is FAILED_PRECONDITION."""

    _secrets: SecretStore

    async def PutSecret(  # noqa: N802 - gRPC method name
        self, request: keyvault_pb2.PutSecretRequest, context: Context
    ) -> keyvault_pb2.PutSecretResponse:
        expected = request.expected_version if request.HasField("expected_version") else None
        written = await self._secrets.put(current_call(), request.name, request.value, expected)
        response = keyvault_pb2.PutSecretResponse(name=written.name, version=written.version)
        response.create_time.FromDatetime(written.created_at)
        return response

    async def GetSecret(  # noqa: N802 - gRPC method name
        self, request: keyvault_pb2.GetSecretRequest, context: Context
    ) -> keyvault_pb2.GetSecretResponse:
        secret = await self._secrets.get(current_call(), request.name, request.version)
        response = keyvault_pb2.GetSecretResponse(
            name=secret.name, version=secret.version, value=secret.value
        )
        response.create_time.FromDatetime(secret.created_at)
        return response

    async def ListSecrets(  # noqa: N802 - gRPC method name
        self, request: keyvault_pb2.ListSecretsRequest, context: Context
    ) -> keyvault_pb2.ListSecretsResponse:
        page, token = await self._secrets.list_secrets(
            current_call(), request.prefix, request.page_size, request.page_token
        )
        return keyvault_pb2.ListSecretsResponse(
            secrets=[_metadata(info) for info in page], next_page_token=token
        )
