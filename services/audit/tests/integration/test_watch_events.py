"""WatchEvents over gRPC with mutual TLS and signed principal assertions (L1): a live tail."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from helios.audit.domain.events import Incoming
from helios.audit.service import AuditService
from helios.audit.store.postgres import PostgresAuditLog
from helios.kernel.clients import call_metadata
from helios.kernel.context import CallContext
from helios.kernel.errors import InvalidArgumentError
from helios.kernel.principal import AssertionSigner
from helios.kernel.testing.turns import TurnTakingSession
from helios.proto.audit.v1 import audit_pb2, events_pb2
from helios.proto.common.v1 import principal_pb2

MakeEvent = Callable[..., events_pb2.AuditEvent]


class ObservedLog(PostgresAuditLog):
    """The real store; says when a watch has read the log's head (its starting cursor)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(sessions)
        self.head_read = asyncio.Event()

    async def last_sequence(self) -> int:
        value = await super().last_sequence()
        self.head_read.set()
        return value


class ObservedService(AuditService):
    """The real service; counts open watch streams, so a test can wait for one to end."""

    def __init__(self, store: ObservedLog) -> None:
        super().__init__(store)
        self.log = store
        self.open_watches = 0
        self.none_open = asyncio.Event()

    async def watch_events(
        self, request: audit_pb2.WatchEventsRequest, ctx: CallContext, stop: asyncio.Event
    ) -> AsyncIterator[tuple[int, audit_pb2.AuditRecord]]:
        self.open_watches += 1
        self.none_open.clear()
        try:
            async for item in super().watch_events(request, ctx, stop):
                yield item
        finally:
            self.open_watches -= 1
            if not self.open_watches:
                self.none_open.set()


@pytest.fixture
def turns() -> asyncio.Lock:
    """Held by whichever session uses the test's connection; a test holds it to keep the server
    out of the database while it cancels a stream."""
    return asyncio.Lock()


@pytest.fixture
def audit_service(
    audit_schema: str, db_connection: AsyncConnection, turns: asyncio.Lock
) -> ObservedService:
    """Overrides conftest's: the same rolled-back connection, taken in turns."""
    sessions: async_sessionmaker[Any] = async_sessionmaker(
        bind=db_connection,
        class_=TurnTakingSession,
        expire_on_commit=False,
        join_transaction_mode="create_savepoint",
        turns=turns,
    )
    return ObservedService(ObservedLog(sessions))


def _as(signer: AssertionSigner, actor_id: str) -> Any:
    principal = principal_pb2.Principal(
        actor_type=principal_pb2.ACTOR_TYPE_USER, actor_id=actor_id, session_id=str(uuid.uuid4())
    )
    return call_metadata(assertion=signer.sign(principal))


async def _ingest(service: AuditService, events: list[events_pb2.AuditEvent], seq: int) -> None:
    batch = [
        Incoming("audit.itest.x", e.SerializeToString(), seq + i) for i, e in enumerate(events)
    ]
    assert await service.ingest(batch) == len(events)


async def _read(call: Any, count: int) -> list[audit_pb2.WatchEventsResponse]:
    received: list[audit_pb2.WatchEventsResponse] = []
    async with asyncio.timeout(10):
        while len(received) < count:
            message = await call.read()
            assert message is not grpc.aio.EOF, "the stream ended early"
            received.append(message)
    return received


async def _cancel(call: Any, service: ObservedService, turns: asyncio.Lock) -> None:
    """Cancel a stream while the server cannot be inside a query, and wait for it to end."""
    async with turns:
        call.cancel()
        async with asyncio.timeout(10):
            await service.none_open.wait()
    assert call.cancelled()


async def test_l1_watch_events_streams_the_callers_new_rows_in_order(
    audit_server: Any,
    audit_service: ObservedService,
    signer: AssertionSigner,
    make_event: MakeEvent,
    turns: asyncio.Lock,
) -> None:
    """L1: a watch started with after_sequence 0 gets only rows stored after it started, oldest
    first, only where the caller is the actor; nothing else arrives meanwhile."""
    actor_x, actor_y = str(uuid.uuid4()), str(uuid.uuid4())
    before = make_event(actor_id=actor_x, action="itest.before")
    await _ingest(audit_service, [before], 10)

    call = audit_server.stub.WatchEvents(
        audit_pb2.WatchEventsRequest(), metadata=_as(signer, actor_x), timeout=60
    )
    async with asyncio.timeout(10):
        await audit_service.log.head_read.wait()
    mine = [make_event(actor_id=actor_x, action=f"itest.step{i}") for i in range(4)]
    theirs = [make_event(actor_id=actor_y) for _ in range(2)]
    await _ingest(audit_service, [mine[0], theirs[0], mine[1], mine[2]], 100)
    await _ingest(audit_service, [theirs[1], mine[3]], 200)

    received = await _read(call, 4)
    assert [m.record.event.event_id for m in received] == [e.event_id for e in mine]
    assert {m.record.event.actor_id for m in received} == {actor_x}
    assert [m.record.stream_sequence for m in received] == [100, 102, 103, 201]
    sequences = [m.sequence for m in received]
    assert sequences == sorted(sequences)
    assert len(set(sequences)) == 4
    assert received[0].record.event.action == "itest.step0"
    assert received[0].record.event.input_hash == mine[0].input_hash
    assert received[0].record.HasField("recorded_at")

    # nothing else is pending: the next row the caller causes is the next message
    later = make_event(actor_id=actor_x, action="itest.later")
    await _ingest(audit_service, [make_event(actor_id=actor_y), later], 300)
    (next_one,) = await _read(call, 1)
    assert next_one.record.event.event_id == later.event_id
    assert next_one.sequence > sequences[-1]
    await _cancel(call, audit_service, turns)


