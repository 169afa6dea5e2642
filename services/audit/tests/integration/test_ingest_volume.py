"""Ingest at volume through the whole path: three producers' outboxes, their relays, JetStream,
the durable consumer, the per-org Merkle logs; and unusable messages next to good ones (L1)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import nats
import pytest
from google.protobuf import json_format
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import MetaData, Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from helios.audit.domain import merkle
from helios.audit.domain.events import EventQuery, Incoming
from helios.audit.domain.leaf import leaf_bytes
from helios.audit.events.consumer import DURABLE_NAME, AuditConsumer
from helios.audit.service import AuditService
from helios.audit.store import tables
from helios.audit.store.postgres import PostgresAuditLog
from helios.audit.store.rows import leaf_record
from helios.kernel.bus import AUDIT_STREAM, AUDIT_SUBJECTS, Bus, audit_subject
from helios.kernel.outbox import OutboxRelay, enqueue, outbox_table
from helios.kernel.testing.servers import ThrowawayNats
from helios.kernel.testing.turns import OneSessionAtATime
from helios.proto.audit.v1 import events_pb2
from helios.proto.common.v1 import principal_pb2

MakeEvent = Callable[..., events_pb2.AuditEvent]

TOTAL_EVENTS = 10_000
ORG_COUNT = 5
DEADLINE_SECONDS = 50.0
PRODUCERS: dict[str, tuple[str, ...]] = {
    "identity": ("identity.user.signUp", "identity.user.signIn", "identity.org.create"),
    "authz": ("authz.role.create", "authz.role.assign", "authz.policy.update"),
    "keyvault": ("keyvault.key.rotate", "keyvault.secret.put", "keyvault.secret.reveal"),
}
ACTOR_TYPES = (
    principal_pb2.ACTOR_TYPE_USER,
    principal_pb2.ACTOR_TYPE_AI,
    principal_pb2.ACTOR_TYPE_SYSTEM,
)
OUTCOMES = (
    events_pb2.AUDIT_OUTCOME_SUCCESS,
    events_pb2.AUDIT_OUTCOME_FAILURE,
    events_pb2.AUDIT_OUTCOME_DENIED,
)
USER_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
    "helios-cli/2.3 (Ünïcødé; ☃)",
    "curl/8.5.0",
    "A" * 512,
)
IPS = ("203.0.113.7", "2001:db8::17", "198.51.100.254", "::1")


@pytest.fixture
async def throwaway_nats() -> AsyncIterator[ThrowawayNats]:
    """A NATS server of this test's own: the fixed durable name and the AUDIT stream of other
    tests (and test sessions) stay out of it, and its stream sequences start at 1."""
    server = ThrowawayNats().start()
    try:
        yield server
    finally:
        server.destroy()


async def _producer_outbox(connection: AsyncConnection, producer: str) -> Table:
    schema = f"av_{producer}_{uuid.uuid4().hex[:8]}"
    await connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    metadata = MetaData(schema=schema)
    table = outbox_table(metadata)
    await connection.run_sync(metadata.create_all)
    return table


def _varied_event(rng: random.Random, number: int, producer: str, org_id: str) -> Any:
    """An event with every L1 field set, the values varied by `number`."""
    action = rng.choice(PRODUCERS[producer])
    occurred = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
        seconds=number * 7, microseconds=rng.randrange(1_000_000)
    )
    event = events_pb2.AuditEvent(
        event_id=str(uuid.uuid4()),
        org_id=org_id,
        actor_type=ACTOR_TYPES[number % len(ACTOR_TYPES)],
        actor_id=str(uuid.UUID(int=rng.getrandbits(128))),
        session_id=f"s-{rng.getrandbits(64):016x}",
        impersonator_id=str(uuid.UUID(int=rng.getrandbits(128))),
        action=action,
        resource_type=action.rsplit(".", 1)[0],
        resource_id=f"{action.split('.')[1]}/{number}",
        input_hash=hashlib.sha256(f"in{number}".encode()).hexdigest(),
        output_hash=hashlib.sha256(f"out{number}".encode()).hexdigest(),
        ip=IPS[number % len(IPS)],
        user_agent=USER_AGENTS[number % len(USER_AGENTS)],
        decision_id=str(uuid.uuid4()),
        trace_id=f"{rng.getrandbits(128):032x}",
        producer=producer,
        outcome=OUTCOMES[number % len(OUTCOMES)],
    )
    event.occurred_at.FromDatetime(occurred)
    diff: dict[str, Any] = {
        "display_name": {"from": f"Ada {number}", "to": f"Ada Lovelace {number} ✓"},
        "count": number,
        "ratio": number / 7,
        "tiny": 1.5e-10 * (number + 1),
        "enabled": number % 2 == 0,
        "tags": ["a", "ü", number, None],
        "cleared": None,
        "naïve key.with $dots": {"deep": {"deeper": [{"n": -number}]}},
    }
    if number % 10 == 0:
        diff = {}  # a change with nothing to show
    json_format.ParseDict(diff, event.diff)
    return event


@dataclass
class _Producer:
    """One producing service: its outbox, its relay over its own NATS connection, its events."""

    name: str
    table: Table
    bus: Bus
    relay: OutboxRelay
    events: list[events_pb2.AuditEvent] = field(default_factory=list)


async def _produce(
    sessions: OneSessionAtATime, producer: _Producer, rng: random.Random, events: Sequence[Any]
) -> None:
    """Enqueue `events` in many transactions of 1..25 events, waking the relay after each."""
    index = 0
    while index < len(events):
        chunk = events[index : index + rng.randint(1, 25)]
        async with sessions() as session, session.begin():
            for event in chunk:
                subject = audit_subject(producer.name, event.action)
                await enqueue(
                    session, producer.table, subject, event, event_id=uuid.UUID(event.event_id)
                )
        producer.relay.notify()
        index += len(chunk)
        await asyncio.sleep(0)


async def _until(check: Callable[[], Awaitable[bool]], deadline: float, what: str) -> None:
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def _consumed_up_to(js: JetStreamContext, seq: int) -> bool:
    """Whether the audit consumer acknowledged every message up to stream sequence `seq`."""
    with contextlib.suppress(nats.js.errors.NotFoundError):
        info = await js.consumer_info(AUDIT_STREAM, DURABLE_NAME)
        return bool(info.ack_floor.stream_seq >= seq and info.num_ack_pending == 0)
    return False


async def _stream_messages(js: JetStreamContext) -> list[tuple[int, str, bytes]]:
    """(stream sequence, Nats-Msg-Id, payload) of every message in the AUDIT stream, in order."""
    expected = (await js.stream_info(AUDIT_STREAM)).state.messages
    subscription = await js.pull_subscribe(
        AUDIT_SUBJECTS,
        stream=AUDIT_STREAM,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE),
    )
    found: list[tuple[int, str, bytes]] = []
    try:
        while len(found) < expected:
            for message in await subscription.fetch(1000, timeout=2):
                msg_id = (message.headers or {}).get("Nats-Msg-Id", "")
                found.append((message.metadata.sequence.stream, msg_id, message.data))
    finally:
        await subscription.unsubscribe()
    return sorted(found)


async def _stop(tasks: Sequence[asyncio.Task[None]], stop: asyncio.Event) -> None:
    stop.set()
    _, pending = await asyncio.wait(tasks, timeout=5)
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _close(bus: Bus) -> None:
    # Not Bus.close(): its drain waits out nats-py's 30 s drain timeout when a stopped pull
    # consumer left its subscription behind (see test_consumer.py). Everything was acked.
    if bus.client is not None:
        await bus.client.close()


def _field_differences(stored: Any, produced: Any) -> list[str]:
    """Every AuditEvent field (the descriptor's list, so a new field is compared too) whose stored
    value differs from the produced one; the diff compared as JSON."""
    differences = []
    for descriptor in events_pb2.AuditEvent.DESCRIPTOR.fields:
        name = descriptor.name
        if descriptor.message_type is not None:
            mine, theirs = (json_format.MessageToDict(getattr(m, name)) for m in (stored, produced))
        else:
            mine, theirs = getattr(stored, name), getattr(produced, name)
        if mine != theirs:
            differences.append(f"{produced.event_id} {name}: stored {mine!r}, produced {theirs!r}")
    return differences


def _row_differences(row: Any, produced: Any) -> list[str]:
    """The stored row's columns against the produced event, independently of the read path."""
    expected = {
        "event_id": uuid.UUID(produced.event_id),
        "occurred_at": produced.occurred_at.ToDatetime(dt.UTC),
        "actor_type": principal_pb2.ActorType.Name(produced.actor_type)
        .removeprefix("ACTOR_TYPE_")
        .lower(),
        "diff": json_format.MessageToDict(produced.diff),
        "outcome": int(produced.outcome),
        **{
            column.name: getattr(produced, column.name)
            for column in tables.audit_log.c
            if column.name in events_pb2.AuditEvent.DESCRIPTOR.fields_by_name
            and column.name not in {"event_id", "occurred_at", "actor_type", "diff", "outcome"}
        },
    }
    return [
        f"{produced.event_id} column {name}: stored {getattr(row, name)!r}, produced {value!r}"
        for name, value in expected.items()
        if getattr(row, name) != value
    ]


async def _stored_records(log: PostgresAuditLog, org_id: str) -> list[Any]:
    """Every AuditRecord of the org through the product's read path (ListEvents pages)."""
    records: list[Any] = []
    cursor = 0
    while True:
        page = await log.query(EventQuery(org_id=org_id, page_size=500, before_seq=cursor))
        records += [record for _, record in page]
        if len(page) < 500:
            return records
        cursor = page[-1][0]


async def _tree_roots(sessions: OneSessionAtATime, org_id: str) -> tuple[int, bytes, bytes]:
    """(size, root recomputed from the stored rows, root from the stored merkle_nodes); also
    asserts every row's stored leaf hash is the hash of its leaf record."""
    async with sessions() as session:
        rows = (
            await session.execute(
                select(tables.audit_log)
                .where(tables.audit_log.c.org_id == org_id)
                .order_by(tables.audit_log.c.org_seq)
            )
        ).all()
        size = await session.scalar(
            select(tables.org_logs.c.size).where(tables.org_logs.c.org_id == org_id)
        )
        nodes = {
            (int(level), int(idx)): bytes(value)
            for level, idx, value in await session.execute(
                select(
                    tables.merkle_nodes.c.level,
                    tables.merkle_nodes.c.idx,
                    tables.merkle_nodes.c.hash,
                ).where(tables.merkle_nodes.c.org_id == org_id)
            )
        }
    leaves = [
        merkle.leaf_hash(leaf_bytes(leaf_record(dict(row._mapping), index)))
        for index, row in enumerate(rows)
    ]
    wrong = [row.org_seq for row, leaf in zip(rows, leaves, strict=True) if leaf != row.leaf_hash]
    assert wrong == [], f"org {org_id}: stored leaf hashes differ at org_seq {wrong[:10]}"
    assert size == len(rows), f"org {org_id}: org_logs.size {size}, {len(rows)} rows"
    stored_root = merkle.range_hash(0, len(rows), nodes)
    return len(rows), merkle.root_from_leaves(leaves), stored_root


async def test_l1_ten_thousand_events_from_three_services_arrive_once_ordered_per_org_with_every_field(  # noqa: E501
    audit_schema: str,
    db_connection: AsyncConnection,
    db_session: async_sessionmaker[AsyncSession],
    throwaway_nats: ThrowawayNats,
) -> None:
    """L1/L3: 10,000 events with every field set, enqueued by identity, authz and keyvault in
    many transactions and relayed concurrently, are stored once each with every field as
    produced; each org's log numbers its rows 0..n-1 in the order JetStream received them, the
    leaf hashes match the rows, and the root recomputed from the rows equals the root from the
    stored subtree hashes. Republished copies (new message id, same event id) add nothing."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    rng = random.Random(20260601)
    sessions = OneSessionAtATime(db_session)
    orgs = [str(uuid.uuid4()) for _ in range(ORG_COUNT)]
    producers: list[_Producer] = []
    for name in PRODUCERS:
        table = await _producer_outbox(db_connection, name)
        bus = Bus(throwaway_nats.url, f"{name}-relay-itest")
        relay = OutboxRelay(sessions, table, bus, idle_seconds=0.05)  # type: ignore[arg-type]
        producers.append(_Producer(name, table, bus, relay))
    for number in range(TOTAL_EVENTS):
        producer = rng.choice(producers)
        producer.events.append(_varied_event(rng, number, producer.name, rng.choice(orgs)))
    produced = {event.event_id: event for p in producers for event in p.events}
    assert len(produced) == TOTAL_EVENTS

    audit_log = PostgresAuditLog(sessions)  # type: ignore[arg-type]
    consumer_bus = Bus(throwaway_nats.url, "helios-audit-itest")
    inspector = await nats.connect(throwaway_nats.url)
    js = inspector.jetstream()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(AuditConsumer(consumer_bus, AuditService(audit_log)).run(stop))]
    tasks += [asyncio.create_task(p.relay.run(stop)) for p in producers]
    try:
        await asyncio.gather(
            *(_produce(sessions, p, random.Random(p.name), p.events) for p in producers)
        )

        async def relayed() -> bool:
            async with sessions() as session:
                for p in producers:
                    pending = await session.scalar(
                        select(func.count())
                        .select_from(p.table)
                        .where(p.table.c.published_at.is_(None))
                    )
                    if pending:
                        return False
            return True

        await _until(relayed, deadline, "the relays to empty their outboxes")
        last = (await js.stream_info(AUDIT_STREAM)).state.last_seq
        assert last == TOTAL_EVENTS, "JetStream holds a duplicate or lost an event"
        await _until(lambda: _consumed_up_to(js, last), deadline, "the consumer to catch up")
        roots_before = {org: await _tree_roots(sessions, org) for org in orgs}

        # Redelivery after the duplicate window: the same events under new message ids,
        # one of them twice in the same burst (so twice in one consumer batch).
        again = [rng.choice(p.events) for p in producers for _ in range(10)]
        again.append(again[0])
        for event in again:
            ack = await js.publish(
                audit_subject(event.producer, event.action),
                event.SerializeToString(),
                headers={"Nats-Msg-Id": str(uuid.uuid4())},
            )
            assert not ack.duplicate
        await _until(lambda: _consumed_up_to(js, ack.seq), deadline, "the republished copies")
    finally:
        await _stop(tasks, stop)
        for bus in [consumer_bus, *(p.bus for p in producers)]:
            await _close(bus)
    for task in tasks:
        assert not task.cancelled(), "a relay or the consumer did not return within 5 s of stop"
        assert task.exception() is None

    stream = await _stream_messages(js)
    await inspector.close()
    async with sessions() as session:
        rows = (
            await session.execute(
                select(tables.audit_log)
                .where(tables.audit_log.c.org_id.in_(orgs))
                .order_by(tables.audit_log.c.org_id, tables.audit_log.c.org_seq)
            )
        ).all()

    # Exactly once.
    assert len(rows) == TOTAL_EVENTS
    counts = Counter(str(row.event_id) for row in rows)
    assert [i for i, n in counts.items() if n > 1] == []
    assert set(counts) == set(produced)

    # Every field as produced: the raw columns, and the records the read path returns.
    differences = [d for row in rows for d in _row_differences(row, produced[str(row.event_id)])]
    for org in orgs:
        for record in await _stored_records(audit_log, org):
            differences += _field_differences(record.event, produced[record.event.event_id])
    assert differences == [], f"{len(differences)} differences, first: {differences[:10]}"

    # Each org's log: 0..n-1 without gap, in the order JetStream received the org's events.
    first_seq: dict[str, int] = {}
    for seq, msg_id, payload in stream:
        event = events_pb2.AuditEvent.FromString(payload)
        first_seq.setdefault(event.event_id, seq)
        if seq == first_seq[event.event_id] and seq <= TOTAL_EVENTS:
            assert msg_id == event.event_id, f"stream message {seq} has msg id {msg_id}"
            assert event == produced[event.event_id], f"stream message {seq} differs"
    stream_order: dict[str, list[str]] = defaultdict(list)
    for event_id, _ in sorted(first_seq.items(), key=lambda item: item[1]):
        stream_order[produced[event_id].org_id].append(event_id)
    by_org: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_org[row.org_id].append(row)
    assert sorted(by_org) == sorted(orgs)
    for org, org_rows in by_org.items():
        assert [row.org_seq for row in org_rows] == list(range(len(org_rows))), org
        assert [row.stream_seq for row in org_rows] == [
            first_seq[str(row.event_id)] for row in org_rows
        ], f"org {org}: a stored stream sequence is not the first the event had in the stream"
        assert [str(row.event_id) for row in org_rows] == stream_order[org], (
            f"org {org}: org_seq order is not the order JetStream received the org's events"
        )

    # The Merkle log of each org: rows -> leaves -> root equals the stored subtree hashes' root,
    # and the republished copies changed nothing.
    for org in orgs:
        size, from_rows, from_nodes = await _tree_roots(sessions, org)
        assert size == len(by_org[org])
        assert from_rows == from_nodes, f"org {org}: root from rows != root from merkle_nodes"
        assert (size, from_rows, from_nodes) == roots_before[org], f"org {org} changed"


async def _as_service_role(connection: AsyncConnection) -> None:
    """The rest of the test's transaction runs as helios_audit, the role the deployed consumer
    writes as (a superuser would pass where the service is refused)."""
    await connection.exec_driver_sql("SET LOCAL ROLE helios_audit")
    assert (await connection.exec_driver_sql("SELECT current_user")).scalar() == "helios_audit"


async def _publish(js: JetStreamContext, subject: str, data: bytes) -> int:
    ack = await js.publish(subject, data, headers={"Nats-Msg-Id": str(uuid.uuid4())})
    return int(ack.seq)


async def _run_consumer_until(
    js: JetStreamContext, bus: Bus, service: AuditService, seq: int, seconds: int
) -> bool:
    """Run the audit consumer until it acknowledged stream sequence `seq` (True) or `seconds`
    passed (False); it is stopped either way."""
    stop = asyncio.Event()
    task = asyncio.create_task(AuditConsumer(bus, service).run(stop))
    try:
        for _ in range(seconds * 10):
            if await _consumed_up_to(js, seq):
                return True
            await asyncio.sleep(0.1)
        return False
    finally:
        await _stop([task], stop)
        assert not task.cancelled(), "the consumer did not return within 5 s of stop"
        assert task.exception() is None


async def _stored(sessions: OneSessionAtATime, events: Sequence[Any]) -> Counter[str]:
    ids = [uuid.UUID(event.event_id) for event in events]
    async with sessions() as session:
        found = await session.scalars(
            select(tables.audit_log.c.event_id).where(tables.audit_log.c.event_id.in_(ids))
        )
        return Counter(str(event_id) for event_id in found)


async def _letters(sessions: OneSessionAtATime) -> list[Any]:
    async with sessions() as session:
        result = await session.execute(
            select(tables.dead_letters).order_by(tables.dead_letters.c.stream_seq)
        )
        return list(result.all())


async def test_l1_malformed_event_is_dead_lettered_counted_and_does_not_block(
    audit_schema: str,
    db_connection: AsyncConnection,
    db_session: async_sessionmaker[AsyncSession],
    throwaway_nats: ThrowawayNats,
    make_event: MakeEvent,
) -> None:
    """L1 through the real consumer: unusable messages between good ones (not protobuf, an
    event_id that is no UUID, a field wider than its column) are kept in dead_letters with
    their subject, bytes and reason, the good ones around them are stored, and later messages
    keep flowing. Redelivering the stream (the durable consumer recreated, as after it was
    lost) stores nothing twice and counts a second delivery of each dead letter."""
    await _as_service_role(db_connection)
    sessions = OneSessionAtATime(db_session)
    service = AuditService(PostgresAuditLog(sessions))  # type: ignore[arg-type]
    bus = Bus(throwaway_nats.url, "helios-audit-itest")
    good = [make_event() for _ in range(4)]
    bad = [
        ("audit.itest.garbage", b"\x0a\xff\x01not a protobuf"),
        ("audit.itest.badid", make_event(event_id="not-a-uuid").SerializeToString()),
        ("audit.itest.wide", make_event(resource_id="r" * 201).SerializeToString()),
    ]
    try:
        js = await bus.jetstream()
        bad_seqs = []
        for event, (subject, data) in zip(good, bad, strict=False):
            await _publish(js, "audit.itest.good", event.SerializeToString())
            bad_seqs.append(await _publish(js, subject, data))
        last = await _publish(js, "audit.itest.good", good[3].SerializeToString())
        consumed = await _run_consumer_until(js, bus, service, last, seconds=15)
        assert consumed, "the consumer did not get past the malformed messages"
        assert await _stored(sessions, good) == Counter(e.event_id for e in good)
        letters = await _letters(sessions)
        assert [(r.stream_seq, r.subject, bytes(r.payload), r.deliveries) for r in letters] == [
            (seq, subject, data, 1) for seq, (subject, data) in zip(bad_seqs, bad, strict=True)
        ]
        assert letters[0].reason.startswith("not an AuditEvent")
        assert [r.reason for r in letters[1:]] == [
            "event_id is not a UUID",
            "resource_id is longer than 200 characters",
        ]

        await js.delete_consumer(AUDIT_STREAM, DURABLE_NAME)
        later = make_event()
        last = await _publish(js, "audit.itest.good", later.SerializeToString())
        consumed = await _run_consumer_until(js, bus, service, last, seconds=15)
        assert consumed, "the redelivered stream was not consumed"
    finally:
        await _close(bus)
    assert await _stored(sessions, [*good, later]) == Counter(e.event_id for e in [*good, later])
    again = await _letters(sessions)
    assert [(r.stream_seq, r.deliveries) for r in again] == [(seq, 2) for seq in bad_seqs]
    assert [r.reason for r in again] == [r.reason for r in letters]


async def test_l1_event_with_nul_character_is_dead_lettered_and_does_not_block(
    audit_schema: str,
    db_connection: AsyncConnection,
    db_session: async_sessionmaker[AsyncSession],
    throwaway_nats: ThrowawayNats,
    make_event: MakeEvent,
) -> None:
    """L1: an event that parses but that PostgreSQL cannot store (a NUL character in a text
    field or in the diff) is dead-lettered like any unusable message, as audit's database role;
    it must not hold back the good events of its batch and every event published after it."""
    await _as_service_role(db_connection)
    sessions = OneSessionAtATime(db_session)
    service = AuditService(PostgresAuditLog(sessions))  # type: ignore[arg-type]
    bus = Bus(throwaway_nats.url, "helios-audit-itest")
    good = [make_event() for _ in range(3)]
    bad = [
        make_event(user_agent="curl/8\x00"),
        make_event(diff={"display_name": {"from": "Ada", "to": "Ada\x00"}}),
    ]
    try:
        js = await bus.jetstream()
        bad_seqs = []
        for event, poison in zip(good, bad, strict=False):
            await _publish(js, "audit.itest.good", event.SerializeToString())
            bad_seqs.append(await _publish(js, "audit.itest.nul", poison.SerializeToString()))
        last = await _publish(js, "audit.itest.good", good[2].SerializeToString())
        consumed = await _run_consumer_until(js, bus, service, last, seconds=10)
    finally:
        await _close(bus)
    stored = await _stored(sessions, good)
    letters = [(r.stream_seq, r.subject) for r in await _letters(sessions)]
    assert consumed, (
        f"the consumer is stuck: {sum(stored.values())} of {len(good)} good events stored, "
        f"dead letters {letters}"
    )
    assert stored == Counter(e.event_id for e in good)
    assert letters == [(seq, "audit.itest.nul") for seq in bad_seqs]
    assert await _stored(sessions, bad) == Counter()


async def test_l1_diff_text_spelling_a_nul_escape_is_stored_not_dead_lettered(
    audit_service: AuditService,
    db_session: async_sessionmaker[AsyncSession],
    make_event: MakeEvent,
) -> None:
    """L1: the six printable characters `\\u0000` in a diff value or key (a display name
    identity accepts at sign-up) are ordinary text that PostgreSQL stores: the event is stored
    with them, not dead-lettered, or anyone could keep their own action out of the log."""
    event = make_event(
        diff={"display_name": {"from": "", "to": "Robert\\u0000Tables"}, "a\\u0000b": 1}
    )
    subject = "audit.identity.identity.user.signUp"
    assert await audit_service.ingest([Incoming(subject, event.SerializeToString(), 9001)]) == 1
    async with db_session() as session:
        diff = await session.scalar(
            select(tables.audit_log.c.diff).where(
                tables.audit_log.c.event_id == uuid.UUID(event.event_id)
            )
        )
        letters = await session.scalar(
            select(func.count())
            .select_from(tables.dead_letters)
            .where(tables.dead_letters.c.stream_seq == 9001)
        )
    assert diff == {"display_name": {"from": "", "to": "Robert\\u0000Tables"}, "a\\u0000b": 1}
    assert letters == 0
