"""Transactional outbox: events written with the state change, relayed to JetStream exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Callable

from google.protobuf.message import Message
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.kernel.bus import Bus
from helios.kernel.bus_tracing import publishing

__all__ = ["OUTBOX_WRITTEN", "OutboxRelay", "enqueue", "outbox_table"]

OUTBOX_WRITTEN = "helios_outbox_written"
"""Session info flag: this transaction enqueued events (see SqlUnitOfWork)."""

log = logging.getLogger(__name__)


def outbox_table(metadata: MetaData) -> Table:
    """The `outbox` table in the metadata's schema; one per service."""
    return Table(
        "outbox",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("subject", String(255), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("headers", JSONB, nullable=False, server_default="{}"),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Index(
            "outbox_unpublished",
            "created_at",
            postgresql_where=text("published_at IS NULL"),
        ),
    )


async def enqueue(
    session: AsyncSession,
    table: Table,
    subject: str,
    message: Message,
    *,
    event_id: uuid.UUID,
    headers: dict[str, str] | None = None,
) -> None:
    """Add an event to the outbox inside the caller's open transaction (no commit here); it is
    published only if that transaction commits. Marks the session so that its unit of work
    wakes the relay after the commit."""
    session.info[OUTBOX_WRITTEN] = True
    await session.execute(
        table.insert().values(
            id=event_id,
            subject=subject,
            payload=message.SerializeToString(deterministic=True),
            headers=headers or {},
        )
    )


class OutboxRelay:
    """Publishes unpublished outbox rows in order and marks them sent.

    A row is marked only after JetStream acknowledged it; a crash in between republishes it with
    the same `Nats-Msg-Id`, which JetStream drops as a duplicate. Replicas share the work through
    `FOR UPDATE SKIP LOCKED`.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        table: Table,
        bus: Bus,
        *,
        batch_size: int = 100,
        idle_seconds: float = 0.2,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._sessions = sessions
        self._table = table
        self._bus = bus
        self._batch_size = batch_size
        self._idle = idle_seconds
        self._clock = clock
        self._wake = asyncio.Event()

    def notify(self) -> None:
        """Wake the relay now (called after a commit that enqueued events)."""
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publish one batch; returns how many rows were published. Raises when NATS fails (the
        batch's transaction rolls back and the rows stay pending)."""
        t = self._table
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(t.c.id, t.c.subject, t.c.payload, t.c.headers)
                    .where(t.c.published_at.is_(None))
                    .order_by(t.c.created_at, t.c.id)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            js = await self._bus.jetstream()
            for row in rows:
                with publishing(row.subject, row.headers, str(row.id)) as headers:
                    await js.publish(row.subject, row.payload, headers=headers)
            await session.execute(
                update(t).where(t.c.id.in_([r.id for r in rows])).values(published_at=self._clock())
            )
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set, backing off (up to 5 s) while NATS or PostgreSQL is away."""
        backoff = self._idle
        while not stop.is_set():
            try:
                published = await self.publish_pending()
                backoff = self._idle
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox relay failed; retrying", extra={"error": repr(exc)})
                published = 0
                backoff = min(backoff * 2, 5.0)
            if published:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)
