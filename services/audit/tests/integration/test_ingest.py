"""Ingest into the real append-only log: every L1 field stored, idempotent on event id, malformed
messages kept as dead letters, rows immutable even for the superuser (L1)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from helios.audit.domain.events import Incoming
from helios.audit.service import AuditService
from helios.audit.store import tables
from helios.audit.store.postgres import PostgresAuditLog
from helios.proto.audit.v1 import events_pb2

MakeEvent = Callable[..., events_pb2.AuditEvent]


async def _log_rows(sessions: async_sessionmaker[AsyncSession], *event_ids: str) -> list[Any]:
    ids = [uuid.UUID(event_id) for event_id in event_ids]
    async with sessions() as session:
        result = await session.execute(
            select(tables.audit_log)
            .where(tables.audit_log.c.event_id.in_(ids))
            .order_by(tables.audit_log.c.seq)
        )
        return list(result.all())


async def _dead_letters(sessions: async_sessionmaker[AsyncSession]) -> list[Any]:
    async with sessions() as session:
        result = await session.execute(
            select(tables.dead_letters).order_by(tables.dead_letters.c.stream_seq)
        )
        return list(result.all())


async def test_l1_ingest_stores_every_field(
    audit_service: AuditService,
    db_session: async_sessionmaker[AsyncSession],
    make_event: MakeEvent,
) -> None:
    """L1: actor_type, actor_id, session_id, input/output hash, ip, user agent, action and diff
    (and the rest of the event) land in one row with the stream sequence it arrived with."""
    event = make_event()
    data = event.SerializeToString()
    stored = await audit_service.ingest([Incoming("audit.identity.x", data, 4242)])
    assert stored == 1

    (row,) = await _log_rows(db_session, event.event_id)
    assert str(row.event_id) == event.event_id
    assert row.occurred_at == dt.datetime(2026, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    assert row.recorded_at is not None
    assert row.actor_type == "user"
    assert row.actor_id == event.actor_id
    assert row.session_id == event.session_id
    assert row.impersonator_id == ""
    assert row.org_id == event.org_id
    assert row.action == "identity.user.update"
    assert row.resource_type == "identity.user"
    assert row.resource_id == event.resource_id
    assert row.input_hash == "a1" * 32
    assert row.output_hash == "b2" * 32
    assert row.ip == "203.0.113.7"
    assert row.user_agent == "itest-browser/1.0"
    assert row.diff == {"display_name": {"from": "Ada", "to": "Ada L."}}
    assert row.decision_id == event.decision_id
    assert row.trace_id == event.trace_id
    assert row.producer == "identity"
    assert row.outcome == events_pb2.AUDIT_OUTCOME_SUCCESS
    assert row.stream_seq == 4242


async def test_l1_ingest_is_idempotent_on_event_id(
    audit_service: AuditService,
    db_session: async_sessionmaker[AsyncSession],
    make_event: MakeEvent,
) -> None:
    """L1/L3: a redelivered (or republished) event is stored once, in the same batch or later."""
    event = make_event()
    data = event.SerializeToString()
    other = make_event(actor_type=0, actor_id="", action="system.tick")
    assert await audit_service.ingest([Incoming("audit.a", data, 10)]) == 1
    assert await audit_service.ingest([Incoming("audit.a", data, 11)]) == 0
    both = [Incoming("audit.a", data, 12), Incoming("audit.b", other.SerializeToString(), 13)]
    assert await audit_service.ingest(both) == 1

    rows = await _log_rows(db_session, event.event_id, other.event_id)
    assert [(str(r.event_id), r.stream_seq) for r in rows] == [
        (event.event_id, 10),
        (other.event_id, 13),
    ]
    assert rows[1].actor_type == "unspecified"


async def test_l1_malformed_messages_are_dead_lettered_and_counted(
    audit_service: AuditService,
    db_session: async_sessionmaker[AsyncSession],
    make_event: MakeEvent,
) -> None:
    """L1: unusable messages are kept with the reason and never dropped; a repeat delivery of
    the same stream message bumps its counter; good messages of the batch are still stored."""
    no_time = make_event()
    no_time.ClearField("occurred_at")
    good = make_event()
    batch = [
        Incoming("audit.bad.bytes", b"\x0a\xff\x01truncated", 901),
        Incoming("audit.bad.id", make_event(event_id="nope").SerializeToString(), 902),
        Incoming("audit.bad.action", make_event(action="").SerializeToString(), 903),
        Incoming("audit.bad.time", no_time.SerializeToString(), 904),
        Incoming("audit.good", good.SerializeToString(), 905),
    ]
    assert await audit_service.ingest(batch) == 1
    assert len(await _log_rows(db_session, good.event_id)) == 1

    letters = await _dead_letters(db_session)
    assert [(r.subject, r.stream_seq, r.deliveries) for r in letters] == [
        ("audit.bad.bytes", 901, 1),
        ("audit.bad.id", 902, 1),
        ("audit.bad.action", 903, 1),
        ("audit.bad.time", 904, 1),
    ]
    assert letters[0].reason.startswith("not an AuditEvent")
    assert [r.reason for r in letters[1:]] == [
        "event_id is not a UUID",
        "action is empty",
        "occurred_at is missing",
    ]
    assert bytes(letters[0].payload) == b"\x0a\xff\x01truncated"

    assert await audit_service.ingest(batch[:2]) == 0
    again = await _dead_letters(db_session)
    assert [(r.stream_seq, r.deliveries) for r in again] == [(901, 2), (902, 2), (903, 1), (904, 1)]
    assert [r.reason for r in again] == [r.reason for r in letters]
    assert len(await _log_rows(db_session, good.event_id)) == 1


async def _in_savepoint(
    connection: AsyncConnection, statements: tuple[str, ...], params: Any
) -> None:
    async with connection.begin_nested():
        for statement in statements:
            await connection.exec_driver_sql(statement, params if "%(" in statement else None)


async def _refused(connection: AsyncConnection, *statements: str, params: Any = None) -> str:
    """Run statements in a savepoint that must fail; returns the database's error message."""
    with pytest.raises(DBAPIError) as refused:
        await _in_savepoint(connection, statements, params)
    return str(refused.value.orig)


