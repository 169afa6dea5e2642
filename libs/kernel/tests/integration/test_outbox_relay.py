"""Outbox relay against real PostgreSQL and NATS JetStream (L1, L3, P3)."""

from __future__ import annotations

import uuid

import nats
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy
from sqlalchemy import MetaData, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from helios.kernel.bus import AUDIT_STREAM, Bus
from helios.kernel.outbox import OutboxRelay, enqueue, outbox_table
from helios.kernel.testing.servers import ThrowawayNats
from helios.proto.audit.v1 import events_pb2


@pytest.fixture
async def outbox(db_connection: AsyncConnection) -> MetaData:
    schema = f"kt_{uuid.uuid4().hex[:8]}"
    await db_connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    metadata = MetaData(schema=schema)
    outbox_table(metadata)
    await db_connection.run_sync(metadata.create_all)
    return metadata


async def _stored_ids(nats_url: str, subject: str, expected: int = 0) -> list[str]:
    """Message ids stored on `subject`; waits (up to ~10 s) until at least `expected` are read,
    since a JetStream just restarted may take a moment to deliver."""
    for _ in range(10):
        ids = await _read_ids(nats_url, subject)
        if len(ids) >= expected:
            return ids
    return ids


async def _read_ids(nats_url: str, subject: str) -> list[str]:
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        sub = await js.pull_subscribe(
            subject,
            stream=AUDIT_STREAM,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        ids: list[str] = []
        try:
            while True:
                for message in await sub.fetch(100, timeout=1):
                    ids.append((message.headers or {}).get("Nats-Msg-Id", ""))
                    await message.ack()
        except (nats.errors.TimeoutError, TimeoutError):
            pass
        await sub.unsubscribe()
        return ids
    finally:
        await client.close()


async def _enqueue(
    sessions: async_sessionmaker[AsyncSession], table: object, subject: str, n: int
) -> list[str]:
    ids = [uuid.uuid4() for _ in range(n)]
    async with sessions() as session, session.begin():
        for event_id in ids:
            event = events_pb2.AuditEvent(event_id=str(event_id), action="kernel.test.event")
            await enqueue(session, table, subject, event, event_id=event_id)  # type: ignore[arg-type]
    return [str(i) for i in ids]


async def test_l3_relay_publishes_each_event_once_with_msg_id(
    outbox: MetaData, db_session: async_sessionmaker[AsyncSession], nats_url: str
) -> None:
    """L3/P3: rows reach JetStream with Nats-Msg-Id = event id; a republish after a crash between
    publish and mark (published_at reset) is dropped by JetStream as a duplicate."""
    table = outbox.tables[f"{outbox.schema}.outbox"]
    subject = f"audit.kerneltest.{uuid.uuid4().hex}"
    ids = await _enqueue(db_session, table, subject, 3)
    bus = Bus(nats_url, "kernel-test")
    relay = OutboxRelay(db_session, table, bus)
    try:
        assert await relay.publish_pending() == 3
        assert await relay.publish_pending() == 0
        async with db_session() as session, session.begin():
            await session.execute(update(table).values(published_at=None))
        assert await relay.publish_pending() == 3
    finally:
        await bus.close()
    assert sorted(await _stored_ids(nats_url, subject, expected=len(ids))) == sorted(ids)


async def test_l3_rollback_publishes_nothing(
    outbox: MetaData, db_session: async_sessionmaker[AsyncSession], nats_url: str
) -> None:
    """L1: an event enqueued in a transaction that rolls back never leaves the outbox."""
    table = outbox.tables[f"{outbox.schema}.outbox"]

    async def failing_change() -> None:
        async with db_session() as session, session.begin():
            event = events_pb2.AuditEvent(event_id=str(uuid.uuid4()), action="kernel.test.event")
            await enqueue(session, table, "audit.kerneltest.x", event, event_id=uuid.uuid4())
            raise RuntimeError("the state change failed")

    with pytest.raises(RuntimeError, match="state change failed"):
        await failing_change()
    async with db_session() as session:
        assert (await session.execute(select(func.count()).select_from(table))).scalar() == 0
    bus = Bus(nats_url, "kernel-test")
    try:
        assert await OutboxRelay(db_session, table, bus).publish_pending() == 0
    finally:
        await bus.close()


async def test_l3_events_wait_in_outbox_while_nats_is_down(
    outbox: MetaData, db_session: async_sessionmaker[AsyncSession]
) -> None:
    """L3: with NATS stopped the relay fails and rows stay pending; once NATS is back they are
    published, none lost."""
    table = outbox.tables[f"{outbox.schema}.outbox"]
    server = ThrowawayNats().start()
    bus = Bus(server.url, "kernel-test")
    try:
        await bus.jetstream()  # connected once, then the server goes away
        server.stop()
        ids = await _enqueue(db_session, table, "audit.kerneltest.outage", 2)
        relay = OutboxRelay(db_session, table, bus)
        with pytest.raises(Exception):  # noqa: B017, PT011 - any transport error
            await relay.publish_pending()
        async with db_session() as session:
            pending = await session.execute(
                select(func.count()).select_from(table).where(table.c.published_at.is_(None))
            )
            assert pending.scalar() == 2
        server.start()
        published = 0
        for _ in range(50):
            try:
                published = await relay.publish_pending()
                break
            except Exception:  # reconnecting
                import asyncio

                await asyncio.sleep(0.2)
        assert published == 2
        stored = await _stored_ids(server.url, "audit.kerneltest.outage", expected=len(ids))
        assert sorted(stored) == sorted(ids)
    finally:
        await bus.close()
        server.destroy()
