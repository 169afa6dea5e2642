"""Audit's use cases: ingest events from the stream, list and watch them for a principal."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

from helios.audit.domain.events import EventQuery, Incoming, parse_event
from helios.audit.domain.permissions import PLATFORM_LIST
from helios.audit.ports import AuditLog, ListScopes
from helios.kernel.context import CallContext
from helios.proto.audit.v1 import audit_pb2, events_pb2
from helios.proto.authz.v1 import authz_pb2
from helios.proto.common.v1 import principal_pb2

__all__ = ["WATCH_BATCH", "WATCH_POLL_SECONDS", "AuditService"]

log = logging.getLogger(__name__)

WATCH_POLL_SECONDS = 0.5
WATCH_BATCH = 100


class AuditService:
    """Ingest is idempotent on event id; malformed messages go to the dead-letter table."""

    def __init__(
        self,
        store: AuditLog,
        scopes: ListScopes | None = None,
        *,
        watch_poll_seconds: float = WATCH_POLL_SECONDS,
    ) -> None:
        self._store = store
        self._scopes = scopes
        self._poll = watch_poll_seconds
        self.dead_lettered = 0
        """Malformed messages kept in the dead-letter table by this process (for metrics)."""

    async def _scope(
        self, principal: principal_pb2.Principal, permission: str, query: EventQuery
    ) -> tuple[EventQuery, authz_pb2.PlanListResponse | None]:
        """Which rows the principal may see (Z5): every org's for the platform root
        (`platform.audit.list`); else authz's list plan over org and actor (org admins: their
        org; others: what their grants reach, e.g. their own rows); without authz wired or for
        a principal of no org, only rows it is the actor of."""
        if self._scopes is None or not principal.org_id:
            return replace(query, actor_id=principal.actor_id), None
        root = await self._scopes.plan(principal, PLATFORM_LIST, "audit.event")
        if root.kind == authz_pb2.PLAN_KIND_ALWAYS_ALLOWED:
            return query, None
        return query, await self._scopes.plan(principal, permission, "audit.event")

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
                self.dead_lettered += 1
        return await self._store.append(good) if good else 0

    async def list_events(
        self, request: audit_pb2.ListEventsRequest, ctx: CallContext
    ) -> tuple[list[audit_pb2.AuditRecord], str]:
        """The audit rows the caller may list (see _scope), newest first, narrowed by the
        request's filters, and the next page token."""
        principal = ctx.require_principal()
        page_size, cursor = EventQuery.page(request.page_size, request.page_token)
        query = EventQuery(
            actor_id=request.actor_id,
            org_id=request.org_id,
            action=request.action,
            resource_type=request.resource_type,
            resource_id=request.resource_id,
            since=request.since.ToDatetime(dt.UTC) if request.HasField("since") else None,
            until=request.until.ToDatetime(dt.UTC) if request.HasField("until") else None,
            page_size=page_size,
            before_seq=cursor,
        )
        query, plan = await self._scope(principal, "audit.event.list", query)
        rows = await self._store.query(query, plan)
        next_token = str(rows[-1][0]) if len(rows) == page_size else ""
        return [record for _, record in rows], next_token

    async def watch_events(
        self, request: audit_pb2.WatchEventsRequest, ctx: CallContext, stop: asyncio.Event
    ) -> AsyncIterator[tuple[int, audit_pb2.AuditRecord]]:
        """(log sequence, row) pairs of the caller's rows stored after `request.after_sequence`
        (0: after the newest row stored now), oldest first, as they arrive; polls the store
        every `watch_poll_seconds`. Runs until the client cancels (the task is cancelled) or
        `stop` is set (server shutdown: the stream then ends normally, resumable by sequence).

        Scoped like list_events, with `audit.event.watch` (decided once, when the stream
        opens), and `org_id` narrows it further. A row whose ingest commits after a
        higher-numbered row (two replicas writing at once) can be passed over by the cursor;
        ListEvents stays the complete record.
        """
        principal = ctx.require_principal()
        cursor = EventQuery.resume_after(request.after_sequence)
        query, plan = await self._scope(
            principal, "audit.event.watch", EventQuery(org_id=request.org_id)
        )
        if not cursor:
            cursor = await self._store.last_sequence()
        while not stop.is_set():
            rows = await self._store.after(query, cursor, WATCH_BATCH, plan)
            for seq, record in rows:
                cursor = seq
                yield seq, record
            if len(rows) < WATCH_BATCH:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll):
                        await stop.wait()
