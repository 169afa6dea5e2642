"""The AUDIT stream consumer against real NATS JetStream and PostgreSQL (L3, P3)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import nats
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.audit.events.consumer import AuditConsumer
from helios.audit.service import AuditService
from helios.audit.store import tables
from helios.audit.store.postgres import PostgresAuditLog
from helios.kernel.bus import AUDIT_STREAM, Bus, ensure_audit_stream
from helios.kernel.testing.turns import OneSessionAtATime
from helios.proto.audit.v1 import events_pb2

MakeEvent = Callable[..., events_pb2.AuditEvent]
DEADLINE_SECONDS = 15.0


async def _rows_for(sessions: OneSessionAtATime, ids: list[uuid.UUID]) -> list[Any]:
    async with sessions() as session:
        result = await session.execute(
            select(tables.audit_log).where(tables.audit_log.c.event_id.in_(ids))
        )
        return list(result.all())


@pytest.fixture
async def jetstream(nats_url: str) -> AsyncIterator[Any]:
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        await ensure_audit_stream(js)
        yield js
    finally:
        await client.close()


async def test_l3_consumer_stores_published_events_with_their_stream_sequence(
    audit_schema: str,
    db_session: async_sessionmaker[AsyncSession],
    nats_url: str,
    jetstream: Any,
    make_event: MakeEvent,
) -> None:
    """L3/P3: events published to JetStream (deduplicated by Nats-Msg-Id) are consumed into the
    log with the stream sequence JetStream gave them; the stored message is the one sent."""
    run = uuid.uuid4().hex
    subject = f"audit.itest.{run}.x"
    events = [make_event(action=f"itest.{run}.first"), make_event(action=f"itest.{run}.second")]
    sequences: dict[str, int] = {}
    for event in events:
        ack = await jetstream.publish(
            subject, event.SerializeToString(), headers={"Nats-Msg-Id": event.event_id}
        )
        assert ack.stream == AUDIT_STREAM
        assert ack.seq > 0
        sequences[event.event_id] = ack.seq
    republished = await jetstream.publish(
        subject, events[0].SerializeToString(), headers={"Nats-Msg-Id": events[0].event_id}
    )
    assert republished.duplicate is True
    assert republished.seq == sequences[events[0].event_id]

    sessions = OneSessionAtATime(db_session)
    service = AuditService(PostgresAuditLog(sessions))  # type: ignore[arg-type]
    bus = Bus(nats_url, "helios-audit-itest")
    stop = asyncio.Event()
    task = asyncio.create_task(AuditConsumer(bus, service).run(stop))
    ids = [uuid.UUID(event.event_id) for event in events]
    rows: list[Any] = []
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline and not task.done():
            rows = await _rows_for(sessions, ids)
            if len(rows) == len(events):
                break
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        done, _ = await asyncio.wait({task}, timeout=5)
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # Close without draining: the consumer leaves its pull subscription open when it stops,
        # and a late 408 status in that subscription's queue makes Bus.close()'s drain wait
        # out nats-py's 30 s drain timeout (reported as a source finding). Every message was
        # acknowledged synchronously before this point, so nothing is lost.
        if bus.client is not None:
            await bus.client.close()
    assert not task.cancelled(), "the consumer did not return within 5 s of stop"
    assert task.exception() is None

    by_id = {str(row.event_id): row for row in rows}
    assert set(by_id) == {event.event_id for event in events}
    for event in events:
        row = by_id[event.event_id]
        assert row.stream_seq > 0
        assert row.stream_seq == sequences[event.event_id]
        assert row.action == event.action
        assert row.actor_id == event.actor_id
        assert row.input_hash == event.input_hash
        stored = await jetstream.get_msg(AUDIT_STREAM, row.stream_seq)
        assert stored.data == event.SerializeToString()
        assert stored.subject == subject
        assert (stored.headers or {}).get("Nats-Msg-Id") == event.event_id