async def test_l1_watch_events_resumes_after_a_sequence_and_narrows_by_org(
    audit_server: Any,
    audit_service: ObservedService,
    signer: AssertionSigner,
    make_event: MakeEvent,
    turns: asyncio.Lock,
) -> None:
    """L1: after_sequence replays the caller's rows stored after that position at once (a
    reconnecting client loses nothing); org_id narrows the tail to one org."""
    actor, org = str(uuid.uuid4()), str(uuid.uuid4())
    rows = [make_event(actor_id=actor, org_id=org, action=f"itest.r{i}") for i in range(3)]
    other_org = make_event(actor_id=actor, action="itest.other-org")
    await _ingest(audit_service, [rows[0], other_org, rows[1], rows[2]], 500)

    whole = audit_server.stub.WatchEvents(
        audit_pb2.WatchEventsRequest(after_sequence=1), metadata=_as(signer, actor), timeout=60
    )
    everything = await _read(whole, 4)
    assert [m.record.event.action for m in everything] == [
        "itest.r0",
        "itest.other-org",
        "itest.r1",
        "itest.r2",
    ]
    await _cancel(whole, audit_service, turns)

    resumed = audit_server.stub.WatchEvents(
        audit_pb2.WatchEventsRequest(org_id=org, after_sequence=everything[0].sequence),
        metadata=_as(signer, actor),
        timeout=60,
    )
    replay = await _read(resumed, 2)
    assert [m.record.event.event_id for m in replay] == [rows[1].event_id, rows[2].event_id]
    assert {m.record.event.org_id for m in replay} == {org}
    assert not audit_service.log.head_read.is_set()  # a resume never reads the head
    await _cancel(resumed, audit_service, turns)


async def test_l1_watch_events_without_assertion_is_unauthenticated(audit_server: Any) -> None:
    """L1: a live tail needs a principal; the caller's mTLS identity alone is not one."""
    call = audit_server.stub.WatchEvents(audit_pb2.WatchEventsRequest(), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call.read()
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert refused.value.details() == "this call needs an authenticated principal"


async def test_l1_watch_events_with_an_impossible_cursor_is_invalid_argument(
    audit_server: Any, signer: AssertionSigner
) -> None:
    """L1: after_sequence beyond the log's bigint range is refused, not silently clamped."""
    call = audit_server.stub.WatchEvents(
        audit_pb2.WatchEventsRequest(after_sequence=2**63),
        metadata=_as(signer, str(uuid.uuid4())),
        timeout=10,
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call.read()
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "after_sequence" in (refused.value.details() or "")


async def test_l1_watch_events_ends_normally_when_the_server_stops(
    audit_service: ObservedService, make_event: MakeEvent
) -> None:
    """L1: at shutdown (`stop` set) a watch delivers what it already read and then ends, so the
    client resumes elsewhere by sequence instead of seeing an error."""
    actor = str(uuid.uuid4())
    event = make_event(actor_id=actor)
    await _ingest(audit_service, [event], 700)
    principal = principal_pb2.Principal(actor_type=principal_pb2.ACTOR_TYPE_USER, actor_id=actor)
    stop = asyncio.Event()
    stream = audit_service.watch_events(
        audit_pb2.WatchEventsRequest(after_sequence=1), CallContext("gateway", principal), stop
    )
    first_seq, first = await anext(stream)
    assert first.event.event_id == event.event_id
    stop.set()
    async with asyncio.timeout(5):
        rest = [item async for item in stream]
    assert rest == []
    assert first_seq > 1

    with pytest.raises(InvalidArgumentError):
        await anext(
            audit_service.watch_events(
                audit_pb2.WatchEventsRequest(after_sequence=2**64 - 1),
                CallContext("gateway", principal),
                asyncio.Event(),
            )
        )
