"""PostgreSQL implementation of the AuditLog port."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf import json_format
from sqlalchemy import Row, Select, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.audit.domain.events import EventQuery
from helios.audit.domain.leaf import canonical_json
from helios.audit.store.tables import audit_log, dead_letters
from helios.audit.store.tree import append_to_trees
from helios.kernel.list_filter import PlanColumns, apply_plan
from helios.proto.audit.v1 import audit_pb2, events_pb2
from helios.proto.authz.v1 import authz_pb2
from helios.proto.common.v1 import principal_pb2

__all__ = ["PostgresAuditLog"]

_PLAIN = (
    "org_id",
    "actor_id",
    "session_id",
    "impersonator_id",
    "action",
    "resource_type",
    "resource_id",
    "input_hash",
    "output_hash",
    "ip",
    "user_agent",
    "decision_id",
    "trace_id",
    "producer",
)


def _actor_type_name(value: int) -> str:
    return principal_pb2.ActorType.Name(value).removeprefix("ACTOR_TYPE_").lower()  # type: ignore[arg-type]


def _to_row(event: events_pb2.AuditEvent, stream_seq: int) -> dict[str, Any]:
    row: dict[str, Any] = {name: getattr(event, name) for name in _PLAIN}
    row.update(
        event_id=str(uuid.UUID(event.event_id)),
        occurred_at=event.occurred_at.ToDatetime(dt.UTC),
        actor_type=_actor_type_name(event.actor_type),
        diff=canonical_json(json_format.MessageToDict(event.diff)),
        outcome=int(event.outcome),
        stream_seq=stream_seq,
    )
    return row


def _to_record(row: Row[Any]) -> audit_pb2.AuditRecord:
    event = events_pb2.AuditEvent(
        event_id=str(row.event_id),
        actor_type=principal_pb2.ActorType.Value("ACTOR_TYPE_" + row.actor_type.upper()),
        outcome=row.outcome,
        **{name: getattr(row, name) for name in _PLAIN},
    )
    event.occurred_at.FromDatetime(row.occurred_at)
    event.diff.update(row.diff)
    record = audit_pb2.AuditRecord(event=event, stream_sequence=row.stream_seq)
    record.recorded_at.FromDatetime(row.recorded_at)
    return record


class PostgresAuditLog:
    """Append-only writes into per-org Merkle logs and cursor-paged reads."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._sessions = sessions
        self._clock = clock

    async def append(self, events: Sequence[tuple[events_pb2.AuditEvent, int]]) -> int:
        """New events (by id; duplicates in the batch or already stored are skipped) are
        appended to their org's Merkle log in stream order: each org's log size is locked, the
        rows get consecutive leaf indexes and hashes, and every completed perfect subtree is
        stored, all in one transaction."""
        now = self._clock()
        rows = [_to_row(event, seq) | {"recorded_at": now} for event, seq in events]
        async with self._sessions() as session, session.begin():
            stored = set(
                await session.scalars(
                    select(audit_log.c.event_id).where(
                        audit_log.c.event_id.in_([uuid.UUID(r["event_id"]) for r in rows])
                    )
                )
            )
            fresh: list[dict[str, Any]] = []
            seen = {str(e) for e in stored}
            for row in sorted(rows, key=lambda r: int(r["stream_seq"])):
                if row["event_id"] not in seen:
                    seen.add(row["event_id"])
                    fresh.append(row)
            if fresh:
                await append_to_trees(session, fresh)
            return len(fresh)

    async def dead_letter(self, subject: str, stream_seq: int, payload: bytes, reason: str) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                insert(dead_letters)
                .values(
                    subject=subject, stream_seq=stream_seq, payload=payload, reason=reason[:1000]
                )
                .on_conflict_do_update(
                    index_elements=["stream_seq"],
                    set_={"deliveries": dead_letters.c.deliveries + 1},
                )
            )

    async def query(
        self, query: EventQuery, plan: authz_pb2.PlanListResponse | None = None
    ) -> list[tuple[int, audit_pb2.AuditRecord]]:
        statement = select(audit_log).order_by(audit_log.c.seq.desc()).limit(query.page_size)
        statement = _filtered(statement, query, plan)
        if query.before_seq:
            statement = statement.where(audit_log.c.seq < query.before_seq)
        async with self._sessions() as session:
            rows = (await session.execute(statement)).all()
        return [(row.seq, _to_record(row)) for row in rows]

    async def after(
        self,
        query: EventQuery,
        after_seq: int,
        limit: int,
        plan: authz_pb2.PlanListResponse | None = None,
    ) -> list[tuple[int, audit_pb2.AuditRecord]]:
        statement = (
            select(audit_log)
            .where(audit_log.c.seq > after_seq)
            .order_by(audit_log.c.seq.asc())
            .limit(limit)
        )
        statement = _filtered(statement, query, plan)
        async with self._sessions() as session:
            rows = (await session.execute(statement)).all()
        return [(row.seq, _to_record(row)) for row in rows]

    async def last_sequence(self) -> int:
        async with self._sessions() as session:
            value = (await session.execute(select(func.max(audit_log.c.seq)))).scalar_one()
        return int(value or 0)


_SCOPE_COLUMNS = PlanColumns(org_id=audit_log.c.org_id, owner_id=audit_log.c.actor_id)
"""Audit rows as authz resources: the org's, owned by their actor, of no team."""


def _filtered(
    statement: Select[Any], query: EventQuery, plan: authz_pb2.PlanListResponse | None
) -> Select[Any]:
    """`statement` narrowed by authz's plan, the query's column filters and time range."""
    if plan is not None:
        statement = apply_plan(statement, plan, _SCOPE_COLUMNS)
    for name in ("actor_id", "org_id", "action", "resource_type", "resource_id"):
        value = getattr(query, name)
        if value:
            statement = statement.where(audit_log.c[name] == value)
    if query.since is not None:
        statement = statement.where(audit_log.c.occurred_at >= query.since)
    if query.until is not None:
        statement = statement.where(audit_log.c.occurred_at < query.until)
    return statement
