"""Durable JetStream consumer of `audit.>`: batches into the log, acks only after the commit."""

from __future__ import annotations

import asyncio
import logging

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext

from helios.audit.domain.events import Incoming
from helios.audit.service import AuditService
from helios.kernel.bus import AUDIT_STREAM, AUDIT_SUBJECTS, Bus

__all__ = ["DURABLE_NAME", "AuditConsumer"]

log = logging.getLogger(__name__)

DURABLE_NAME = "audit-writer"


class AuditConsumer:
    """Pulls batches from the AUDIT stream. A message is acknowledged only after its row (or its
    dead letter) is committed; if the process dies first, JetStream redelivers it and the insert
    is skipped as a duplicate. Replicas share the durable consumer."""

    def __init__(self, bus: Bus, service: AuditService, *, batch_size: int = 100) -> None:
        self._bus = bus
        self._service = service
        self._batch_size = batch_size

    async def _consume(
        self, subscription: JetStreamContext.PullSubscription, stop: asyncio.Event
    ) -> None:
        while not stop.is_set():
            try:
                messages = await subscription.fetch(self._batch_size, timeout=1)
            except NatsTimeoutError:
                continue
            batch = [Incoming(m.subject, m.data, m.metadata.sequence.stream) for m in messages]
            await self._service.ingest(batch)
            for message in messages:
                await message.ack_sync()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set, reconnecting with backoff while NATS is away."""
        backoff = 0.2
        while not stop.is_set():
            try:
                js = await self._bus.jetstream()
                subscription = await js.pull_subscribe(
                    AUDIT_SUBJECTS, durable=DURABLE_NAME, stream=AUDIT_STREAM
                )
                backoff = 0.2
                try:
                    await self._consume(subscription, stop)
                finally:
                    await subscription.unsubscribe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("audit consumer failed; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
