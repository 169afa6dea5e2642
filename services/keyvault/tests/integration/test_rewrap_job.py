"""The kernel's rewrap job against the real keyvault over mTLS and PostgreSQL (E6): after a
rotation it moves every stored data key to the new version, one Rewrap per data key, so the
minimum decryption version can be raised; it runs beside live traffic and can be rerun."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import grpc
import pytest
from sqlalchemy import Column, Integer, LargeBinary, MetaData, String, Table, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from helios.kernel.db import create_engine
from helios.kernel.errors import FailedPreconditionError
from helios.kernel.rewrap_job import RewrapProgress, rewrap_column
from helios.kernel.row_secrets import (
    GrpcDataKeyClient,
    RowCipher,
    StaleKeyVersionError,
    wrapped_version,
)
from helios.proto.keyvault.v1 import keyvault_pb2 as kv

TABLE, COLUMN = "contacts", "phone"


class CountingDataKeyClient:
    """The real gRPC client, counting the calls it passes on to keyvault."""

    def __init__(self, inner: GrpcDataKeyClient) -> None:
        self._inner = inner
        self.generated = self.unwrapped = self.rewrapped = 0

    async def generate(
        self, org_id: str, key_id: str, table: str, column: str
    ) -> tuple[bytes, bytes]:
        self.generated += 1
        return await self._inner.generate(org_id, key_id, table, column)

    async def unwrap(self, org_id: str, wrapped: bytes, table: str, column: str) -> bytes:
        self.unwrapped += 1
        return await self._inner.unwrap(org_id, wrapped, table, column)

    async def rewrap(self, org_id: str, wrapped: bytes, table: str, column: str) -> bytes:
        self.rewrapped += 1
        return await self._inner.rewrap(org_id, wrapped, table, column)


def _contacts(schema: str) -> Table:
    return Table(
        TABLE,
        MetaData(schema=schema),
        Column("id", Integer, primary_key=True),
        Column("org_id", String, nullable=False),
        Column(COLUMN, LargeBinary, nullable=True),
    )


def _plain(row: int) -> bytes:
    return f"+41 79 555 {row:04d}".encode()


async def _create_key(stub: Any, meta: Any) -> str:
    reply = await stub.CreateKey(
        kv.CreateKeyRequest(
            name="row-secrets",
            purpose=kv.KEY_PURPOSE_ENCRYPTION,
            algorithm=kv.KEY_ALGORITHM_AES_256_GCM,
        ),
        metadata=meta,
    )
    return str(reply.key.key_id)


async def _inventory(stub: Any, meta: Any, key_id: str) -> dict[int, int]:
    reply = await stub.KeyInventory(kv.KeyInventoryRequest(key_id=key_id), metadata=meta)
    return {v.version: v.live_data_keys for v in reply.versions}


async def _set_min(stub: Any, meta: Any, key_id: str, version: int) -> Any:
    return await stub.SetMinDecryptionVersion(
        kv.SetMinDecryptionVersionRequest(key_id=key_id, min_decryption_version=version),
        metadata=meta,
    )


async def test_e6_rewrap_job_moves_300_rows_and_unlocks_the_minimum_version(
    keyvault: Any,
    db_connection: AsyncConnection,
    db_session: async_sessionmaker[AsyncSession],
) -> None:
    """E6: 300 rows of two orgs (200 + 100, 100 values per data key: 3 data keys) encrypted by
    RowCipher under key version 1; after RotateKey, SetMinDecryptionVersion(2) is refused with
    FAILED_PRECONDITION. A job with target 3 is refused (StaleKeyVersionError) after storing the
    one value keyvault moved; the job with target 2 (batches of 64) reports monotonic progress
    to 100 % and costs one Rewrap per data key (3 in all). Then KeyInventory shows v1: 0 and v2:
    the moved data keys, SetMinDecryptionVersion(2) succeeds, every row decrypts with a fresh
    RowCipher (one DecryptDataKey per data key), a copy of an old v1 value is now refused, and
    a second run rewraps nothing."""
    org_a, org_b = str(uuid.uuid4()), str(uuid.uuid4())
    users: dict[str, tuple[Any, Any]] = {org: keyvault.as_user(org) for org in (org_a, org_b)}
    keys = {org: await _create_key(*users[org]) for org in (org_a, org_b)}
    service_stub = keyvault.as_service("identity")

    schema = f"rw_{uuid.uuid4().hex[:8]}"
    await db_connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    contacts = _contacts(schema)
    await db_connection.run_sync(contacts.metadata.create_all)
    writer = RowCipher(GrpcDataKeyClient(service_stub), keys.__getitem__, max_uses=100)
    orgs = {row: org_a if row <= 200 else org_b for row in range(1, 301)}
    originals = {
        row: await writer.encrypt(org, TABLE, COLUMN, str(row), _plain(row))
        for row, org in orgs.items()
    }
    async with db_session() as session, session.begin():
        await session.execute(
            insert(contacts),
            [{"id": r, "org_id": orgs[r], COLUMN: originals[r]} for r in orgs],
        )
    assert {wrapped_version(v) for v in originals.values()} == {1}
    assert await _inventory(*users[org_a], keys[org_a]) == {1: 2}
    assert await _inventory(*users[org_b], keys[org_b]) == {1: 1}

    for org in (org_a, org_b):
        stub, meta = users[org]
        rotated = await stub.RotateKey(kv.RotateKeyRequest(key_id=keys[org]), metadata=meta)
        assert rotated.new_version == 2
    stub_a, meta_a = users[org_a]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _set_min(stub_a, meta_a, keys[org_a], 2)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "rewrap" in (refused.value.details() or "")

    client = CountingDataKeyClient(GrpcDataKeyClient(service_stub))
    rewrapper = RowCipher(client, keys.__getitem__)

    async def run(target: int, progress: Any = None) -> RewrapProgress:
        return await rewrap_column(
            db_session,
            contacts,
            contacts.c.id,
            contacts.c[COLUMN],
            lambda row: str(row["org_id"]),
            rewrapper,
            TABLE,
            COLUMN,
            target_version=target,
            batch_size=64,
            progress=progress,
        )

    async def stored() -> dict[int, tuple[str, bytes]]:
        async with db_session() as session:
            rows = await session.execute(select(contacts).order_by(contacts.c.id))
            return {r.id: (r.org_id, r.phone) for r in rows}

    with pytest.raises(StaleKeyVersionError, match="rotate the key first"):
        await run(3)
    after_refusal = await stored()
    assert wrapped_version(after_refusal[1][1]) == 2  # the one data key keyvault moved
    assert all(after_refusal[r][1] == originals[r] for r in range(2, 301))
    assert client.rewrapped == 1

    reports: list[RewrapProgress] = []
    result = await run(2, reports.append)

    assert len(reports) == 6  # 5 batches of <= 64, then the final report
    for before, after in itertools.pairwise(reports):
        assert after.seen >= before.seen
        assert after.percent >= before.percent
        assert after.elapsed >= before.elapsed
    assert reports[-1] == result
    assert (result.done, result.percent, result.complete) == (True, 100.0, True)
    assert (result.total, result.seen, result.rewrapped, result.skipped) == (300, 300, 299, 1)
    assert (result.failed, result.busy, result.last_id) == (0, 0, 300)
    assert client.rewrapped == 3
    assert await _inventory(*users[org_a], keys[org_a]) == {2: 2, 1: 0}
    assert await _inventory(*users[org_b], keys[org_b]) == {2: 1, 1: 0}

    for org in (org_a, org_b):
        key = (await _set_min(*users[org], keys[org], 2)).key
        assert key.min_decryption_version == 2

    rows = await stored()
    assert {wrapped_version(value) for _, value in rows.values()} == {2}
    reader_client = CountingDataKeyClient(GrpcDataKeyClient(service_stub))
    reader = RowCipher(reader_client, keys.__getitem__)
    for row, (org, value) in rows.items():
        assert await reader.decrypt(org, TABLE, COLUMN, str(row), value) == _plain(row)
    assert (reader_client.unwrapped, reader_client.generated) == (3, 0)
    with pytest.raises(FailedPreconditionError, match="below the minimum decryption version"):
        await RowCipher(GrpcDataKeyClient(service_stub), keys.__getitem__).decrypt(
            org_a, TABLE, COLUMN, "2", originals[2]
        )

    again = await run(2)
    assert (again.rewrapped, again.skipped, again.complete) == (0, 300, True)
    assert client.rewrapped == 3
    assert await stored() == rows


async def test_e6_rewrap_job_skips_rows_live_traffic_holds_and_a_rerun_finishes_them(
    keyvault: Any, database_url: str
) -> None:
    """E6 beside live traffic: while another transaction holds rows 5 and 6 (and changes row 5),
    the job (on its own engine, FOR UPDATE SKIP LOCKED) rewraps the other 18 rows without
    waiting and reports 2 busy (not complete); the held rows keep what the live transaction
    committed. A rerun with the same RowCipher rewraps exactly those two, with no further
    Rewrap call, and every row decrypts to its latest plaintext."""
    org = str(uuid.uuid4())
    stub, meta = keyvault.as_user(org)
    key_id = await _create_key(stub, meta)
    service_stub = keyvault.as_service("identity")
    key_for = {org: key_id}.__getitem__
    writer = RowCipher(GrpcDataKeyClient(service_stub), key_for)
    schema = f"rw_{uuid.uuid4().hex[:8]}"
    contacts = _contacts(schema)
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
            await connection.run_sync(contacts.metadata.create_all)
            await connection.execute(
                insert(contacts),
                [
                    {
                        "id": row,
                        "org_id": org,
                        COLUMN: await writer.encrypt(org, TABLE, COLUMN, str(row), _plain(row)),
                    }
                    for row in range(1, 21)
                ],
            )
        await stub.RotateKey(kv.RotateKeyRequest(key_id=key_id), metadata=meta)
        client = CountingDataKeyClient(GrpcDataKeyClient(service_stub))
        rewrapper = RowCipher(client, key_for)

        async def run() -> RewrapProgress:
            return await rewrap_column(
                engine,
                contacts,
                "id",
                COLUMN,
                lambda row: str(row["org_id"]),
                rewrapper,
                TABLE,
                COLUMN,
                target_version=2,
                batch_size=8,
            )

        changed = await writer.encrypt(org, TABLE, COLUMN, "5", b"changed by live traffic")
        async with engine.connect() as live:
            held = await live.execute(
                select(contacts.c.id)
                .where(contacts.c.id.in_([5, 6]))
                .with_for_update()
                .order_by(contacts.c.id)
            )
            assert list(held.scalars()) == [5, 6]
            await live.execute(
                contacts.update().where(contacts.c.id == 5).values({COLUMN: changed})
            )
            first = await run()
            assert (first.seen, first.rewrapped, first.busy) == (20, 18, 2)
            assert (first.done, first.complete) == (True, False)
            await live.commit()
        assert client.rewrapped == 1

        async with engine.connect() as connection:
            rows = {
                r.id: r.phone
                for r in await connection.execute(select(contacts).order_by(contacts.c.id))
            }
        assert [row for row, v in rows.items() if wrapped_version(v) == 1] == [5, 6]
        assert rows[5] == changed

        second = await run()
        assert (second.rewrapped, second.skipped, second.busy, second.complete) == (2, 18, 0, True)
        assert client.rewrapped == 1
        async with engine.connect() as connection:
            rows = {
                r.id: r.phone
                for r in await connection.execute(select(contacts).order_by(contacts.c.id))
            }
        assert {wrapped_version(v) for v in rows.values()} == {2}
        reader = RowCipher(GrpcDataKeyClient(service_stub), key_for)
        for row, value in rows.items():
            expected = b"changed by live traffic" if row == 5 else _plain(row)
            assert await reader.decrypt(org, TABLE, COLUMN, str(row), value) == expected
        assert await _inventory(stub, meta, key_id) == {2: 1, 1: 0}
    finally:
        async with engine.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await engine.dispose()
