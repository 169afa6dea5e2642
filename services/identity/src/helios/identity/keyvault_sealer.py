"""Per-row secrets of identity (TOTP secrets) sealed with keyvault's per-row helper (RowCipher)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc

from helios.kernel.errors import UnavailableError
from helios.kernel.row_secrets import GrpcDataKeyClient, RowCipher
from helios.proto.keyvault.v1 import keyvault_pb2 as kv

if TYPE_CHECKING:
    from helios.proto.keyvault.v1.keyvault_pb2_grpc import KeyvaultServiceAsyncStub

__all__ = ["KeyvaultRowSealer"]

_TIMEOUT = 5.0


class KeyvaultRowSealer:
    """A RowSealer over a RowCipher in one org (the platform org), calling keyvault as this
    service's mTLS identity. The org's encryption key named `key_name` is found by listing its
    keys, or created (AES-256-GCM) on first use; its id is cached."""

    def __init__(self, stub: KeyvaultServiceAsyncStub, org_id: str, key_name: str) -> None:
        self._stub = stub
        self._org = org_id
        self._key_name = key_name
        self._key_id = ""
        self._lock = asyncio.Lock()
        self._cipher = RowCipher(GrpcDataKeyClient(stub), lambda _org: self._key_id)

    async def seal(self, table: str, column: str, row_id: str, plaintext: bytes) -> bytes:
        await self._ensure_key()
        return await self._cipher.encrypt(self._org, table, column, row_id, plaintext)

    async def unseal(self, table: str, column: str, row_id: str, sealed: bytes) -> bytes:
        return await self._cipher.decrypt(self._org, table, column, row_id, sealed)

    async def _ensure_key(self) -> None:
        async with self._lock:
            if self._key_id:
                return
            try:
                key = await self._find() or await self._create()
            except grpc.aio.AioRpcError as error:
                if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise UnavailableError("keyvault is unavailable, try again later") from None
                raise
            self._key_id = key.key_id

    async def _find(self) -> kv.Key | None:
        token = ""
        while True:
            page = await self._stub.ListKeys(
                kv.ListKeysRequest(
                    org_id=self._org, purpose=kv.KEY_PURPOSE_ENCRYPTION, page_token=token
                ),
                timeout=_TIMEOUT,
            )
            for key in page.keys:
                if key.name == self._key_name:
                    return key
            token = page.next_page_token
            if not token:
                return None

    async def _create(self) -> kv.Key:
        try:
            reply = await self._stub.CreateKey(
                kv.CreateKeyRequest(
                    org_id=self._org,
                    name=self._key_name,
                    purpose=kv.KEY_PURPOSE_ENCRYPTION,
                    algorithm=kv.KEY_ALGORITHM_AES_256_GCM,
                ),
                timeout=_TIMEOUT,
            )
            return reply.key
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise
        found = await self._find()  # another replica created it just now
        if found is None:
            raise UnavailableError("the sealing key vanished, try again later")
        return found
