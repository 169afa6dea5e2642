"""KeyvaultService over gRPC: proto -> use case -> proto. RPCs not listed answer UNIMPLEMENTED."""

from __future__ import annotations

import datetime as dt
from typing import Any

import grpc

from helios.kernel.context import current_call
from helios.kernel.errors import InvalidArgumentError
from helios.keyvault.attachments import AttachmentService
from helios.keyvault.domain.ciphertext import Kind
from helios.keyvault.rpc.attachments import AttachmentRpc
from helios.keyvault.rpc.convert import (
    aad_from_proto,
    inventory_to_proto,
    jwk_to_proto,
    key_to_proto,
)
from helios.keyvault.rpc.secrets import SecretsRpc
from helios.keyvault.secrets_store import SecretStore
from helios.keyvault.service import KeyvaultService
from helios.proto.keyvault.v1 import keyvault_pb2, keyvault_pb2_grpc

__all__ = ["KeyvaultServicer"]

Context = grpc.aio.ServicerContext[Any, Any]


class KeyvaultServicer(SecretsRpc, AttachmentRpc, keyvault_pb2_grpc.KeyvaultServiceServicer):
    """Thin handlers; errors are mapped to status codes by the kernel interceptor."""

    def __init__(
        self, service: KeyvaultService, secrets: SecretStore, attachments: AttachmentService
    ) -> None:
        self._service = service
        self._secrets = secrets
        self._attachments = attachments

    async def CreateKey(  # noqa: N802 - gRPC method name
        self, request: keyvault_pb2.CreateKeyRequest, context: Context
    ) -> keyvault_pb2.CreateKeyResponse:
        period = (
            request.rotation_period.ToTimedelta() if request.HasField("rotation_period") else None
        )
        key = await self._service.create_key(
            current_call(),
            request.org_id,
            request.name,
            request.purpose,
            request.algorithm,
            period,
        )
        return keyvault_pb2.CreateKeyResponse(key=key_to_proto(key))

    async def GetKey(  # noqa: N802 - gRPC method name
        self, request: keyvault_pb2.GetKeyRequest, context: Context
    ) -> keyvault_pb2.GetKeyResponse:
        key = await self._service.get_key(current_call(), request.org_id, request.key_id)
        return keyvault_pb2.GetKeyResponse(key=key_to_proto(key))

    async def ListKeys(  # noqa: N802 - gRPC method name
        self, request: keyvault_pb2.ListKeysRequest, context: Context
    ) -> keyvault_pb2.ListKeysResponse:
        keys = await self._service.list_keys(
            current_call(), request.org_id, request.purpose, request.include_destroyed
        )
        return keyvault_pb2.ListKeysResponse(keys=[key_to_proto(k) for k in keys])

    async def RotateKey(  # noqa: N802 - gRPC method name
        self, request: keyvault_pb2.RotateKeyRequest, context: Context
    ) -> keyvault_pb2.RotateKeyResponse:
        key = await self._service.rotate_key(current_call(), request.org_id, request.key_id)
        return keyvault_pb2.RotateKeyResponse(
            key=key_to_proto(key), new_version=key.current_version
        )

    async def SetMinDecryptionVersion(  # noqa: N802 - gRPC method name
        self, request: keyvault_pb2.SetMinDecryptionVersionRequest, context: Context
    ) -> keyvault_pb2.SetMinDecryptionVersionResponse:
        key = await self._service.set_min_decryption_version(
            current_call(), request.org_id, request.key_id, request.min_decryption_version
        )
        return keyvault_pb2.SetMinDecryptionVersionResponse(key=key_to_proto(key))

    async def DestroyKeyVersion(  # noqa: N802 - gRPC method name
        self, request: keyvault_pb2.DestroyKeyVersionRequest, context: Context
    ) -> keyvault_pb2.DestroyKeyVersionResponse:
        if request.version < 1:
            raise InvalidArgumentError("version must be at least 1", field="version")
        key = await self._service.destroy(
            current_call(), request.org_id, request.key_id, request.version
        )
        return keyvault_pb2.DestroyKeyVersionResponse(key=key_to_proto(key))

    async def DestroyKey(  # noqa: N802 - gRPC method name
        self, request: keyvault_pb2.DestroyKeyRequest, context: Context
    ) -> keyvault_pb2.DestroyKeyResponse:
        key = await self._service.destroy(current_call(), request.org_id, request.key_id, None)
        return keyvault_pb2.DestroyKeyResponse(key=key_to_proto(key))

    async def KeyInventory(  # noqa: N802 - gRPC method name
        self, request: keyvault_pb2.KeyInventoryRequest, context: Context
    ) -> keyvault_pb2.KeyInventoryResponse:
        key = await self._service.get_key(current_call(), request.org_id, request.key_id)
        response = keyvault_pb2.KeyInventoryResponse(
            key_id=str(key.id), versions=inventory_to_proto(key)
        )
        response.as_of_time.FromDatetime(dt.datetime.now(dt.UTC))
        return response

    async def Encrypt(  # noqa: N802 - gRPC method name
        self, request: keyvault_pb2.EncryptRequest, context: Context
    ) -> keyvault_pb2.EncryptResponse:
        sealed = await self._service.encrypt(
            current_call(),
            request.org_id,
            request.key_id,
            request.plaintext,
            aad_from_proto(request.context),
        )
        return keyvault_pb2.EncryptResponse(
            ciphertext=sealed.blob, key_id=str(sealed.key_id), key_version=sealed.version
        )

    async def Decrypt(  # noqa: N802 - gRPC method name
        self, request: keyvault_pb2.DecryptRequest, context: Context
    ) -> keyvault_pb2.DecryptResponse:
        opened = await self._service.decrypt(
            current_call(),
            request.org_id,
            request.ciphertext,
            aad_from_proto(request.context),
            kind=Kind.CIPHERTEXT,
        )
        return keyvault_pb2.DecryptResponse(
            plaintext=opened.blob, key_id=str(opened.key_id), key_version=opened.version
        )

    async def GenerateDataKey(  # noqa: N802 - gRPC method name
        self, request: keyvault_pb2.GenerateDataKeyRequest, context: Context
    ) -> keyvault_pb2.GenerateDataKeyResponse:
        data_key, sealed = await self._service.generate_data_key(
            current_call(), request.org_id, request.key_id, aad_from_proto(request.context)
        )
        return keyvault_pb2.GenerateDataKeyResponse(
            plaintext_data_key=data_key,
            wrapped_data_key=sealed.blob,
            key_id=str(sealed.key_id),
            key_version=sealed.version,
        )

    async def DecryptDataKey(  # noqa: N802 - gRPC method name
        self, request: keyvault_pb2.DecryptDataKeyRequest, context: Context
    ) -> keyvault_pb2.DecryptDataKeyResponse:
        opened = await self._service.decrypt(
            current_call(),
            request.org_id,
            request.wrapped_data_key,
            aad_from_proto(request.context),
            kind=Kind.DATA_KEY,
        )
        return keyvault_pb2.DecryptDataKeyResponse(
            plaintext_data_key=opened.blob, key_id=str(opened.key_id), key_version=opened.version
        )

    async def Rewrap(  # noqa: N802 - gRPC method name
        self, request: keyvault_pb2.RewrapRequest, context: Context
    ) -> keyvault_pb2.RewrapResponse:
        sealed, source_version = await self._service.rewrap(
            current_call(), request.org_id, request.ciphertext, aad_from_proto(request.context)
        )
        return keyvault_pb2.RewrapResponse(
            ciphertext=sealed.blob,
            key_id=str(sealed.key_id),
            key_version=sealed.version,
            source_key_version=source_version,
        )

    async def Sign(  # noqa: N802 - gRPC method name
        self, request: keyvault_pb2.SignRequest, context: Context
    ) -> keyvault_pb2.SignResponse:
        which = request.WhichOneof("input")
        if which is None:
            raise InvalidArgumentError("message is required", field="message")
        prehashed = which == "digest_sha256"
        signature, key, version = await self._service.sign(
            current_call(),
            request.org_id,
            request.key_id,
            request.key_version,
            request.digest_sha256 if prehashed else request.message,
            prehashed=prehashed,
        )
        return keyvault_pb2.SignResponse(
            signature=signature, key_id=str(key.id), key_version=version, kid=f"{key.id}:{version}"
        )

    async def GetPublicKey(  # noqa: N802 - gRPC method name
        self, request: keyvault_pb2.GetPublicKeyRequest, context: Context
    ) -> keyvault_pb2.GetPublicKeyResponse:
        jwks = await self._service.public_keys(
            current_call(), request.org_id, request.key_id, request.key_version
        )
        return keyvault_pb2.GetPublicKeyResponse(keys=[jwk_to_proto(j) for j in jwks])