async def test_l1_audit_rows_cannot_be_updated_or_deleted_even_by_superuser(
    audit_service: AuditService,
    db_session: async_sessionmaker[AsyncSession],
    db_connection: AsyncConnection,
    make_event: MakeEvent,
) -> None:
    """L1: the append-only trigger refuses UPDATE, DELETE and TRUNCATE for every role, the
    superuser included; the row is unchanged afterwards."""
    event = make_event()
    await audit_service.ingest([Incoming("audit.x", event.SerializeToString(), 77)])
    params = {"id": uuid.UUID(event.event_id)}
    superuser = await db_connection.exec_driver_sql("SELECT current_setting('is_superuser')")
    assert superuser.scalar() == "on"

    update = "UPDATE audit.audit_log SET action = 'tampered' WHERE event_id = %(id)s"
    delete = "DELETE FROM audit.audit_log WHERE event_id = %(id)s"
    assert "append-only: UPDATE refused" in await _refused(db_connection, update, params=params)
    assert "append-only: DELETE refused" in await _refused(db_connection, delete, params=params)
    truncate = await _refused(db_connection, "TRUNCATE audit.audit_log")
    assert "append-only: TRUNCATE refused" in truncate

    (row,) = await _log_rows(db_session, event.event_id)
    assert row.action == "identity.user.update"


async def test_l1_service_role_may_insert_and_read_but_not_update_or_delete(
    audit_service: AuditService,
    db_session: async_sessionmaker[AsyncSession],
    db_connection: AsyncConnection,
    make_event: MakeEvent,
) -> None:
    """L1: as helios_audit (the service's database role) UPDATE and DELETE are denied by the
    grants, before the trigger is reached; reading is allowed."""
    event = make_event()
    await audit_service.ingest([Incoming("audit.x", event.SerializeToString(), 78)])
    params = {"id": uuid.UUID(event.event_id)}
    role = "SET LOCAL ROLE helios_audit"

    async with db_connection.begin_nested() as savepoint:
        await db_connection.exec_driver_sql(role)
        seen = await db_connection.exec_driver_sql(
            "SELECT count(*) FROM audit.audit_log WHERE event_id = %(id)s", params
        )
        assert seen.scalar() == 1
        await savepoint.rollback()

    update = "UPDATE audit.audit_log SET action = 'tampered' WHERE event_id = %(id)s"
    delete = "DELETE FROM audit.audit_log WHERE event_id = %(id)s"
    assert "permission denied for table audit_log" in await _refused(
        db_connection, role, update, params=params
    )
    assert "permission denied for table audit_log" in await _refused(
        db_connection, role, delete, params=params
    )
    dead_letter_update = "UPDATE audit.dead_letters SET reason = 'x'"
    assert "permission denied for table dead_letters" in await _refused(
        db_connection, role, dead_letter_update
    )

    current = await db_connection.exec_driver_sql("SELECT current_user")
    assert current.scalar() != "helios_audit"
    (row,) = await _log_rows(db_session, event.event_id)
    assert row.action == "identity.user.update"


async def test_l1_redelivered_dead_letter_is_counted_by_the_service_role(
    audit_schema: str,
    db_connection: AsyncConnection,
    db_session: async_sessionmaker[AsyncSession],
) -> None:
    """L1: as helios_audit (INSERT/SELECT only on dead letters, plus `deliveries`), a message
    dead-lettered twice (its ack was lost) is counted, not refused: the consumer moves on."""
    await db_connection.execute(text("SET LOCAL ROLE helios_audit"))
    store = PostgresAuditLog(db_session)
    await store.dead_letter("audit.x", 424242, b"junk", "not an AuditEvent")
    await store.dead_letter("audit.x", 424242, b"junk", "not an AuditEvent")
    deliveries = await db_connection.scalar(
        text("SELECT deliveries FROM audit.dead_letters WHERE stream_seq = 424242")
    )
    assert deliveries == 2
    with pytest.raises(DBAPIError, match="permission denied"):
        async with db_connection.begin_nested():
            await db_connection.execute(text("DELETE FROM audit.dead_letters"))
