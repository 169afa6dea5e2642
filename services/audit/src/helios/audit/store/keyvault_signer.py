"""Checkpoint signing by keyvault: an Ed25519 platform key that never leaves keyvault."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc

from helios.kernel.clients import LazyChannel
from helios.kernel.tls import CertFiles
from helios.proto.keyvault.v1 import keyvault_pb2 as kv
from helios.proto.keyvault.v1 import keyvault_pb2_grpc

if TYPE_CHECKING:
    from helios.proto.keyvault.v1.keyvault_pb2_grpc import KeyvaultServiceAsyncStub

__all__ = ["KEY_NAME", "KeyvaultSigner"]

KEY_NAME = "audit-checkpoints"
_TIMEOUT = 10.0


class KeyvaultSigner:
    """CheckpointSigner over keyvault's Sign / GetPublicKey as the `audit` service identity. The
    platform key `audit-checkpoints` is created on first use (or found by name)."""

    def __init__(self, target: str, certs: CertFiles) -> None:
        self._channel = LazyChannel(target, certs)
        self._key_id = ""
        self._lock = asyncio.Lock()

    def _stub(self) -> KeyvaultServiceAsyncStub:
        return keyvault_pb2_grpc.KeyvaultServiceStub(self._channel.get())

    async def _key(self) -> str:
        async with self._lock:
            if not self._key_id:
                self._key_id = await self._find_or_create()
            return self._key_id

    async def _find_or_create(self) -> str:
        stub = self._stub()
        listed = await stub.ListKeys(
            kv.ListKeysRequest(org_id="", purpose=kv.KEY_PURPOSE_SIGNING), timeout=_TIMEOUT
        )
        for key in listed.keys:
            if key.name == KEY_NAME:
                return str(key.key_id)
        try:
            created = await stub.CreateKey(
                kv.CreateKeyRequest(
                    org_id="",
                    name=KEY_NAME,
                    purpose=kv.KEY_PURPOSE_SIGNING,
                    algorithm=kv.KEY_ALGORITHM_ED25519,
                ),
                timeout=_TIMEOUT,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise
            return await self._find_or_create()
        return str(created.key.key_id)

    async def sign(self, note: bytes) -> tuple[bytes, str]:
        """The signature of `note` and the signing version's kid (`<key id>:<version>`)."""
        reply = await self._stub().Sign(
            kv.SignRequest(org_id="", key_id=await self._key(), message=note), timeout=_TIMEOUT
        )
        return bytes(reply.signature), reply.kid

    async def public_keys(self) -> list[dict[str, str]]:
        """JWKs of every enabled version of the checkpoint key (by kid)."""
        reply = await self._stub().GetPublicKey(
            kv.GetPublicKeyRequest(org_id="", key_id=await self._key()), timeout=_TIMEOUT
        )
        return [{"kid": k.kid, "kty": k.kty, "crv": k.crv, "x": k.x} for k in reply.keys]

    async def close(self) -> None:
        """Close the channel (idempotent)."""
        await self._channel.close()
