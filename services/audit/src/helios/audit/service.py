"""Audit's use cases: ingest events from the stream, list and watch them for a principal."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Sequence

from helios.audit.domain.events import EventQuery, Incoming, parse_event
from helios.audit.ports import AuditLog
from helios.kernel.context import CallContext
from helios.proto.audit.v1 import audit_pb2, events_pb2

__all__ = ["WATCH_BATCH", "WATCH_POLL_SECONDS", "AuditService"]

log = logging.getLogger(__name__)

WATCH_POLL_SECONDS = 0.5
WATCH_BATCH = 100


class AuditService:
    """Ingest is idempotent on event id; malformed messages go to the dead-letter table."""

    def __init__(self, store: AuditLog, *, watch_poll_seconds: float = WATCH_POLL_SECONDS) -> None:
        self._store = store
        self._poll = watch_poll_seconds

    async def ingest(self, batch: Sequence[Incoming]) -> int:
        """Store a batch delivered by the stream; returns the number of new rows. Returns only
        after everything is committed, so the caller may then acknowledge the messages."""
        good: list[tuple[events_pb2.AuditEvent, int]] = []
        for message in batch:
            try:
                good.append((parse_event(message.data), message.stream_seq))
            except ValueError as exc:
                log.warning("dead-lettered audit message", extra={"stream_seq": message.stream_seq})
                await self._store.dead_letter(
                    message.subject, message.stream_seq, message.data, str(exc)
                )
        return await self._store.append(good) if good else 0

    async def list_events(
        self, request: audit_pb2.ListEventsRequest, ctx: CallContext
    ) -> tuple[list[audit_pb2.AuditRecord], str]:
        """The caller's own audit rows, newest first, and the next page token.

        Until authz scopes land (issues #5, #6) a principal sees only rows where it is the actor;
        filters in the request narrow that further.
        """
        principal = ctx.require_principal()
        page_size, cursor = EventQuery.page(request.page_size, request.page_token)
        query = EventQuery(
            actor_id=principal.actor_id,
            org_id=request.org_id,
            action=request.action,
            resource_type=request.resource_type,
            resource_id=request.resource_id,
            since=request.since.ToDatetime(dt.UTC) if request.HasField("since") else None,
            until=request.until.ToDatetime(dt.UTC) if request.HasField("until") else None,
            page_size=page_size,
            before_seq=cursor,
        )
        rows = await self._store.query(query)
        next_token = str(rows[-1][0]) if len(rows) == page_size else ""
        return [record for _, record in rows], next_token

    async def watch_events(
        self, request: audit_pb2.WatchEventsRequest, ctx: CallContext, stop: asyncio.Event
    ) -> AsyncIterator[tuple[int, audit_pb2.AuditRecord]]:
        """(log sequence, row) pairs of the caller's rows stored after `request.after_sequence`
        (0: after the newest row stored now), oldest first, as they arrive; polls the store
        every `watch_poll_seconds`. Runs until the client cancels (the task is cancelled) or
        `stop` is set (server shutdown: the stream then ends normally, resumable by sequence).

        Same scope as list_events: until authz scopes land (issues #5, #6) a principal sees
        only rows where it is the actor, and `org_id` narrows that further; the admins-of-org
        tail comes with those issues. A row whose ingest commits after a higher-numbered row
        (two replicas writing at once) can be passed over by the cursor; ListEvents stays
        the complete record.
        """
        principal = ctx.require_principal()
        cursor = EventQuery.resume_after(request.after_sequence)
        query = EventQuery(actor_id=principal.actor_id, org_id=request.org_id)
        if not cursor:
            cursor = await self._store.last_sequence()
        while not stop.is_set():
            rows = await self._store.after(query, cursor, WATCH_BATCH)
            for seq, record in rows:
                cursor = seq
                yield seq, record
            if len(rows) < WATCH_BATCH:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll):
                        await stop.wait()
