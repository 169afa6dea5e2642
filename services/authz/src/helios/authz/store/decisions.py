"""The decision log: decisions queued in memory and written to PostgreSQL in batches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.authz.domain.model import DecisionRecord
from helios.authz.store.tables import decisions

__all__ = ["BatchedDecisionLog"]

log = logging.getLogger(__name__)


def _row(record: DecisionRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "org_id": record.org_id,
        "revision": record.revision,
        "created_at": record.created_at,
        "kind": record.kind,
        "principal": record.principal,
        "permission": record.permission,
        "resource": record.resource,
        "ai_narrowing": list(record.ai_narrowing),
        "allowed": record.allowed,
    }


def _record(row: Row[Any]) -> DecisionRecord:
    return DecisionRecord(
        id=row.id,
        org_id=row.org_id,
        revision=row.revision,
        created_at=row.created_at,
        kind=row.kind,
        principal=dict(row.principal),
        permission=row.permission,
        resource=dict(row.resource),
        ai_narrowing=tuple(row.ai_narrowing),
        allowed=row.allowed,
    )


class BatchedDecisionLog:
    """DecisionLog that keeps Check off the write path: decisions wait in memory (at most
    `max_pending`; beyond that the oldest unsaved are dropped and counted) and a background task
    inserts them every `interval` seconds and at shutdown. A decision is readable at once (from
    memory until written). A crash loses at most one interval of decision records, never a
    policy change: those are in the grant history, which Explain replays."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        interval: float = 0.2,
        max_pending: int = 100_000,
    ) -> None:
        self._sessions = sessions
        self._interval = interval
        self._max_pending = max_pending
        self._pending: dict[uuid.UUID, DecisionRecord] = {}
        self.dropped = 0

    def add(self, record: DecisionRecord) -> None:
        if len(self._pending) >= self._max_pending:
            self._pending.pop(next(iter(self._pending)))
            self.dropped += 1
        self._pending[record.id] = record

    async def get(self, decision_id: uuid.UUID) -> DecisionRecord | None:
        pending = self._pending.get(decision_id)
        if pending is not None:
            return pending
        async with self._sessions() as session:
            row = (
                await session.execute(select(decisions).where(decisions.c.id == decision_id))
            ).first()
        return None if row is None else _record(row)

    async def flush(self) -> int:
        """Write what is queued; returns how many decisions were written."""
        batch = list(self._pending.values())
        if not batch:
            return 0
        async with self._sessions() as session, session.begin():
            await session.execute(decisions.insert(), [_row(r) for r in batch])
        for record in batch:
            self._pending.pop(record.id, None)
        return len(batch)

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every interval until `stop`, then once more; a failed flush is retried."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval)
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("decision log flush failed; retrying", extra={"error": repr(exc)})
