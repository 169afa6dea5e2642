"""Each org's DKIM signer: the org's `dkim` key in keyvault, created on first use."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import grpc

from helios.kernel.dkim import DkimAlgorithm, DkimSigner, keyvault_signer
from helios.kernel.errors import FailedPreconditionError, UnavailableError
from helios.proto.keyvault.v1 import keyvault_pb2 as kv

if TYPE_CHECKING:
    from helios.proto.keyvault.v1.keyvault_pb2_grpc import KeyvaultServiceAsyncStub

__all__ = ["DKIM_KEY_NAME", "KeyvaultDkimKeys"]

DKIM_KEY_NAME = "dkim"
_ALGORITHMS: dict[int, DkimAlgorithm] = {
    kv.KEY_ALGORITHM_RSA_2048_PKCS1_SHA256: "rsa-sha256",
    kv.KEY_ALGORITHM_ED25519: "ed25519-sha256",
}
_TIMEOUT = 5.0


class KeyvaultDkimKeys:
    """DkimSigners for (org, domain, selector), calling keyvault as this service's mTLS identity.

    The org's signing key named `dkim` is found by listing the org's signing keys; when there is
    none, an RSA-2048 one is created (RSA is what every verifier accepts; an org may instead
    create an Ed25519 `dkim` key itself). The key id is cached per org. Failures raise the
    kernel's domain errors (UnavailableError while keyvault is away): nothing is signed then."""

    def __init__(self, stub: KeyvaultServiceAsyncStub) -> None:
        self._stub = stub
        self._keys: dict[uuid.UUID, tuple[str, DkimAlgorithm]] = {}
        self._lock = asyncio.Lock()

    async def signer(self, org_id: uuid.UUID, domain: str, selector: str) -> DkimSigner:
        """The signer of `org_id`'s mail for `domain` with `selector` (a DNS label)."""
        async with self._lock:
            if org_id not in self._keys:
                self._keys[org_id] = await self._find_or_create(str(org_id))
            key_id, algorithm = self._keys[org_id]
        sign = keyvault_signer(self._stub, str(org_id), key_id, timeout=_TIMEOUT)
        return DkimSigner(sign, algorithm, domain, selector)

    def forget(self, org_id: uuid.UUID) -> None:
        """Drop the cached key of `org_id` (after keyvault said it is gone or unusable)."""
        self._keys.pop(org_id, None)

    async def _find(self, org: str) -> kv.Key | None:
        token = ""
        while True:
            page = await self._stub.ListKeys(
                kv.ListKeysRequest(org_id=org, purpose=kv.KEY_PURPOSE_SIGNING, page_token=token),
                timeout=_TIMEOUT,
            )
            for key in page.keys:
                if key.name == DKIM_KEY_NAME:
                    return key
            token = page.next_page_token
            if not token:
                return None

    async def _find_or_create(self, org: str) -> tuple[str, DkimAlgorithm]:
        try:
            key = await self._find(org)
            if key is None:
                try:
                    key = (
                        await self._stub.CreateKey(
                            kv.CreateKeyRequest(
                                org_id=org,
                                name=DKIM_KEY_NAME,
                                purpose=kv.KEY_PURPOSE_SIGNING,
                                algorithm=kv.KEY_ALGORITHM_RSA_2048_PKCS1_SHA256,
                            ),
                            timeout=_TIMEOUT,
                        )
                    ).key
                except grpc.aio.AioRpcError as error:
                    if error.code() != grpc.StatusCode.ALREADY_EXISTS:
                        raise
                    key = await self._find(org)  # another replica created it just now
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise UnavailableError("keyvault is unavailable, try again later") from None
            raise
        if key is None:
            raise UnavailableError("the org's DKIM key vanished, try again later")
        algorithm = _ALGORITHMS.get(key.algorithm)
        if algorithm is None:
            raise FailedPreconditionError("the org's dkim key is neither RSA-2048 nor Ed25519")
        return str(key.key_id), algorithm
