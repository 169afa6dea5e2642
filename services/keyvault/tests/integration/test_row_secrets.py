"""The kernel's RowCipher against the real keyvault over mTLS and PostgreSQL (E4): many rows per
GenerateDataKey, a cold replica unwraps once, a value copied elsewhere is refused."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from helios.kernel.errors import InvalidArgumentError
from helios.kernel.row_secrets import GrpcDataKeyClient, RowCipher
from helios.proto.keyvault.v1 import keyvault_pb2 as kv

ROWS = 200


class CountingDataKeyClient:
    """The real gRPC client, counting the calls it passes on to keyvault."""

    def __init__(self, inner: GrpcDataKeyClient) -> None:
        self._inner = inner
        self.generated = 0
        self.unwrapped = 0

    async def generate(
        self, org_id: str, key_id: str, table: str, column: str
    ) -> tuple[bytes, bytes]:
        self.generated += 1
        return await self._inner.generate(org_id, key_id, table, column)

    async def unwrap(self, org_id: str, wrapped: bytes, table: str, column: str) -> bytes:
        self.unwrapped += 1
        return await self._inner.unwrap(org_id, wrapped, table, column)


async def test_e4_rows_share_one_data_key_and_a_cold_replica_reads_them(keyvault: Any) -> None:
    """E4: 200 rows encrypted (concurrently) by a service through RowCipher cost ONE
    GenerateDataKey (KeyInventory: one live data key); a fresh RowCipher, like another replica,
    decrypts them all with ONE DecryptDataKey; a value copied to another row, column or org is
    refused with InvalidArgumentError and no plaintext."""
    org, other_org = str(uuid.uuid4()), str(uuid.uuid4())
    stub, meta = keyvault.as_user(org)
    key = (
        await stub.CreateKey(
            kv.CreateKeyRequest(
                name="row-secrets",
                purpose=kv.KEY_PURPOSE_ENCRYPTION,
                algorithm=kv.KEY_ALGORITHM_AES_256_GCM,
            ),
            metadata=meta,
        )
    ).key
    service_stub = keyvault.as_service("identity")
    keys = {org: key.key_id, other_org: key.key_id}

    writer_client = CountingDataKeyClient(GrpcDataKeyClient(service_stub))
    writer = RowCipher(writer_client, keys.__getitem__)
    rows = [str(uuid.uuid4()) for _ in range(ROWS)]
    values = {row: f"secret phone of {row}".encode() for row in rows}
    blobs = dict(
        zip(
            rows,
            await asyncio.gather(
                *(writer.encrypt(org, "contacts", "phone", row, values[row]) for row in rows)
            ),
            strict=True,
        )
    )
    assert writer_client.generated == 1
    inventory = await stub.KeyInventory(kv.KeyInventoryRequest(key_id=key.key_id), metadata=meta)
    assert [(v.version, v.live_data_keys) for v in inventory.versions] == [(1, 1)]

    reader_client = CountingDataKeyClient(GrpcDataKeyClient(service_stub))
    reader = RowCipher(reader_client, keys.__getitem__)
    for row in rows:
        assert await reader.decrypt(org, "contacts", "phone", row, blobs[row]) == values[row]
    assert (reader_client.generated, reader_client.unwrapped) == (0, 1)

    moved = blobs[rows[0]]
    for target_org, column, row in (
        (org, "phone", rows[1]),  # another row: the data key opens, the value does not
        (org, "email", rows[0]),  # another column: keyvault refuses the data key
        (other_org, "phone", rows[0]),  # another org: keyvault refuses the data key
    ):
        for cipher in (reader, RowCipher(GrpcDataKeyClient(service_stub), keys.__getitem__)):
            with pytest.raises(InvalidArgumentError) as refused:
                await cipher.decrypt(target_org, "contacts", column, row, moved)
            assert values[rows[0]].decode() not in str(refused.value)
