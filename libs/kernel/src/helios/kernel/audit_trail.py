"""Audit events of state changes: built from the call context, enqueued in the same transaction."""

from __future__ import annotations

import datetime as dt
import uuid

from opentelemetry import propagate
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from helios.kernel.bus import audit_subject
from helios.kernel.canonical import canonical_hash
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.outbox import enqueue
from helios.proto.audit.v1 import events_pb2
from helios.proto.common.v1 import principal_pb2

__all__ = ["AuditRecorder"]


class AuditRecorder:
    """Turns a Change into an AuditEvent and enqueues it in the service's outbox."""

    def __init__(self, producer: str, outbox: Table) -> None:
        self._producer = producer
        self._outbox = outbox

    def build(self, change: Change, ctx: CallContext, now: dt.datetime) -> events_pb2.AuditEvent:
        """The event for `change` made in the call `ctx` (hashes omit secret fields)."""
        principal = ctx.principal or principal_pb2.Principal()
        actor_type = principal.actor_type or principal_pb2.ACTOR_TYPE_USER
        event = events_pb2.AuditEvent(
            event_id=str(uuid.uuid4()),
            org_id=change.org_id or principal.org_id,
            actor_type=actor_type
            if (change.actor_id or principal.actor_id)
            else principal_pb2.ACTOR_TYPE_SYSTEM,
            actor_id=change.actor_id or principal.actor_id,
            session_id=principal.session_id,
            impersonator_id=principal.impersonator_id,
            action=change.action,
            resource_type=change.resource_type,
            resource_id=change.resource_id,
            input_hash=change.input_hash
            or (canonical_hash(change.request) if change.request is not None else ""),
            output_hash=change.output_hash
            or (canonical_hash(change.response) if change.response is not None else ""),
            ip=principal.ip or ctx.ip,
            user_agent=principal.user_agent or ctx.user_agent,
            decision_id=change.decision_id,
            trace_id=ctx.trace_id,
            producer=self._producer,
            outcome=change.outcome,
        )
        event.occurred_at.FromDatetime(now)
        if change.diff:
            event.diff.update(change.diff)  # type: ignore[arg-type]  # JSON values
        return event

    async def record(
        self, session: AsyncSession, change: Change, ctx: CallContext, now: dt.datetime
    ) -> events_pb2.AuditEvent:
        """Enqueue the event inside the caller's open transaction; returns it."""
        event = self.build(change, ctx, now)
        headers: dict[str, str] = {}
        propagate.inject(headers)
        await enqueue(
            session,
            self._outbox,
            audit_subject(self._producer, change.action),
            event,
            event_id=uuid.UUID(event.event_id),
            headers=headers,
        )
        return event
