"""SqlUnitOfWork wakes the outbox relay only after commits that enqueued events (L1, P3)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from helios.kernel.outbox import enqueue, outbox_table
from helios.kernel.unit_of_work import SqlUnitOfWork
from helios.proto.audit.v1 import events_pb2


async def test_l1_only_commits_that_enqueued_events_wake_the_relay(
    db_connection: AsyncConnection, db_session: async_sessionmaker[AsyncSession]
) -> None:
    schema = f"kt_{uuid.uuid4().hex[:8]}"
    await db_connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    metadata = MetaData(schema=schema)
    table = outbox_table(metadata)
    await db_connection.run_sync(metadata.create_all)
    woken: list[int] = []
    uow = SqlUnitOfWork(db_session, lambda s: s, lambda: woken.append(1))

    async with uow() as session:
        await session.execute(text("SELECT 1"))
    assert woken == []

    async with uow() as session:
        event = events_pb2.AuditEvent(event_id=str(uuid.uuid4()), action="kernel.test.event")
        await enqueue(session, table, "audit.kernel.test", event, event_id=uuid.uuid4())
    assert woken == [1]

    async def failing_write() -> None:
        async with uow() as session:
            await enqueue(session, table, "audit.kernel.test", event, event_id=uuid.uuid4())
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        await failing_write()
    assert woken == [1]
    async with uow() as session:
        await session.execute(text("SELECT 1"))
    assert woken == [1], "a rolled-back enqueue must not leak its flag into the next commit"
